/** Whether an outcome another delivery recorded is this one's to report to the parent. */
import { releaseToken } from "../../sdk/aws/store/windows.ts";
import type { Delivery } from "./context.ts";

/** An outcome recorded this long ago was left untold by its writer if it is not counted by now. */
const UNTOLD_MS = 60_000;

/**
 * Whether a recorded outcome may never have been reported to the parent, so this delivery must
 * report it:
 * - a redelivery (SQS counts receives; a crashed delivery's message comes back with a count above
 *   one): its earlier delivery may be the writer that crashed before telling;
 * - a delivery of the message whose delivery wrote it (`by`): the same message handed to two
 *   invocations at once, and the writer may have died before telling — this one's acknowledgement
 *   deletes the message, so no redelivery would ever tell. If the writer lives it tells too: an
 *   over-count, which only resumes the parent early (docs/aws.md);
 * - an outcome older than UNTOLD_MS (a count over one is what SQS reports for a redelivery; this
 *   covers a count it did not report).
 * Any other loser (another message for the same action: a re-sent exec, a copy with its own id)
 * stays silent: if its writer died, the writer's own message is delivered again and tells.
 */
export function untold(existing: Record<string, unknown>, d: Delivery, now: number): boolean {
  if (d.redelivered) return true;
  if (existing["by"] !== undefined && existing["by"] === releaseToken(d.id)) return true;
  const ended = existing["ended"];
  return typeof ended === "number" && now - ended > UNTOLD_MS;
}
