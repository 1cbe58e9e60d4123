/** Cancelling an ended action's subtree, one page of calls per message. */
import { sendToCoordinator } from "../../sdk/aws/transport/dispatch.ts";
import type { SweepMessage } from "../../sdk/aws/messages.ts";
import type { Runtime } from "../../sdk/aws/runtime.ts";
import { sweepPage } from "../../sdk/aws/store/cancel.ts";
import { releaseToken } from "../../sdk/aws/store/windows.ts";

/** One page of a sweep; what follows it (the next page, sub-parents) goes back to the queue. */
export async function sweep(rt: Runtime, m: SweepMessage, messageId: string): Promise<void> {
  const next = await sweepPage(rt, m, releaseToken(messageId));
  await sendToCoordinator(
    rt,
    next.map((msg) => ({ msg })),
  );
}
