/** The next attempt of a failed action, started once (the attempt bump is conditional). */
import type { SerializedError } from "../../sdk/errors.ts";
import { sendExecs } from "../../sdk/aws/transport/dispatch.ts";
import type { ExecMessage } from "../../sdk/aws/messages.ts";
import type { Runtime } from "../../sdk/aws/runtime.ts";
import { bumpAttempt, bumpedByTwin } from "../../sdk/aws/store/results.ts";
import { releaseToken } from "../../sdk/aws/store/windows.ts";
import { doneOf } from "../../sdk/aws/messages.ts";
import type { Delivery, Outbox } from "./context.ts";
import { untold } from "./untold.ts";

export async function retry(
  rt: Runtime,
  m: ExecMessage,
  delayMs: number,
  error: SerializedError,
  delivery: Delivery,
  outbox: Outbox,
): Promise<void> {
  // Only the attempt that failed may start the next: a duplicate delivery starts no second chain —
  // unless it is a delivery of this same message, which may have died before sending it, and
  // which this one's acknowledgement keeps from being delivered again (a duplicate exec of the
  // next attempt is recorded once).
  const by = releaseToken(delivery.id);
  const b = await bumpAttempt(rt, m.run, m.parent, m.id, m.attempt, by);
  if (!b.bumped && !bumpedByTwin(b.existing, m.attempt, by)) {
    // Ended meanwhile. By a delivery of this same message, say, whose body succeeded where this
    // one's failed and which died before telling the parent: this one's acknowledgement deletes
    // the message its redelivery would have told it from. Told as finish() tells a lost write.
    const ex = b.existing;
    if (m.parent !== null && ex?.["outcome"] !== undefined && untold(ex, delivery, rt.now()))
      outbox.push({ msg: doneOf(m, m.parent, ex["status"] === "SUCCEEDED") });
    return;
  }
  rt.log.info("retrying", { task: m.task, action: m.id, attempt: m.attempt + 1, error: error.message });
  await sendRetry(rt, m, delayMs);
}

/** The exec of the attempt after `m`'s, after its backoff (a redelivery re-sends it: recorded). */
export function sendRetry(rt: Runtime, m: ExecMessage, delayMs: number): Promise<void> {
  return sendExecs(rt, [{ msg: { ...m, attempt: m.attempt + 1, epoch: 0 }, delayMs }]);
}
