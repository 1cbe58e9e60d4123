/**
 * The executor Lambda: consumes one TaskEnvironment's queue and runs (or replays) the actions in
 * each batch with the pure core (exec/ does the work). It reports partial batch failures:
 * a malformed or foreign message fails alone, dead-letters after the queue's maxReceiveCount, and
 * fails the action it names when it names one.
 *
 * The construct bundles `export { handler } from "lambdas/executor.ts"` after the user's task
 * module, so tasks are found in the registry (sdk/registry.ts).
 */
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import { sendToCoordinator } from "../sdk/aws/transport/dispatch.ts";
import { executeOne } from "./exec/run-action.ts";
import { ExecMessage, parseMessage } from "../sdk/aws/messages.ts";
import type { DoneMessage, TimeoutMessage } from "../sdk/aws/messages.ts";
import { runtime } from "../sdk/aws/runtime.ts";
import { errorText, reportFailures } from "./failures.ts";
import type { Failure } from "./failures.ts";
import { withHeartbeat } from "./visibility.ts";
import type { Runtime } from "../sdk/aws/runtime.ts";
import { isHosted, releaseToken } from "../sdk/aws/store/windows.ts";
import { failNamedAction } from "./exec/fail-named.ts";
import { prefetch } from "./exec/context.ts";
import type { Outbox } from "./exec/context.ts";
import { checkAt, timeoutCheck } from "./exec/deadline.ts";
import { countCompletions } from "./coord/completions.ts";
import type { Delivered } from "./coord/completions.ts";

/** Completions finishing within this window leave in one SendMessageBatch. */
const COALESCE_MS = 50;

/** A first delivery sends its deadline checks once its actions have run this long (or half their timeout). */
const CHECK_AFTER_MS = 5_000;

/** Tests turn this off to drive every completion through the coordinator. */
export const options = { releaseInExecutor: true };

/**
 * Reports a batch's completions. Those of a window part a counter hosts are released here — the
 * window turns a hop sooner and the release, which also counts them, is the only write; a map's
 * window bounds how many of its children finish at once, so this never makes a hot item. All
 * others go to the coordinator, which counts them in batches across executors. A release that
 * fails hands over to the coordinator with this delivery's token: what it committed before failing
 * is then found as its own (state/windows.ts).
 */
async function report(rt: Runtime, batch: { id: string; outbox: Outbox }[]): Promise<void> {
  const here: Delivered<DoneMessage>[] = [];
  const out: Outbox = [];
  for (const b of batch)
    for (const o of b.outbox) {
      if (options.releaseInExecutor && o.msg.k === "done" && o.msg.window && isHosted(o.msg.window))
        here.push({ id: b.id, msg: o.msg });
      else out.push(o);
    }
  if (here.length) {
    try {
      await countCompletions(rt, here);
    } catch (e) {
      rt.log.warn("releasing window slots failed; the coordinator takes over", { error: String(e) });
      for (const d of here) out.push({ msg: { ...d.msg, tok: releaseToken(d.id) } });
    }
  }
  await sendToCoordinator(rt, out);
}

/** What Lambda invokes: the batch handler, its messages held by a visibility lease (visibility.ts). */
export const handler = withHeartbeat(handleBatch);

export async function handleBatch(event: SQSEvent): Promise<SQSBatchResponse> {
  const rt = runtime();
  const failures: Failure[] = [];
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
    failures.push({ itemIdentifier: r.messageId, why: p.error });
    const ref = p.ref;
    if (ref?.id !== undefined)
      await failNamedAction(
        rt,
        { ...ref, id: ref.id },
        `a malformed message for this action was rejected: ${p.error}`,
      ).catch(() => undefined);
  }
  if (!valid.length) return reportFailures(rt, failures);

  // Deadline checks (coord/deadline.ts checkTimeout) end an attempt that does not end by itself: a body
  // past its timeout, a Lambda that died. Most attempts end well before: a first delivery sends
  // its checks only for actions still running after half their timeout (at most CHECK_AFTER_MS),
  // or that suspend (a parent's timeout covers its children). A redelivery — an earlier delivery
  // failed or died, maybe before sending them — sends its checks before any body runs. A leaf that
  // ends past its deadline sends its check at once instead of its outcome (exec/apply.ts).
  const checks = new Map<string, TimeoutMessage>();
  for (const v of valid) {
    const c = timeoutCheck(rt, v.msg);
    if (c) checks.set(v.id, c);
  }
  let ctx;
  try {
    ctx = await prefetch(
      rt,
      valid.map((v) => v.msg),
    );
    const first = valid.filter((v) => v.redelivered && checks.has(v.id));
    await sendToCoordinator(
      rt,
      first.map((v) => checkAt(rt, checks.get(v.id)!)),
    );
    for (const v of first) checks.delete(v.id);
  } catch (e) {
    rt.log.error("executor batch could not start", { error: String(e) });
    return reportFailures(rt, [
      ...failures,
      ...valid.map((v) => ({ itemIdentifier: v.id, why: errorText(e) })),
    ]);
  }
  // Completions leave as actions finish, coalesced over a few milliseconds: a fast child's parent
  // must not wait for a slow neighbour in the same batch, and ten children finishing together
  // still cost one SendMessageBatch. If a send fails, the messages it carried are retried: on
  // redelivery they find the outcome recorded and send the completion again.
  const failed = new Map<string, string>(); // message id -> why
  let pending: { id: string; outbox: Outbox }[] = [];
  let timer: NodeJS.Timeout | undefined;
  const sends: Promise<void>[] = [];
  const sendChecks = (ids: string[]): void => {
    const out = ids.flatMap((id) => {
      const c = checks.get(id);
      checks.delete(id);
      return c ? [checkAt(rt, c)] : [];
    });
    if (!out.length) return;
    sends.push(
      sendToCoordinator(rt, out).catch((e: unknown) => {
        rt.log.error("sending deadline checks failed; their messages will be retried", { error: String(e) });
        for (const id of ids) failed.set(id, errorText(e));
      }),
    );
  };
  const checkAfter = Math.min(CHECK_AFTER_MS, ...[...checks.values()].map((c) => c.timeoutMs / 2));
  const lateChecks = checks.size ? setTimeout(() => sendChecks([...checks.keys()]), checkAfter) : undefined;
  const flush = (): void => {
    clearTimeout(timer);
    timer = undefined;
    const batch = pending;
    pending = [];
    if (!batch.length) return;
    sends.push(
      report(rt, batch).catch((e: unknown) => {
        rt.log.error("sending completions failed; their messages will be retried", { error: String(e) });
        for (const b of batch) failed.set(b.id, errorText(e));
      }),
    );
  };
  await Promise.all(
    valid.map(async (v) => {
      const outbox: Outbox = [];
      try {
        const open = await executeOne(rt, v.msg, ctx, outbox, { id: v.id, redelivered: v.redelivered });
        // Ended, or handed on (a retry or a re-sent exec has checks of its own): no check needed.
        if (open) sendChecks([v.id]);
        else checks.delete(v.id);
      } catch (e) {
        checks.delete(v.id); // its redelivery sends it, before running the body again
        rt.log.error("exec failed; the message will be retried", {
          action: v.msg.id,
          task: v.msg.task,
          error: (e as Error)?.stack ?? String(e),
        });
        failed.set(v.id, errorText(e));
        return;
      }
      if (!outbox.length) return;
      pending.push({ id: v.id, outbox });
      timer ??= setTimeout(flush, COALESCE_MS);
    }),
  );
  clearTimeout(lateChecks);
  flush();
  await Promise.all(sends);
  for (const v of valid) if (failed.has(v.id)) failures.push({ itemIdentifier: v.id, why: failed.get(v.id) });
  return reportFailures(rt, failures);
}
