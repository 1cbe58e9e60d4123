/**
 * What follows a committed suspension, from whichever process gets there (the executor that
 * committed it, a redelivery of its message after a crash, or the coordinator counting
 * completions): send the epoch's calls once, and resume the parent once its wait may be satisfied.
 * Each step is idempotent and closes with a marker (disp, sent) so a redelivery redoes only what
 * a crash left undone.
 */
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import type { CallRecord } from "../sdk/core/history.ts";
import { execOf, sendExecs } from "./dispatch.ts";
import { MESSAGE_VERSION, actionOf } from "./messages.ts";
import type { ExecMessage } from "./messages.ts";
import type { Runtime } from "./runtime.ts";
import { markDispatched, markResuming, markSent } from "./state/counters.ts";
import { loadHistory } from "./state/history.ts";
import type { CounterItem, SelfItem, WindowItem } from "./state/table.ts";
import { selfKey } from "./state/table.ts";
import { mayProgress } from "./state/trigger.ts";
import { occupants, partId, partOf } from "./state/windows.ts";
import type { WindowTag } from "./state/windows.ts";

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
): Promise<void> {
  const held = new Map(windows.map((w) => [partId(w), occupants(w)]));
  const out = [];
  for (const c of calls) {
    let tag: WindowTag | undefined;
    if (c.window) {
      const slots = held.get(partOf(c.window.key, c.window.index, c.window.limit));
      // No part for this map: its limit is at least its size, so it is not windowed.
      if (slots) {
        tag = slots.get(c.window.index);
        if (!tag) continue;
      }
    }
    out.push({ msg: execOf(run, c, tag), ...(fallbackEnv === undefined ? {} : { fallbackEnv }) });
  }
  await sendExecs(rt, out);
}

/**
 * After a crash between commit and dispatch: send the epoch's calls that have no result yet and
 * may be in flight (for a windowed map, the items holding a slot).
 */
export async function redispatch(
  rt: Runtime,
  cnt: CounterItem,
  action: string,
  fallbackEnv: string | undefined,
): Promise<void> {
  const loaded = await loadHistory(rt, action);
  const calls = (loaded.callsByEpoch.get(cnt.epoch) ?? []).filter((c) => !loaded.history.outcomes.has(c.id));
  await dispatchCalls(rt, cnt.run, calls, loaded.windows, fallbackEnv);
  await markDispatched(rt, action, cnt.epoch);
}

/** A resume decided this long ago and not marked sent is sent by anyone who sees it. */
const UNSENT_AFTER_MS = 30_000;

/**
 * Resumes `action` if its counter says it may progress, or if a resume was decided but not sent:
 * by the decider's own redelivery (one of `by`, the release tokens of the messages being handled,
 * is the mark's) or, once the mark is old, by anyone. Completions counted while the decider sends
 * (executors release windows concurrently) then send nothing: one resume per awaited set.
 */
export async function maybeResume(
  rt: Runtime,
  action: string,
  cnt: CounterItem,
  by: readonly number[],
  self?: Omit<ExecMessage, "epoch">,
): Promise<boolean> {
  if (cnt.st === "E") return false;
  if (cnt.st === "S") {
    if (!mayProgress(cnt, cnt.co - cnt.bo, cnt.ce - cnt.be)) return false;
    if (!(await markResuming(rt, action, cnt.epoch, by[0] ?? 0))) return false;
  } else {
    if ((cnt.sent ?? 0) >= cnt.epoch) return false;
    const mine = cnt.rby === undefined || by.includes(cnt.rby);
    if (!mine && rt.now() - (cnt.rat ?? 0) < UNSENT_AFTER_MS) return false;
  }
  await sendResume(rt, action, cnt.epoch, self);
  return true;
}

async function sendResume(
  rt: Runtime,
  action: string,
  epoch: number,
  self?: Omit<ExecMessage, "epoch">,
): Promise<void> {
  let msg: ExecMessage;
  if (self) msg = { ...self, epoch };
  else {
    const out = await rt.doc.send(
      new GetCommand({ TableName: rt.config.table, Key: selfKey(action), ConsistentRead: true }),
    );
    const s = out.Item as SelfItem | undefined;
    if (!s) {
      rt.log.warn("cannot resume: the parent's self record is gone (run expired?)", { action });
      return;
    }
    msg = {
      k: "exec",
      v: MESSAGE_VERSION,
      ...actionOf({ ...s, id: action }),
      args: s.args,
      attempt: s.attempt,
      epoch,
    };
  }
  delete msg.notBefore;
  await sendExecs(rt, [{ msg }]);
  await markSent(rt, action, epoch);
}
