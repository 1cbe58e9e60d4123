/**
 * The dead-letter consumer: every Aloft DLQ (the coordinator's, each environment's executor
 * queue's) is its event source. A message there failed every delivery; left alone, the action it
 * concerns and its run would stay RUNNING. So each one ends something, with a DeadLetterError
 * naming the message kind, the action, the receive count and the last error its handler recorded
 * (failures.ts):
 *
 * - `exec` (a child, a root or a resume): that action fails; its parent resumes and sees a TaskError.
 * - `done` / `dones`: the completions were never counted, so each parent they name cannot be
 *   trusted to resume: it fails.
 * - `timeout`: that action fails. `start`: the run fails.
 * - `sweep`: retried once here (a sweep only cancels), and logged. `dispatch`: retried once here;
 *   if it fails again, the parent whose calls it sends fails.
 * - Unparseable: the action or run it names fails, if it names one; logged with its body.
 *
 * The consumer never fails a message itself: one it cannot handle is logged and dropped (a DLQ of
 * the DLQ would only move the problem).
 */
import type { SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { DeadLetterError } from "../sdk/errors.ts";
import { actionOfParent, failAction } from "./fail-action.ts";
import type { ActionId } from "./fail-action.ts";
import { readFailure } from "../sdk/aws/store/failures.ts";
import { CoordinatorMessage, ExecMessage, parseMessage } from "../sdk/aws/messages.ts";
import { runtime } from "../sdk/aws/runtime.ts";
import { readCounter } from "../sdk/aws/store/counters.ts";
import { readAction } from "../sdk/aws/store/results.ts";
import type { RunItem } from "../sdk/aws/store/table.ts";
import type { Runtime } from "../sdk/aws/runtime.ts";
import { failRun } from "./coord/start-run.ts";
import { sweep } from "./coord/sweep.ts";
import { continueDispatch } from "./fan-out.ts";
import { matchSignals } from "./durable-waits.ts";
import { callbackCompleted } from "./callbacks.ts";
import { sendToCoordinator } from "../sdk/aws/transport/dispatch.ts";
import type { Outbox } from "./exec/context.ts";

export async function handler(event: SQSEvent): Promise<SQSBatchResponse> {
  const rt = runtime();
  await Promise.all(
    event.Records.map((r) =>
      consume(rt, r).catch((e: unknown) =>
        rt.log.error("could not end what a dead-lettered message concerns", {
          messageId: r.messageId,
          queue: r.eventSourceARN,
          body: r.body.slice(0, 2_000),
          error: (e as Error)?.stack ?? String(e),
        }),
      ),
    ),
  );
  return { batchItemFailures: [] };
}

async function consume(rt: Runtime, r: SQSRecord): Promise<void> {
  const failure = await readFailure(rt, r.messageId);
  // SQS keeps counting receives across the move to the DLQ; this delivery is one of them.
  const received = Math.max(1, Number(r.attributes?.ApproximateReceiveCount ?? "1") - 1);
  const receives = failure ? `${failure.n} failed deliveries (${received} receives)` : `${received} receives`;
  const last = failure?.err ?? "none recorded (the handler died, timed out, or predates recording)";
  const why = (what: string) =>
    new DeadLetterError(`${what} dead-lettered after ${receives}; last error: ${last}`);

  const kind = peekKind(r.body);
  const p = kind === "exec" ? parseMessage(ExecMessage, r.body) : parseMessage(CoordinatorMessage, r.body);
  if (!p.ok) {
    rt.log.error("a dead-lettered message is not an Aloft message", {
      messageId: r.messageId,
      error: p.error,
      body: r.body.slice(0, 2_000),
    });
    const ref = p.ref;
    if (!ref) return;
    const error = why(
      `a malformed ${kind ?? "message"} for ${ref.task ?? "action"} ${ref.id ?? ref.run} of run ${ref.run}`,
    );
    if (ref.id === undefined || ref.id === ref.run) await failRun(rt, ref.run, error.message, error);
    else if (ref.parent !== undefined)
      await failAction(rt, { run: ref.run, id: ref.id, parent: ref.parent }, error);
    return;
  }
  const m = p.msg;
  rt.log.warn("a dead-lettered message ends what it concerns", {
    messageId: r.messageId,
    kind: m.k,
    run: m.k === "dones" ? m.d[0]?.run : m.run,
  });
  switch (m.k) {
    case "exec":
    case "timeout": {
      // A delivery that did its work but outlived its visibility timeout can dead-letter too: a
      // live parent whose counter moved past this epoch needs nothing from this message (the
      // reconciler watches the rest). An ended one may have failed writing its outcome: fail it
      // (failAction only re-reports an outcome that exists).
      if (m.k === "exec") {
        const cnt = await readCounter(rt, m.id);
        if (cnt && cnt.st !== "E" && cnt.epoch !== undefined && cnt.epoch > m.epoch) return;
      }
      const what =
        m.k === "exec" ? `an exec message (epoch ${m.epoch}, attempt ${m.attempt})` : "a deadline check";
      await failAction(rt, m, why(`${what} for ${m.task} ${m.id} of run ${m.run}`));
      return;
    }
    case "start":
      // A start that created the run and sent its root did its work.
      if (((await readAction(rt, m.run, null, m.run)) as RunItem | undefined)?.started) return;
      await failRun(rt, m.run, "", why(`the start message of run ${m.run} (task ${m.task})`));
      return;
    case "sweep":
      rt.log.error("a sweep dead-lettered; retrying it once", { run: m.run, action: m.id, last });
      await sweep(rt, m, r.messageId);
      return;
    case "resend":
    case "recheck":
      // The reconciler's re-send of a stalled parent's calls, or a look at a resume marked and
      // never sent: the reconciler does either again at its next look.
      rt.log.error(`a ${m.k} dead-lettered; the reconciler acts at its next look`, {
        run: m.run,
        action: m.id,
        last,
      });
      return;
    case "dispatch": {
      // Sending a committed epoch's calls kept failing: try once more, else the parent cannot
      // progress (its calls past `from` may never go out), so it fails.
      try {
        await continueDispatch(rt, m, r.messageId);
        return;
      } catch (e) {
        const parent = await actionOfParent(rt, m.id);
        if (!parent) throw e;
        const error = why(
          `a dispatch message (calls ${m.from}..${m.n - 1} of epoch ${m.epoch}) for ${m.task} ${m.id} of run ${m.run}`,
        );
        await failAction(rt, parent, error);
        return;
      }
    }
    case "callback": {
      // The completion is recorded: the callback's exec, or the reconciler, settles it. Try once more now.
      rt.log.error("a callback message dead-lettered; settling it once more", { run: m.run, last });
      const outbox: Outbox = [];
      await callbackCompleted(rt, m.run, m.key, outbox, { id: r.messageId, redelivered: true });
      await sendToCoordinator(rt, outbox);
      return;
    }
    case "signal": {
      // The signal is stored: a wait's first exec, or the next signal, pairs it. Try once more now.
      rt.log.error("a signal message dead-lettered; matching it once more", {
        run: m.run,
        name: m.name,
        last,
      });
      const outbox: Outbox = [];
      await matchSignals(rt, m.run, m.name, outbox, { id: r.messageId, redelivered: true });
      await sendToCoordinator(rt, outbox);
      return;
    }
    case "done":
    case "dones": {
      const dones = m.k === "done" ? [m] : m.d;
      const parents = new Map<string, { run: string; kids: number }>();
      for (const d of dones) {
        const p = parents.get(d.parent) ?? { run: d.run, kids: 0 };
        p.kids++;
        parents.set(d.parent, p);
      }
      for (const [id, { run, kids }] of parents) {
        // The root's record may be missing only if it never suspended; its run item names it.
        const self = await actionOfParent(rt, id);
        const parent: (ActionId & { task?: string }) | undefined =
          self ?? (id === run ? { run, id, parent: null } : undefined);
        if (!parent) {
          rt.log.error("cannot fail the parent of dead-lettered completions: its record is gone", {
            run,
            parent: id,
          });
          continue;
        }
        const error = why(
          `a ${m.k} message with ${kids} completion(s) for parent ${parent.task ?? "?"} ${id} of run ${run} ` +
            `(never counted: the parent cannot be trusted to resume)`,
        );
        await failAction(rt, parent, error);
      }
      return;
    }
    default:
      m satisfies never;
  }
}

/** The `k` of a JSON body, if it has one. */
function peekKind(body: string): string | undefined {
  try {
    const k = (JSON.parse(body) as { k?: unknown })?.k;
    return typeof k === "string" ? k : undefined;
  } catch {
    return undefined;
  }
}
