/**
 * Sending a committed epoch's calls, once, in bounded slices: from the executor that committed it,
 * a redelivery of its message after a crash, or a `dispatch` continuation. Each slice closes with
 * the counter's `disp` mark so a redelivery redoes only what a crash left undone.
 */
import type { CallRecord } from "../sdk/core/history.ts";
import { findTask } from "../sdk/registry.ts";
import { execOf, sendExecs, sendToCoordinator } from "../sdk/aws/transport/dispatch.ts";
import { MESSAGE_VERSION } from "../sdk/aws/messages.ts";
import type { DispatchMessage, ExecMessage } from "../sdk/aws/messages.ts";
import { batchGet, keyId, queryAll } from "../sdk/aws/store/io.ts";
import type { Runtime } from "../sdk/aws/runtime.ts";
import { markDispatched, readCounter } from "../sdk/aws/store/counters.ts";
import { loadHistory, readCalls } from "../sdk/aws/store/history.ts";
import type { CounterItem, WindowItem } from "../sdk/aws/store/table.ts";
import { actionPk, resultKey } from "../sdk/aws/store/table.ts";
import { occupants, partId, partOf, releaseToken } from "../sdk/aws/store/windows.ts";
import type { WindowTag } from "../sdk/aws/messages.ts";
import { maybeResume } from "./resume.ts";
import { registerWaits, waitExec } from "./durable-waits.ts";

/**
 * Sends calls of an epoch, except items of a windowed map that hold no slot now (the window lets
 * them out as slots free up). `windows` are the parts of the maps concerned (state/windows.ts).
 */
export async function dispatchCalls(
  rt: Runtime,
  run: string,
  calls: readonly CallRecord[],
  windows: readonly Pick<WindowItem, "name" | "key" | "part" | "parts" | "size" | "slots">[],
  fallbackEnv: string | undefined,
  /** The attempt each call is at, if past its first (a re-sent retry: reconcile.ts). */
  attempts?: ReadonlyMap<string, number>,
  /**
   * When the calls were made (their epoch's commit) and each one's position in its epoch: what a
   * durable wait is ordered and timed by, the same for every dispatch of it. Default: now, and
   * the position in `calls` (the epoch's own, when `calls` starts at its first).
   */
  made?: { at: number | undefined; pos?: readonly number[] },
): Promise<void> {
  const held = new Map(windows.map((w) => [partId(w), occupants(w)]));
  const out = [];
  const now = rt.now();
  const at = made?.at ?? now;
  for (const [i, c] of calls.entries()) {
    let tag: WindowTag | undefined;
    if (c.window) {
      const slots = held.get(partOf(c.window.key, c.window.index, c.window.limit));
      // No part for this map: its limit is at least its size, so it is not windowed.
      if (slots) {
        tag = slots.get(c.window.index);
        if (!tag) continue;
      }
    }
    const msg = execOf(run, c, tag);
    const attempt = attempts?.get(c.id);
    if (attempt !== undefined) msg.attempt = attempt;
    // A durable wait (sleep, waitForSignal) is sent delayed to its time, or stamped with its order.
    out.push({
      ...(waitExec(c, msg, at, made?.pos?.[i] ?? i, now) ?? { msg }),
      ...(fallbackEnv === undefined ? {} : { fallbackEnv }),
    });
  }
  await registerWaits(rt, out);
  await sendExecs(rt, out);
}

/** Calls one invocation sends; an epoch with more continues in `dispatch` messages. */
export const dispatchLimits = { perInvocation: 1_000 };

/** What an epoch's dispatch needs to know about its parent. */
export interface EpochRef {
  run: string;
  /** The parent. */
  id: string;
  /** The parent's task (its environment is the fallback queue of a call to an unknown task). */
  task: string;
  epoch: number;
  /** When the epoch was committed (CounterItem.ct). */
  at?: number;
}

/**
 * Sends a committed epoch's calls, at most `dispatchLimits.perInvocation` here; the rest continue
 * in a `dispatch` message to the coordinator (continueDispatch), so no invocation's work grows
 * with the number of children. The last step marks the epoch dispatched and only then may the
 * parent resume (maybeResume waits for the mark): a resume before every call went out would let
 * the next epoch commit over calls never sent.
 */
export async function dispatchEpoch(
  rt: Runtime,
  e: EpochRef,
  calls: readonly CallRecord[],
  windows: readonly Pick<WindowItem, "name" | "key" | "part" | "parts" | "size" | "slots">[],
  by: readonly number[],
  self?: Omit<ExecMessage, "epoch">,
): Promise<void> {
  const limit = dispatchLimits.perInvocation;
  const first = calls.slice(0, limit);
  await dispatchCalls(rt, e.run, first, windows, findTask(e.task)?.env, undefined, { at: e.at });
  if (calls.length > limit) return continueLater(rt, e, limit, calls.length);
  const after = await markDispatched(rt, e.id, e.epoch);
  if (after) await maybeResume(rt, e.id, after, by, self);
}

function continueLater(rt: Runtime, e: EpochRef, from: number, n: number): Promise<void> {
  const msg: DispatchMessage = {
    k: "dispatch",
    v: MESSAGE_VERSION,
    run: e.run,
    id: e.id,
    task: e.task,
    epoch: e.epoch,
    from,
    n,
  };
  return sendToCoordinator(rt, [{ msg }]);
}

/**
 * The next slice of an epoch's calls (a `dispatch` message): those without a result yet are sent
 * (a window's items only while they hold a slot); then the next message, or the dispatched mark
 * and the resume check. A redelivery sends its slice again (an exec delivered twice is recorded
 * once), or, of the last slice once the mark is set, checks the resume again; a slice of an epoch
 * that moved on, or of an ended parent, is dropped.
 */
export async function continueDispatch(rt: Runtime, m: DispatchMessage, messageId: string): Promise<void> {
  const cnt = await readCounter(rt, m.id);
  if (!cnt || cnt.st === "E" || cnt.epoch !== m.epoch) return;
  const to = Math.min(m.n, m.from + dispatchLimits.perInvocation);
  if ((cnt.disp ?? 0) >= m.epoch) {
    // Dispatched already: by this last slice's earlier delivery, which may have died before its
    // resume check — and if every completion was counted before the mark, no later one checks.
    if (to >= m.n) await maybeResume(rt, m.id, cnt, [releaseToken(messageId)]);
    return;
  }
  const positions = Array.from({ length: to - m.from }, (_, i) => m.from + i);
  const calls = await readCalls(rt, m.id, m.epoch, positions);
  const results = await batchGet(
    rt,
    calls.map((c) => resultKey(m.id, c.id)),
  );
  const open = positions.flatMap((pos, i) =>
    results.get(keyId(resultKey(m.id, calls[i]!.id)))?.["outcome"] === undefined
      ? [{ pos, c: calls[i]! }]
      : [],
  );
  await dispatchCalls(
    rt,
    m.run,
    open.map((o) => o.c),
    await loadWindows(rt, m.id, cnt),
    findTask(m.task)?.env,
    undefined,
    { at: cnt.ct, pos: open.map((o) => o.pos) },
  );
  if (to < m.n) return continueLater(rt, m, to, m.n);
  const after = await markDispatched(rt, m.id, m.epoch);
  if (after) await maybeResume(rt, m.id, after, [releaseToken(messageId)]);
}

/** An action's window parts: its own items and the one its counter hosts. */
async function loadWindows(rt: Runtime, action: string, cnt: CounterItem): Promise<WindowItem[]> {
  const parts = (await queryAll(rt, {
    KeyConditionExpression: "pk = :pk AND begins_with(sk, :w)",
    ExpressionAttributeValues: { ":pk": actionPk(action), ":w": "W#" },
    ConsistentRead: true,
  })) as unknown as WindowItem[];
  return cnt.win ? [...parts, { pk: cnt.pk, sk: cnt.sk, ...cnt.win }] : parts;
}

/**
 * After a crash between commit and dispatch (or during it): send the epoch's calls again from
 * the first, in slices (continueDispatch skips those with a result).
 */
export async function redispatch(rt: Runtime, cnt: CounterItem, e: Omit<EpochRef, "epoch">): Promise<void> {
  if (cnt.nc !== undefined) return continueLater(rt, { ...e, epoch: cnt.epoch }, 0, cnt.nc);
  // A counter committed before epochs recorded their call count: the whole list, here.
  const loaded = await loadHistory(rt, e.id);
  const open = (loaded.callsByEpoch.get(cnt.epoch) ?? []).flatMap((c, pos) =>
    loaded.history.outcomes.has(c.id) ? [] : [{ pos, c }],
  );
  await dispatchCalls(
    rt,
    cnt.run,
    open.map((o) => o.c),
    loaded.windows,
    findTask(e.task)?.env,
    undefined,
    { at: cnt.ct, pos: open.map((o) => o.pos) },
  );
  const after = await markDispatched(rt, e.id, cnt.epoch);
  if (after) await maybeResume(rt, e.id, after, []);
}
