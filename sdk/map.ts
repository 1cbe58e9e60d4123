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
import type { Call } from "./core/calls.ts";
import { StreamFuture, outcomeValue } from "./core/futures.ts";
import type { Wait } from "./core/wait.ts";
import { SuspendSignal, currentScope } from "./core/state.ts";
import type { Scope } from "./core/state.ts";
import { digest } from "./serde.ts";
import type { Task } from "./task.ts";
import { isTask } from "./task.ts";
import { groupPath } from "./group.ts";
import { checkOptions, mapOptionsSchema } from "./options.ts";

type AnyFn = (...args: any[]) => any;

export interface MapOptions {
  /** Most children in flight at once (default: all). */
  concurrency?: number;
  /** Yield a failed item's error in its place (default true, as in Flyte); false throws it. */
  returnExceptions?: boolean;
  /** Group name shown in the status tree (default: the task's name). */
  group?: string;
}

/**
 * Resumes of a streaming map are coalesced into this many batches at most. Each resume replays the
 * parent, which on AWS reads its whole history again: 8 keeps the consumer fed in eighths while a
 * stream of N costs about 8 history reads, not N (or 16: the same at twice the replays).
 */
const STREAM_BATCHES = 8;

type Item<F extends AnyFn> = Awaited<ReturnType<F>> | Error;

interface Prepared {
  scope: Scope;
  calls: Call[];
  ids: string[];
  task: string;
  failFast: boolean;
}

function prepare<F extends AnyFn>(
  task: Task<F>,
  items: Iterable<Parameters<F>[0]>,
  opts: MapOptions,
  scope: Scope,
): Prepared {
  const st = scope.state;
  const path = groupPath(scope.group, opts.group ?? task.def.name.slice(task.def.name.lastIndexOf(".") + 1));
  const list = Array.from(items);
  const limit = opts.concurrency;
  const seq = st.mapSeq.get(path) ?? 0;
  st.mapSeq.set(path, seq + 1);
  const key = limit === undefined ? undefined : digest(st.actionId, "map", path, String(seq));
  const mapScope: Scope = { state: st, group: path };
  const calls = list.map((item, index) =>
    makeCall(mapScope, task.def, [item], key === undefined ? undefined : { key, index, limit: limit! }),
  );
  return {
    scope,
    calls,
    ids: calls.map((c) => c.id),
    task: task.def.name,
    failFast: opts.returnExceptions === false,
  };
}

function check(task: unknown, opts: MapOptions): void {
  if (!isTask(task))
    throw new ConfigurationError("map needs a task registered with env.task as its first argument");
  checkOptions(mapOptionsSchema, opts, `map(${task.taskName}) options`);
  const c = opts.concurrency;
  if (c !== undefined && (!Number.isInteger(c) || c < 1)) {
    throw new ConfigurationError(`map(${task.taskName}): concurrency must be a whole number >= 1, got ${c}`);
  }
}

/**
 * Runs `task` over `items`; iterate the result for each item's value (or error), in input order.
 * @example
 * for (const r of map(square, [1, 2, 3])) { if (r instanceof Error) throw r; total += r; }
 */
function mapSync<F extends AnyFn>(
  task: Task<F>,
  items: Iterable<Parameters<F>[0]>,
  opts: MapOptions = {},
): Iterable<Item<F>> {
  check(task, opts);
  const scope = currentScope();
  if (!scope) return plainSync(task, items, opts);
  const p = prepare(task, items, opts, scope);
  return {
    *[Symbol.iterator]() {
      for (let k = 0; k < p.calls.length; k++) {
        const o = p.calls[k]!.outcome;
        if (!o) {
          const wait: Wait = {
            kind: "stream",
            ids: p.ids,
            from: k,
            batch: p.ids.length - k,
            failFast: p.failFast,
          };
          p.scope.state.requestSuspend(wait);
          throw new SuspendSignal();
        }
        const r = outcomeValue(p.task, o);
        if (r.ok) yield r.value as Item<F>;
        else if (!p.failFast) yield r.error;
        else throw r.error;
      }
    },
  };
}

/**
 * Runs `task` over `items` and streams results in input order.
 * @example
 * for await (const r of map.aio(square, range(100), { concurrency: 10 })) console.log(r);
 */
function mapAio<F extends AnyFn>(
  task: Task<F>,
  items: Iterable<Parameters<F>[0]>,
  opts: MapOptions = {},
): AsyncIterable<Item<F>> {
  check(task, opts);
  const scope = currentScope();
  if (!scope) return plainAio(task, items, opts);
  const p = prepare(task, items, opts, scope);
  const n = p.ids.length;
  const batch = Math.max(1, Math.ceil(n / STREAM_BATCHES));
  return {
    [Symbol.asyncIterator]() {
      let k = 0;
      return {
        next(): Promise<IteratorResult<Item<F>>> {
          if (k >= n) return Promise.resolve({ done: true, value: undefined });
          const o = p.calls[k]!.outcome;
          if (!o) {
            return new StreamFuture<IteratorResult<Item<F>>>(p.scope.state, {
              kind: "stream",
              ids: p.ids,
              from: k,
              batch,
              failFast: p.failFast,
            });
          }
          const id = p.ids[k++]!;
          const item = (): IteratorResult<Item<F>> => {
            const r = outcomeValue(p.task, o);
            if (r.ok) return { done: false, value: r.value as Item<F> };
            if (!p.failFast) return { done: false, value: r.error };
            throw r.error;
          };
          // A recorded item is handed over when the replay delivers it (the order first observed).
          return new Promise((resolve, reject) =>
            p.scope.state.delivery.onDelivery(id, {
              deliver: () => {
                try {
                  resolve(item());
                } catch (e) {
                  reject(e);
                }
              },
              visible: () => true,
            }),
          );
        },
      };
    },
  };
}

function* plainSync<F extends AnyFn>(
  task: Task<F>,
  items: Iterable<Parameters<F>[0]>,
  opts: MapOptions,
): Iterable<Item<F>> {
  for (const item of items) {
    try {
      yield task.def.fn(item) as Item<F>;
    } catch (e) {
      if (opts.returnExceptions === false) throw e;
      yield toError(e);
    }
  }
}

async function* plainAio<F extends AnyFn>(
  task: Task<F>,
  items: Iterable<Parameters<F>[0]>,
  opts: MapOptions,
): AsyncIterable<Item<F>> {
  const list = Array.from(items);
  const limit = opts.concurrency ?? list.length;
  const results: Promise<Item<F>>[] = [];
  let started = 0;
  const settle = async (i: number): Promise<Item<F>> => {
    try {
      return (await task.def.fn(list[i])) as Item<F>;
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
