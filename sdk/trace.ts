/**
 * `trace(fn)`: a side-effecting function called from a task body. Its result (or error) is recorded
 * in the parent's history on the first run and returned from the record on every replay, so I/O in
 * a parent body happens once (Flyte's `flyte.trace`).
 *
 * A trace call is matched by its name, a digest of its arguments, and its sequence among calls with
 * the same name and arguments. A traced generator function records what it yields
 * (trace-generator.ts).
 */
import { serializeError } from "./errors.ts";
import { HISTORY_VERSION } from "./core/history.ts";
import type { Outcome } from "./core/history.ts";
import { currentScope } from "./core/state.ts";
import { deserialize, digest, serialize } from "./serde.ts";
import { deserializeError } from "./errors.ts";
import { generatorKind, liveGenerator, replayedGenerator } from "./trace-generator.ts";

type AnyFn = (...args: any[]) => any;

function argsDigest(args: unknown[]): string {
  try {
    return digest(serialize(args));
  } catch {
    return "?"; // arguments that cannot be serialised (clients, handles) are matched by order only
  }
}

function fromOutcome(o: Outcome): { ok: true; value: unknown } | { ok: false; error: Error } {
  return o.ok ? { ok: true, value: deserialize(o.value) } : { ok: false, error: deserializeError(o.error) };
}

function record(value: unknown, name: string): Outcome {
  return { ok: true, value: serialize(value, `result of trace ${name}`) };
}

/**
 * @example
 * const fetchPrice = trace(async function fetchPrice(sku: string) { return (await fetch(url + sku)).json(); });
 * export const quote = env.task(async function quote(sku: string) { return (await fetchPrice(sku)).price; });
 */
export function trace<F extends AnyFn>(fn: F, name: string = fn.name || "trace"): F {
  const isAsync = fn.constructor?.name === "AsyncFunction";
  const gen = generatorKind(fn);
  const wrapped = function (this: unknown, ...args: unknown[]): unknown {
    const scope = currentScope();
    if (!scope || scope.state.closed) {
      scope?.state.touch(); // a parked continuation does not continue from here (continuation.ts)
      return fn.apply(this, args);
    }
    const st = scope.state;
    const base = `${scope.group}|${name}|${argsDigest(args)}`;
    const n = st.traceSeq.get(base) ?? 0;
    st.traceSeq.set(base, n + 1);
    const key = `${base}|${n}`;
    const recorded = st.history.traces.get(key);
    if (gen) {
      st.touch();
      if (recorded) return replayedGenerator(recorded, name);
      return liveGenerator(gen, st, key, name, fn.apply(this, args) as Generator | AsyncGenerator);
    }
    if (recorded) {
      st.touch();
      const r = fromOutcome(recorded.outcome);
      if (!isAsync && !recorded.async) {
        if (r.ok) return r.value;
        throw r.error;
      }
      return r.ok ? Promise.resolve(r.value) : Promise.reject(r.error);
    }
    const save = (outcome: Outcome, async: boolean): void => {
      st.newTraces.push(
        async ? { v: HISTORY_VERSION, key, outcome, async } : { v: HISTORY_VERSION, key, outcome },
      );
    };
    let out: unknown;
    try {
      out = fn.apply(this, args);
    } catch (e) {
      save({ ok: false, error: serializeError(e) }, false);
      throw e;
    }
    if (out === null || typeof out !== "object" || typeof (out as PromiseLike<unknown>).then !== "function") {
      const o = record(out, name);
      save(o, false);
      return deserialize((o as { value: string }).value);
    }
    st.traceStarted();
    return Promise.resolve(out as PromiseLike<unknown>).then(
      (v) => {
        try {
          const o = record(v, name);
          save(o, true);
          return deserialize((o as { value: string }).value);
        } finally {
          st.traceEnded();
        }
      },
      (e: unknown) => {
        save({ ok: false, error: serializeError(e) }, true);
        st.traceEnded();
        throw e;
      },
    );
  };
  Object.defineProperty(wrapped, "name", { value: name });
  return wrapped as unknown as F;
}
