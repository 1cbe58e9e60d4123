/**
 * `trace` of a generator function (Flyte's traced generators): the values it yields are recorded,
 * in order, with how it ended, and a replay yields them from the record instead of running it.
 *
 * The record is written when the generator ends: it returned, it threw, or the body stopped
 * iterating it (`break`, which calls `return()`). A body that suspends while a traced generator is
 * still open has recorded nothing for it, so its next replay runs the generator again from the
 * start: iterate a traced generator to its end (or leave it) before awaiting a child.
 */
import { NonDeterminismError, deserializeError, serializeError } from "./errors.ts";
import type { SerializedError } from "./errors.ts";
import { HISTORY_VERSION } from "./core/history.ts";
import type { TraceRecord } from "./core/history.ts";
import type { ReplayState } from "./core/state.ts";
import { deserialize, serialize } from "./serde.ts";

export type GeneratorKind = "sync" | "async";

/** How a traced generator ended, as recorded. */
interface GeneratorRecord {
  items: unknown[];
  /** done: it returned; threw: it threw; left: the body stopped iterating it. */
  end: "done" | "threw" | "left";
  ret?: unknown;
  error?: SerializedError;
}

/** The kind of generator `fn` makes, if it is a generator function. */
export function generatorKind(fn: (...args: any[]) => unknown): GeneratorKind | undefined {
  const c = fn.constructor?.name;
  return c === "GeneratorFunction" ? "sync" : c === "AsyncGeneratorFunction" ? "async" : undefined;
}

/** A serialisable copy of `v`, as a replay will see it (the error names what could not be kept). */
const copy = (v: unknown, what: string): unknown => deserialize(serialize(v, what));

class Recorder {
  readonly items: unknown[] = [];
  private saved = false;
  constructor(
    private readonly st: ReplayState,
    private readonly key: string,
    private readonly name: string,
    private readonly kind: GeneratorKind,
  ) {}
  /** Whether the generator has not ended yet (nothing recorded). */
  open = true;
  private item(v: unknown): unknown {
    const c = copy(v, `item ${this.items.length} yielded by trace ${this.name}`);
    this.items.push(c);
    return c;
  }
  /** One step of the generator, as the body sees it: an item (a copy), or its return value (recorded). */
  step(r: IteratorResult<unknown>): IteratorResult<unknown> {
    if (!r.done) return { done: false, value: this.item(r.value) };
    const ret = copy(r.value, `return value of trace ${this.name}`);
    this.save("done", ret);
    return { done: true, value: ret };
  }
  save(end: GeneratorRecord["end"], ret?: unknown, error?: unknown): void {
    if (!this.open) return;
    this.open = false;
    if (this.st.closed) return;
    const rec: GeneratorRecord = { items: this.items, end };
    if (end === "done") rec.ret = ret;
    if (end === "threw") rec.error = serializeError(error);
    const t: TraceRecord = {
      v: HISTORY_VERSION,
      key: this.key,
      outcome: { ok: true, value: serialize(rec, `trace ${this.name}`) },
      gen: this.kind,
    };
    this.st.newTraces.push(t);
  }
}

/** Runs a traced generator for the first time, recording what it yields. */
export function liveGenerator(
  kind: GeneratorKind,
  st: ReplayState,
  key: string,
  name: string,
  gen: Generator | AsyncGenerator,
): Generator | AsyncGenerator {
  const rec = new Recorder(st, key, name, kind);
  if (kind === "sync") return liveSync(gen as Generator, rec);
  return liveAsync(gen as AsyncGenerator, rec, st);
}

function* liveSync(gen: Generator, rec: Recorder): Generator {
  let sent: unknown;
  try {
    for (;;) {
      let r: IteratorResult<unknown>;
      try {
        r = rec.step(gen.next(sent));
      } catch (e) {
        rec.save("threw", undefined, e);
        throw e;
      }
      if (r.done) return r.value;
      sent = yield r.value;
    }
  } finally {
    // Still open: the body stopped iterating (break, return, a throw in its loop).
    if (rec.open) {
      rec.save("left");
      gen.return(undefined);
    }
  }
}

async function* liveAsync(gen: AsyncGenerator, rec: Recorder, st: ReplayState): AsyncGenerator {
  let sent: unknown;
  try {
    for (;;) {
      let r: IteratorResult<unknown>;
      // Each step is I/O the body asked for: the replay waits for it before deciding (docs/replay.md).
      st.traceStarted();
      try {
        r = rec.step(await gen.next(sent));
      } catch (e) {
        rec.save("threw", undefined, e);
        throw e;
      } finally {
        st.traceEnded();
      }
      if (r.done) return r.value;
      sent = yield r.value;
    }
  } finally {
    if (rec.open) {
      rec.save("left");
      await gen.return(undefined);
    }
  }
}

/** A generator over a recorded trace's items: what a replay gets instead of running the function. */
export function replayedGenerator(t: TraceRecord, name: string): Generator | AsyncGenerator {
  const rec = (t.outcome.ok ? deserialize(t.outcome.value) : undefined) as GeneratorRecord | undefined;
  if (!rec || !Array.isArray(rec.items))
    throw new NonDeterminismError(`trace ${name}: its record is not a generator's`);
  const beyond = (): NonDeterminismError =>
    new NonDeterminismError(
      `trace ${name} is not deterministic: its generator was left after ${rec.items.length} item(s) when ` +
        `recorded, and the replay asks for more. Consume a traced generator the same way on every replay`,
    );
  function* sync(): Generator {
    for (const v of rec!.items) yield v;
    if (rec!.end === "threw") throw deserializeError(rec!.error!);
    if (rec!.end === "left") throw beyond();
    return rec!.ret;
  }
  async function* asyncItems(): AsyncGenerator {
    yield* sync();
  }
  return t.gen === "async" ? asyncItems() : sync();
}
