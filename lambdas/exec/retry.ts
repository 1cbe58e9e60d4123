/** The next attempt of a failed action, started once (the attempt bump is conditional). */
import type { SerializedError } from "../../sdk/errors.ts";
import { sendExecs } from "../../sdk/aws/transport/dispatch.ts";
import type { ExecMessage } from "../../sdk/aws/messages.ts";
import type { Runtime } from "../../sdk/aws/runtime.ts";
import { bumpAttempt } from "../../sdk/aws/store/results.ts";

export async function retry(
  rt: Runtime,
  m: ExecMessage,
  delayMs: number,
  error: SerializedError,
): Promise<void> {
  // Only the attempt that failed may start the next: a duplicate delivery starts no second chain.
  if (!(await bumpAttempt(rt, m.run, m.parent, m.id, m.attempt))) return;
  rt.log.info("retrying", { task: m.task, action: m.id, attempt: m.attempt + 1, error: error.message });
  await sendRetry(rt, m, delayMs);
}

/** The exec of the attempt after `m`'s, after its backoff (a redelivery re-sends it: recorded). */
export function sendRetry(rt: Runtime, m: ExecMessage, delayMs: number): Promise<void> {
  return sendExecs(rt, [{ msg: { ...m, attempt: m.attempt + 1, epoch: 0 }, delayMs }]);
}
