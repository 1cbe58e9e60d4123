/**
 * `map` and `map.aio`: run a task over many inputs as one named group, results in input order.
 *
 * All items are recorded as calls at once; with `concurrency`, the adapter releases the next item
 * as one finishes, without replaying the parent. The sync form suspends the body until every item
 * has settled; the async form streams, resuming the parent in coalesced batches (at most
 * STREAM_BATCHES, 8, whatever N is) rather than once per item.
 */
import { ConfigurationError, toError } from "./errors.ts";
import { makeCall } from "./core/calls.ts";
import type { CallSettings, TaskDef } from "./core/task-def.ts";
import type { CapturedCall } from "./core/state.ts";
import { scopeStorage } from "./core/state.ts";
import type { Call } from "./core/calls.ts";
import { StreamFuture, isThenable, outcomeValue } from "./core/futures.ts";
import type { Wait } from "./core/wait.ts";
import type { Receiver } from "./core/delivery.ts";
import type { Outcome } from "./core/history.ts";
import { SuspendSignal, currentScope } from "./core/state.ts";
import type { Scope } from "./core/state.ts";
import { digest } from "./serde.ts";
import type { Task } from "./task.ts";
import { isTask } from "./task.ts";
import { groupPath } from "./group.ts";
import { checkOptions, mapOptionsSchema } from "./options.ts";
import { decide, quotaFrom, resolveRules } from "./map-rules.ts";
import type { Rules, Verdict } from "./map-rules.ts";

type AnyFn = (...args: any[]) => any;

export interface MapOptions {
  /** Most children in flight at once (default: all). */
  concurrency?: number;
  /** Yield a failed item's error in its place (default true, as in Flyte); false throws it. */
  returnExceptions?: boolean;
  /** Group name shown in the status tree (default: the task's name). */
  group?: string;
  /**
   * End the map once this many items succeeded: the children still queued or running are
   * cancelled and yield `CancelledError` in place (skipped with `returnExceptions: false`).
   */
  minSuccessful?: number;
  /**
   * Fail the map once more items than this failed (a count, or a percentage of the items such as
   * `"10%"`, rounded down): the rest are cancelled, and iterating on throws a `MapFailedError`
   * giving the counts where the first cancelled item would be (or after the last item).
   */
  toleratedFailures?: number | `${number}%`;
}

/**
 * Resumes of a streaming map are coalesced into this many batches at most. Each resume replays the
 * parent, which on AWS reads its whole history again: 8 keeps the consumer fed in eighths while a
 * stream of N costs about 8 history reads, not N (or 16: the same at twice the replays).
 */
const STREAM_BATCHES = 8;

type Item<F extends AnyFn> = Awaited<ReturnType<F>> | Error;

/**
 * What `map` runs over each item: a task, or a function of the item that calls exactly one task
 * (`(id) => score.aio(id, name, config)`), as Flyte maps over `functools.partial`.
 */
type Mapped<F extends AnyFn> = Task<F> | F;

/** One item's call: the task, its arguments and the call site's settings. */
interface Bound {
  def: TaskDef;
  args: readonly unknown[];
  settings: CallSettings | undefined;
}

/**
 * The call `f` makes for `item`. A function of the item runs with task calls captured (calls.ts
 * captureCall), so it costs nothing to run ahead of the window: the child itself is still released
 * as `concurrency` allows. It must call exactly one task and return that call as it is.
 */
function bind(f: Mapped<AnyFn>, item: unknown, scope: Scope, index: number): Bound {
  if (isTask(f)) return { def: f.def, args: [item], settings: f.settings };
  const capture: CapturedCall[] = [];
  let ret: unknown;
  try {
    ret = scopeStorage.run({ ...scope, capture }, () => f(item));
  } catch (e) {
    throw new ConfigurationError(`map: the function threw for item ${index} before calling its task`, {
      cause: e,
    });
  }
  const fix =
    "pass map a function that calls one task and returns that call, e.g. " +
    "map((id) => score.aio(id, name, config), ids), or map over the task itself";
  if (capture.length !== 1) {
    const named = capture.map((c) => c.def.name).join(", ");
    throw new ConfigurationError(
      `map: the function called ${capture.length === 0 ? "no task" : `${capture.length} tasks (${named})`} ` +
        `for item ${index}; ${fix}`,
    );
  }
  const c = capture[0]!;
  if (ret !== c.marker) {
    if (isThenable(ret)) (ret as Promise<unknown>).then(undefined, () => {}); // an async wrapper's, discarded
    throw new ConfigurationError(
      `map: the function called ${c.def.name} for item ${index} but returned something else than that call ` +
        `(an async function, or a .then on it); ${fix}: map yields the task's results as they are`,
    );
  }
  return { def: c.def, args: c.args, settings: c.settings };
}

/** The short name of a task (its name after the environment), a map's default group. */
const shortName = (def: TaskDef): string => def.name.slice(def.name.lastIndexOf(".") + 1);

interface Prepared {
  scope: Scope;
  calls: Call[];
  ids: string[];
  /** Each item's task name (what its errors name). */
  tasks: string[];
  failFast: boolean;
  rules: Rules | undefined;
  verdict: Verdict;
}

function prepare<F extends AnyFn>(
  task: Mapped<F>,
  items: Iterable<Parameters<F>[0]>,
  opts: MapOptions,
  scope: Scope,
  stream: boolean,
): Prepared {
  const st = scope.state;
  const list = Array.from(items);
  const bound = list.map((item, i) => bind(task, item, scope, i));
  const first = isTask(task) ? task.def : bound[0]?.def;
  const path = groupPath(scope.group, opts.group ?? (first ? shortName(first) : "map"));
  const limit = opts.concurrency;
  const seq = st.mapSeq.get(path) ?? 0;
  st.mapSeq.set(path, seq + 1);
  const key = limit === undefined ? undefined : digest(st.actionId, "map", path, String(seq));
  const mapScope: Scope = { state: st, group: path };
  const calls = bound.map((b, index) =>
    makeCall(
      mapScope,
      b.def,
      b.args,
      key === undefined ? undefined : { key, index, limit: limit! },
      b.settings,
    ),
  );
  const tasks = bound.map((b) => b.def.name);
  const rules = resolveRules(opts, calls.length);
  // A sync map unwinds the body to suspend, and a completion rule is decided from what was
  // recorded when the map was called: neither can be carried over a suspension (continuation.ts).
  if (!stream || rules) st.cannotContinue();
  return {
    scope,
    calls,
    ids: calls.map((c) => c.id),
    tasks,
    failFast: opts.returnExceptions === false,
    rules,
    verdict: rules ? decide(st, first?.name ?? "map", calls, rules, tasks) : { kind: "open" },
  };
}

/** The stream wait of a map from item `from` on. */
function streamWait(p: Prepared, from: number, batch: number): Wait & { kind: "stream" } {
  return {
    kind: "stream",
    ids: p.ids,
    from,
    batch,
    failFast: p.failFast,
    ...(p.rules ? { quota: quotaFrom(p.calls, from, p.rules) } : {}),
  };
}

/**
 * What item `k` of a map that a completion rule ended yields, if the rule cancelled it: `skip` it
 * (returnExceptions: false), `throw` the map's failure, or its CancelledError. Undefined for an
 * item the rule did not cancel.
 */
function ended(p: Prepared, k: number): "skip" | "throw" | "yield" | undefined {
  if (p.verdict.kind === "open" || !p.scope.state.cancelled.has(p.ids[k]!)) return undefined;
  if (p.verdict.kind === "failed") return "throw";
  return p.failFast ? "skip" : "yield";
}

function check(task: unknown, opts: MapOptions): void {
  if (typeof task !== "function")
    throw new ConfigurationError(
      "map needs a task registered with env.task, or a function of the item that calls one task, " +
        "as its first argument",
    );
  const name = isTask(task) ? task.taskName : task.name || "function";
  checkOptions(mapOptionsSchema, opts, `map(${name}) options`);
  const c = opts.concurrency;
  if (c !== undefined && (!Number.isInteger(c) || c < 1)) {
    throw new ConfigurationError(`map(${name}): concurrency must be a whole number >= 1, got ${c}`);
  }
}

/** Runs one item outside any task: the task as a plain function, or the bound function. */
const callPlain = (f: Mapped<AnyFn>, item: unknown): unknown => (isTask(f) ? f.def.fn(item) : f(item));

/**
 * Runs `task` over `items`; iterate the result for each item's value (or error), in input order.
 * `task` may be a function of the item that calls one task, binding its other arguments.
 * @example
 * for (const r of map((id) => score(id, "v2", config), ids)) console.log(r);
 * @example
 * for (const r of map(square, [1, 2, 3])) { if (r instanceof Error) throw r; total += r; }
 */
function mapSync<F extends AnyFn>(
  task: Mapped<F>,
  items: Iterable<Parameters<F>[0]>,
  opts: MapOptions = {},
): Iterable<Item<F>> {
  check(task, opts);
  const scope = currentScope();
  if (!scope) return plainSync(task, items, opts);
  const p = prepare(task, items, opts, scope, false);
  return {
    *[Symbol.iterator]() {
      for (let k = 0; k < p.calls.length; k++) {
        const o = p.calls[k]!.outcome;
        if (!o) {
          p.scope.state.requestSuspend(streamWait(p, k, p.ids.length - k));
          throw new SuspendSignal();
        }
        const end = ended(p, k);
        if (end === "throw") throw (p.verdict as { error: Error }).error;
        if (end === "skip") continue;
        const r = outcomeValue(p.tasks[k]!, o);
        if (r.ok) yield r.value as Item<F>;
        else if (!p.failFast) yield r.error;
        else throw r.error;
      }
      if (p.verdict.kind === "failed") throw p.verdict.error;
    },
  };
}

/**
 * Runs `task` over `items` and streams results in input order. `task` may be a function of the item
 * that calls one task with `.aio(...)`: `map.aio((id) => score.aio(id, name, config), ids)`.
 * @example
 * for await (const r of map.aio(square, range(100), { concurrency: 10 })) console.log(r);
 */
function mapAio<F extends AnyFn>(
  task: Mapped<F>,
  items: Iterable<Parameters<F>[0]>,
  opts: MapOptions = {},
): AsyncIterable<Item<F>> {
  check(task, opts);
  const scope = currentScope();
  if (!scope) return plainAio(task, items, opts);
  const p = prepare(task, items, opts, scope, true);
  const n = p.ids.length;
  const batch = Math.max(1, Math.ceil(n / STREAM_BATCHES));
  const st = p.scope.state;
  /** Item `i` as the stream yields it (its outcome recorded or arrived). */
  const itemAt = (i: number): IteratorResult<Item<F>> => {
    const r = outcomeValue(p.tasks[i]!, p.calls[i]!.outcome!);
    if (r.ok) return { done: false, value: r.value as Item<F> };
    if (!p.failFast) return { done: false, value: r.error };
    throw r.error;
  };
  /** Iterators told of an item that arrived while a continued replay was parked. */
  const readers = new Set<(i: number) => void>();
  if (st.keeping) {
    const waiting = (st.waiting ??= new Map());
    for (let i = 0; i < p.calls.length; i++) {
      const c = p.calls[i]!;
      if (!c.outcome) waiting.set(c.id, new Arrival(c, i, readers));
    }
  }
  return {
    [Symbol.asyncIterator]() {
      let k = 0;
      let over = false;
      /** A read parked at item k for want of its outcome (the stream's suspension). */
      let parked: StreamFuture<IteratorResult<Item<F>>> | undefined;
      readers.add((i) => {
        if (!parked || i !== k) return;
        // Handed over in the replay's delivery order, as a fresh replay hands a recorded item.
        parked.hand(p.ids[k++]!, () => itemAt(i));
        parked = undefined;
      });
      const done = (): Promise<IteratorResult<Item<F>>> => Promise.resolve({ done: true, value: undefined });
      return {
        next(): Promise<IteratorResult<Item<F>>> {
          if (over) return done();
          if (k >= n) {
            over = true;
            return p.verdict.kind === "failed" ? Promise.reject(p.verdict.error) : done();
          }
          const o = p.calls[k]!.outcome;
          if (!o) {
            // Two reads parked at once (a read ahead of a `for await`): left to a fresh replay.
            if (parked) st.cannotContinue();
            return (parked = new StreamFuture<IteratorResult<Item<F>>>(st, streamWait(p, k, batch)));
          }
          const end = ended(p, k);
          if (end === "throw") {
            over = true;
            return Promise.reject((p.verdict as { error: Error }).error);
          }
          if (end !== undefined) {
            k++;
            if (end === "skip") return this.next();
            const r = outcomeValue(p.tasks[k - 1]!, o);
            return Promise.resolve({ done: false, value: (r.ok ? r.value : r.error) as Item<F> });
          }
          const i = k++;
          // A recorded item is handed over when the replay delivers it (the order first observed).
          return new Promise((resolve, reject) =>
            st.delivery.onDelivery(p.ids[i]!, new ItemReceiver(itemAt, i, resolve, reject)),
          );
        },
        /** Leaving the loop early: the children still queued or running are cancelled. */
        return(): Promise<IteratorResult<Item<F>>> {
          if (parked) st.cannotContinue(); // left with a read parked: a fresh replay decides
          if (!over && !st.closed) for (let i = k; i < n; i++) if (!p.calls[i]!.outcome) st.cancel(p.ids[i]!);
          over = true;
          return done();
        },
      };
    },
  };
}

/*
 * The two per-item objects a stream makes are class instances, not object literals of arrows: tsx
 * (keepNames) names each such arrow as it is made, two calls per item of a 10,000-item map, about 2
 * µs an item (docs/performance.md, fourteenth pass).
 */

/** Hands a recorded item to a `next()` when the replay delivers its outcome. */
class ItemReceiver<T> implements Receiver {
  constructor(
    private readonly read: (i: number) => T,
    private readonly i: number,
    private readonly resolve: (v: T) => void,
    private readonly reject: (e: unknown) => void,
  ) {}
  deliver(): void {
    try {
      this.resolve(this.read(this.i));
    } catch (e) {
      this.reject(e);
    }
  }
  visible(): boolean {
    return true;
  }
}

/** Takes an item's outcome arrived while a continued replay was parked, and tells the readers. */
class Arrival {
  constructor(
    private readonly call: Call,
    private readonly i: number,
    private readonly readers: ReadonlySet<(i: number) => void>,
  ) {}
  arrive(o: Outcome): void {
    this.call.outcome = o;
    for (const r of this.readers) r(this.i);
  }
}

function* plainSync<F extends AnyFn>(
  task: Mapped<F>,
  items: Iterable<Parameters<F>[0]>,
  opts: MapOptions,
): Iterable<Item<F>> {
  for (const item of items) {
    try {
      yield callPlain(task, item) as Item<F>;
    } catch (e) {
      if (opts.returnExceptions === false) throw e;
      yield toError(e);
    }
  }
}

async function* plainAio<F extends AnyFn>(
  task: Mapped<F>,
  items: Iterable<Parameters<F>[0]>,
  opts: MapOptions,
): AsyncIterable<Item<F>> {
  const list = Array.from(items);
  const limit = opts.concurrency ?? list.length;
  const results: Promise<Item<F>>[] = [];
  let started = 0;
  const settle = async (i: number): Promise<Item<F>> => {
    try {
      return (await callPlain(task, list[i])) as Item<F>;
    } catch (e) {
      if (opts.returnExceptions === false) throw e;
      return toError(e);
    }
  };
  const start = (): void => {
    if (started < list.length) {
      const i = started++;
      results.push(settle(i));
    }
  };
  for (let i = 0; i < Math.min(limit, list.length); i++) start();
  for (let i = 0; i < list.length; i++) {
    const r = await results[i]!;
    start();
    yield r;
  }
}

/** `map(task, items)` (sync iterable) and `map.aio(task, items)` (async iterable). */
export const map = Object.assign(mapSync, { aio: mapAio });
