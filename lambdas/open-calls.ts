/**
 * A waiting parent's unsettled calls, a page of call chunks at a time: what the reconciler reads of
 * a stalled parent (reconcile.ts), and what a `resend` message sends again past its first page.
 */
import type { CallRecord } from "../sdk/core/history.ts";
import { isBuiltin } from "../sdk/core/durable-waits.ts";
import { MESSAGE_VERSION } from "../sdk/aws/messages.ts";
import type { ResendMessage } from "../sdk/aws/messages.ts";
import type { Runtime } from "../sdk/aws/runtime.ts";
import { findTask } from "../sdk/registry.ts";
import { sendToCoordinator } from "../sdk/aws/transport/dispatch.ts";
import { readCounter } from "../sdk/aws/store/counters.ts";
import { decodeChunk, readPrefix } from "../sdk/aws/store/history.ts";
import { batchGet, keyId } from "../sdk/aws/store/io.ts";
import type { CounterItem, WindowItem } from "../sdk/aws/store/table.ts";
import { counterKey, resultKey } from "../sdk/aws/store/table.ts";
import { dispatchCalls } from "./fan-out.ts";

/** Call chunks (100 calls each) read per page: the reconciler's walk, and each `resend`. */
export const openCallLimits = { chunksPerPage: 10 };

export interface OpenCalls {
  /** Calls of the page without an outcome. */
  open: CallRecord[];
  /** Those of them that suspended (they have children of their own). */
  parents: Set<string>;
  /** The attempt of those past their first (a retried child's result item holds it: bumpAttempt). */
  attempts: Map<string, number>;
  /** The parent's window parts (its own items and the one its counter hosts). */
  windows: WindowItem[];
  /** The sort key of the page's last chunk, if more follow. */
  next: string | undefined;
}

/** One page of `action`'s call chunks (after `after`): which are open, and which of those are parents. */
export async function openCalls(
  rt: Runtime,
  action: string,
  cnt: CounterItem,
  after?: string,
): Promise<OpenCalls> {
  const [{ items: chunks, more }, { items: parts }] = await Promise.all([
    readPrefix(rt, action, "C#", { limit: openCallLimits.chunksPerPage, after }),
    readPrefix(rt, action, "W#"),
  ]);
  const calls = chunks.flatMap((it) => decodeChunk(it));
  const results = await batchGet(
    rt,
    calls.map((c) => resultKey(action, c.id)),
  );
  const open: CallRecord[] = [];
  const attempts = new Map<string, number>();
  for (const c of calls) {
    const r = results.get(keyId(resultKey(action, c.id)));
    if (r?.["outcome"] !== undefined) continue;
    open.push(c);
    const a = r?.["attempt"];
    if (typeof a === "number" && a > 1) attempts.set(c.id, a);
  }
  const counters = await batchGet(
    rt,
    open.map((c) => counterKey(c.id)),
    true,
  );
  const parents = new Set(
    open.filter((c) => counters.get(keyId(counterKey(c.id)))?.["epoch"] !== undefined).map((c) => c.id),
  );
  const windows = parts as unknown as WindowItem[];
  if (cnt.win) windows.push({ pk: cnt.pk, sk: cnt.sk, ...cnt.win });
  const last = chunks.at(-1)?.["sk"];
  return { open, parents, attempts, windows, next: more && typeof last === "string" ? last : undefined };
}

/**
 * Sends again a page's unsettled children that a lost exec may hold up: not those that suspended
 * (their own parents' walk sees them) nor durable waits (a sleep or a signal waits on time or the
 * outside world). Each goes out at the attempt its result item records.
 */
export async function resendOpen(
  rt: Runtime,
  run: string,
  page: OpenCalls,
  fallbackEnv?: string,
): Promise<number> {
  const leaves = page.open.filter((c) => !page.parents.has(c.id) && !isBuiltin(c.task));
  await dispatchCalls(rt, run, leaves, page.windows, fallbackEnv, page.attempts);
  return leaves.length;
}

/** The `resend` of the page after `after` (reconcile.ts, when a stalled parent's calls exceed a page). */
export function resendOf(run: string, id: string, task: string, after: string): ResendMessage {
  return { k: "resend", v: MESSAGE_VERSION, run, id, task, after };
}

/**
 * A `resend` message: the page's unsettled children again, then the next page's message — as long
 * as the parent still waits (suspended); one that resumed or ended meanwhile needs none of it.
 */
export async function resendPage(rt: Runtime, m: ResendMessage): Promise<void> {
  const cnt = await readCounter(rt, m.id);
  if (cnt?.st !== "S") return;
  const page = await openCalls(rt, m.id, cnt, m.after);
  await resendOpen(rt, m.run, page, findTask(m.task)?.env);
  if (page.next) await sendToCoordinator(rt, [{ msg: resendOf(m.run, m.id, m.task, page.next) }]);
}
