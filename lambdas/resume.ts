/**
 * Resuming a parent once its wait may be satisfied: claimed once per epoch (markResuming), sent,
 * and marked sent, so a redelivery re-sends only a resume a crash left unsent.
 */
import { sendExecs, sendToCoordinator } from "../sdk/aws/transport/dispatch.ts";
import { MESSAGE_VERSION, actionOf } from "../sdk/aws/messages.ts";
import type { ExecMessage, RecheckMessage } from "../sdk/aws/messages.ts";
import type { Runtime } from "../sdk/aws/runtime.ts";
import { markResuming, markSent, readCounter } from "../sdk/aws/store/counters.ts";
import { releaseToken } from "../sdk/aws/store/windows.ts";
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
    const age = rt.now() - (cnt.rat ?? 0);
    if (!mine && age < UNSENT_AFTER_MS) {
      // Its marker is sending it — or died first, and a twin delivery of its messages that counted
      // them without resuming acknowledged them, so no redelivery will: look again once the mark
      // is old. Rare: only a completion counted between a mark and its send gets here.
      const msg: RecheckMessage = {
        k: "recheck",
        v: MESSAGE_VERSION,
        run: cnt.run,
        id: action,
        epoch: cnt.epoch,
      };
      await sendToCoordinator(rt, [{ msg, delaySeconds: Math.ceil((UNSENT_AFTER_MS - age) / 1000) + 1 }]);
      return false;
    }
  }
  await sendResume(rt, action, cnt.epoch, self);
  return true;
}

/** A `recheck` (see maybeResume): the resume of its epoch, if still marked and unsent. */
export async function recheckResume(rt: Runtime, m: RecheckMessage, messageId: string): Promise<void> {
  const cnt = await readCounter(rt, m.id);
  if (cnt?.epoch === m.epoch) await maybeResume(rt, m.id, cnt, [releaseToken(messageId)]);
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
