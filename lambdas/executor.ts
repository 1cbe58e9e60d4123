/**
 * The executor Lambda: consumes one TaskEnvironment's queue and runs (or replays) the actions in
 * each batch with the pure core (execute.ts does the work). It reports partial batch failures:
 * a malformed or foreign message fails alone, dead-letters after the queue's maxReceiveCount, and
 * fails the action it names when it names one.
 *
 * The construct bundles `export { handler } from "lambdas/executor.ts"` after the user's task
 * module, so tasks are found in the registry (sdk/registry.ts).
 */
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import { sendToCoordinator } from "./dispatch.ts";
import { executeOne, failNamedAction, prefetch, timeoutChecks } from "./execute.ts";
import type { Outbox } from "./execute.ts";
import { ExecMessage, parseMessage } from "./messages.ts";
import { runtime } from "./runtime.ts";

/** Completions finishing within this window leave in one SendMessageBatch. */
const COALESCE_MS = 50;

export async function handler(event: SQSEvent): Promise<SQSBatchResponse> {
  const rt = runtime();
  const failures: { itemIdentifier: string }[] = [];
  const valid: { id: string; msg: ExecMessage; redelivered: boolean }[] = [];
  for (const r of event.Records) {
    const p = parseMessage(ExecMessage, r.body);
    if (p.ok) {
      // SQS counts receives: above one, an earlier delivery of this message failed or crashed.
      const redelivered = Number(r.attributes?.ApproximateReceiveCount ?? "1") > 1;
      valid.push({ id: r.messageId, msg: p.msg, redelivered });
      continue;
    }
    rt.log.error("rejected an executor message", {
      messageId: r.messageId,
      error: p.error,
      body: r.body.slice(0, 500),
    });
    failures.push({ itemIdentifier: r.messageId });
    const ref = p.ref;
    if (ref?.id !== undefined)
      await failNamedAction(
        rt,
        { ...ref, id: ref.id },
        `a malformed message for this action was rejected: ${p.error}`,
      ).catch(() => undefined);
  }
  if (!valid.length) return { batchItemFailures: failures };

  let ctx;
  try {
    const msgs = valid.map((v) => v.msg);
    ctx = await prefetch(rt, msgs);
    // Timeout checks go out before any body runs, so a Lambda that dies mid-task still times out.
    await sendToCoordinator(rt, timeoutChecks(rt, msgs));
  } catch (e) {
    rt.log.error("executor batch could not start", { error: String(e) });
    return { batchItemFailures: [...failures, ...valid.map((v) => ({ itemIdentifier: v.id }))] };
  }
  // Completions leave as actions finish, coalesced over a few milliseconds: a fast child's parent
  // must not wait for a slow neighbour in the same batch, and ten children finishing together
  // still cost one SendMessageBatch. If a send fails, the messages it carried are retried: on
  // redelivery they find the outcome recorded and send the completion again.
  const failed = new Set<string>();
  let pending: { id: string; outbox: Outbox }[] = [];
  let timer: NodeJS.Timeout | undefined;
  const sends: Promise<void>[] = [];
  const flush = (): void => {
    clearTimeout(timer);
    timer = undefined;
    const batch = pending;
    pending = [];
    if (!batch.length) return;
    sends.push(
      sendToCoordinator(
        rt,
        batch.flatMap((b) => b.outbox),
      ).catch((e: unknown) => {
        rt.log.error("sending completions failed; their messages will be retried", { error: String(e) });
        for (const b of batch) failed.add(b.id);
      }),
    );
  };
  await Promise.all(
    valid.map(async (v) => {
      const outbox: Outbox = [];
      try {
        await executeOne(rt, v.msg, ctx, outbox, { id: v.id, redelivered: v.redelivered });
      } catch (e) {
        rt.log.error("exec failed; the message will be retried", {
          action: v.msg.id,
          task: v.msg.task,
          error: (e as Error)?.stack ?? String(e),
        });
        failed.add(v.id);
        return;
      }
      if (!outbox.length) return;
      pending.push({ id: v.id, outbox });
      timer ??= setTimeout(flush, COALESCE_MS);
    }),
  );
  flush();
  await Promise.all(sends);
  for (const v of valid) if (failed.has(v.id)) failures.push({ itemIdentifier: v.id });
  return { batchItemFailures: failures };
}
