/**
 * Resuming a parent once its wait may be satisfied: claimed once per epoch (markResuming), sent,
 * and marked sent, so a redelivery re-sends only a resume a crash left unsent.
 */
import { sendExecs } from "../sdk/aws/transport/dispatch.ts";
import { MESSAGE_VERSION, actionOf } from "../sdk/aws/messages.ts";
import type { ExecMessage } from "../sdk/aws/messages.ts";
import type { Runtime } from "../sdk/aws/runtime.ts";
import { markResuming, markSent } from "../sdk/aws/store/counters.ts";
import type { CounterItem } from "../sdk/aws/store/table.ts";
import { readSelf } from "../sdk/aws/store/history.ts";
import { waitMayBeMet } from "../sdk/aws/store/counters.ts";

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
  // Not before every call of the epoch went out (dispatchEpoch): its dispatcher checks again then.
  if ((cnt.disp ?? 0) < cnt.epoch) return false;
  if (cnt.st === "S") {
    if (!waitMayBeMet(cnt)) return false;
    const mark = await markResuming(rt, action, cnt.epoch, by[0] ?? 0);
    // Lost to a delivery of one of the same messages (two invocations of one batch at once): it
    // may die before sending, and this one's acknowledgement keeps its redelivery from coming.
    if (!mark.won && !markedByTwin(mark.existing, cnt.epoch, by)) return false;
  } else {
    if ((cnt.sent ?? 0) >= cnt.epoch) return false;
    const mine = cnt.rby === undefined || by.includes(cnt.rby);
    if (!mine && rt.now() - (cnt.rat ?? 0) < UNSENT_AFTER_MS) return false;
  }
  await sendResume(rt, action, cnt.epoch, self);
  return true;
}

/**
 * Resumes `action` at `epoch` whatever its counts say (the reconciler, when completions were lost):
 * a replay is always safe — it reads the recorded history and, if its wait is still unmet,
 * suspends again with thresholds from what it found. Still one resume per suspension (the S → R
 * transition); false if another took it or the epoch moved on.
 */
export async function forceResume(rt: Runtime, action: string, epoch: number): Promise<boolean> {
  if (!(await markResuming(rt, action, epoch, 0)).won) return false;
  await sendResume(rt, action, epoch);
  return true;
}

/** A resume marked at `epoch`, not yet sent, by one of the tokens `by` (the messages being handled). */
function markedByTwin(c: CounterItem | undefined, epoch: number, by: readonly number[]): boolean {
  return (
    c?.st === "R" && c.epoch === epoch && (c.sent ?? 0) < epoch && c.rby !== undefined && by.includes(c.rby)
  );
}

export async function sendResume(
  rt: Runtime,
  action: string,
  epoch: number,
  self?: Omit<ExecMessage, "epoch">,
): Promise<void> {
  let msg: ExecMessage;
  if (self) msg = { ...self, epoch };
  else {
    const s = await readSelf(rt, action);
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
