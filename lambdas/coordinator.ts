/**
 * The coordinator Lambda: consumes the coordinator queue (run starts, child completions, timeout
 * checks, cancellation sweeps, the rest of a large epoch's dispatch, the reconciler's re-sends) and
 * does the work in the steps of coord/, fan-out.ts and open-calls.ts. Completions of one batch are
 * counted together, so a parent's counter is written once per batch, not once per child. Partial
 * batch failures: a malformed or foreign message fails alone and dead-letters after the queue's
 * maxReceiveCount; a message naming a run or action fails that run or action with a clear error.
 *
 * The construct bundles `export { handler } from "lambdas/coordinator.ts"` after the user's task
 * module, so tasks are found in the registry (sdk/registry.ts).
 */
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import { CoordinatorMessage, parseMessage } from "../sdk/aws/messages.ts";
import type { DoneMessage, SignalMessage } from "../sdk/aws/messages.ts";
import { runtime } from "../sdk/aws/runtime.ts";
import { errorText, reportFailures } from "./failures.ts";
import type { Failure } from "./failures.ts";
import { withHeartbeat } from "./visibility.ts";
import { failNamedAction } from "./exec/fail-named.ts";
import { checkTimeout } from "./coord/deadline.ts";
import { countCompletions } from "./coord/completions.ts";
import { failRun, startRun } from "./coord/start-run.ts";
import { sweep } from "./coord/sweep.ts";
import { resendPage } from "./open-calls.ts";
import { recheckResume } from "./resume.ts";
import { continueDispatch } from "./fan-out.ts";
import { matchSignals } from "./durable-waits.ts";
import { callbackCompleted } from "./callbacks.ts";
import { sendToCoordinator } from "../sdk/aws/transport/dispatch.ts";
import type { Delivery, Outbox } from "./exec/context.ts";
import type { Runtime } from "../sdk/aws/runtime.ts";

/** A signal was stored: hand it to the first open wait of its name; the waits' completions follow. */
async function signalled(rt: Runtime, run: string, name: string, delivery: Delivery): Promise<void> {
  const outbox: Outbox = [];
  await matchSignals(rt, run, name, outbox, delivery);
  await sendToCoordinator(rt, outbox);
}

/** A callback was completed: settle its wait (if its exec has attached; else that exec does). */
async function settled(rt: Runtime, run: string, key: string, delivery: Delivery): Promise<void> {
  const outbox: Outbox = [];
  await callbackCompleted(rt, run, key, outbox, delivery);
  await sendToCoordinator(rt, outbox);
}

/** What Lambda invokes: the batch handler, its messages held by a visibility lease (visibility.ts). */
export const handler = withHeartbeat(handleBatch);

export async function handleBatch(event: SQSEvent): Promise<SQSBatchResponse> {
  const rt = runtime();
  const failures: Failure[] = [];
  const done: { id: string; msg: DoneMessage }[] = [];
  const others: Promise<void>[] = [];
  // Signals of one run and name in this batch: one matcher pairs them all (it reads what is open).
  const signals = new Map<string, SignalMessage & { ids: string[]; redelivered: boolean }>();
  for (const r of event.Records) {
    const p = parseMessage(CoordinatorMessage, r.body);
    if (!p.ok) {
      rt.log.error("rejected a coordinator message", {
        messageId: r.messageId,
        error: p.error,
        body: r.body.slice(0, 500),
      });
      failures.push({ itemIdentifier: r.messageId, why: p.error });
      const ref = p.ref;
      if (ref) {
        const why = `a malformed message for this ${ref.id === undefined ? "run" : "action"} was rejected: ${p.error}`;
        const fail =
          ref.id === undefined || ref.id === ref.run
            ? failRun(rt, ref.run, why)
            : failNamedAction(rt, { ...ref, id: ref.id }, why);
        others.push(fail.catch(() => undefined));
      }
      continue;
    }
    const m = p.msg;
    if (m.k === "done") {
      done.push({ id: r.messageId, msg: m });
      continue;
    }
    if (m.k === "signal") {
      const key = `${m.run}\u0000${m.name}`;
      const s = signals.get(key) ?? { ...m, ids: [], redelivered: false };
      s.ids.push(r.messageId);
      s.redelivered ||= Number(r.attributes?.ApproximateReceiveCount ?? "1") > 1;
      signals.set(key, s);
      continue;
    }
    if (m.k === "callback") {
      others.push(
        settled(rt, m.run, m.key, {
          id: r.messageId,
          redelivered: Number(r.attributes?.ApproximateReceiveCount ?? "1") > 1,
        }).catch((e: unknown) => {
          rt.log.error("settling a callback failed; it will be retried", {
            run: m.run,
            error: (e as Error)?.stack ?? String(e),
          });
          failures.push({ itemIdentifier: r.messageId, why: errorText(e) });
        }),
      );
      continue;
    }
    if (m.k === "dones") {
      for (const d of m.d) done.push({ id: r.messageId, msg: { k: "done", v: m.v, ...d } });
      continue;
    }
    const work =
      m.k === "start"
        ? startRun(rt, m)
        : m.k === "timeout"
          ? checkTimeout(rt, m, r.messageId)
          : m.k === "dispatch"
            ? continueDispatch(rt, m, r.messageId)
            : m.k === "resend"
              ? resendPage(rt, m)
              : m.k === "recheck"
                ? recheckResume(rt, m, r.messageId)
                : sweep(rt, m, r.messageId);
    others.push(
      work.catch((e: unknown) => {
        rt.log.error("coordinator message failed; it will be retried", {
          kind: m.k,
          run: m.run,
          error: (e as Error)?.stack ?? String(e),
        });
        failures.push({ itemIdentifier: r.messageId, why: errorText(e) });
      }),
    );
  }
  for (const s of signals.values())
    others.push(
      signalled(rt, s.run, s.name, { id: s.ids[0]!, redelivered: s.redelivered }).catch((e: unknown) => {
        rt.log.error("matching a signal failed; it will be retried", {
          run: s.run,
          error: (e as Error)?.stack ?? String(e),
        });
        for (const id of s.ids) failures.push({ itemIdentifier: id, why: errorText(e) });
      }),
    );
  others.push(
    countCompletions(rt, done).catch((e: unknown) => {
      // Counted parents may be counted again on redelivery: an over-count only resumes early.
      rt.log.error("counting completions failed; the batch's completions will be retried", {
        error: (e as Error)?.stack ?? String(e),
      });
      for (const id of new Set(done.map((d) => d.id)))
        failures.push({ itemIdentifier: id, why: errorText(e) });
    }),
  );
  await Promise.all(others);
  return reportFailures(rt, failures);
}
