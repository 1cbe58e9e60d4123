/**
 * Failing an action from outside its own execution (a dead-lettered message, a stalled run): the
 * same steps as an action that fails by itself (exec/finish.ts) — its counter ended, what
 * remains under it swept, its outcome written once, its parent told — so the parent resumes
 * normally and sees a TaskError, and a root's failure ends the run.
 */
import { serializeError } from "../sdk/errors.ts";
import { sendToCoordinator } from "../sdk/aws/transport/dispatch.ts";
import { MESSAGE_VERSION, doneOf } from "../sdk/aws/messages.ts";
import type { Runtime } from "../sdk/aws/runtime.ts";
import { endCounter } from "../sdk/aws/store/counters.ts";
import { writeTerminal } from "../sdk/aws/store/results.ts";
import { readSelf } from "../sdk/aws/store/history.ts";
import { failRun } from "./coord/start-run.ts";

/** An action as a message names it (with the window slot it holds, if any). */
export interface ActionId {
  run: string;
  id: string;
  parent: string | null;
  window?: string | undefined;
  ws?: number | undefined;
  wq?: number | undefined;
}

/**
 * Fails `a` with `error` unless it already ended. If it ended (its outcome is recorded) the
 * completion is reported again: the message that failed may have been the one to report it, and
 * a duplicate completion only resumes the parent early (docs/aws.md).
 */
export async function failAction(rt: Runtime, a: ActionId, error: Error): Promise<void> {
  const reason = `${error.name}: ${error.message}`;
  // Ended first, as when an action ends by itself: no resume or window advance after this.
  const hadKids = await endCounter(rt, a.id);
  if (hadKids)
    await sendToCoordinator(rt, [
      {
        msg: {
          k: "sweep",
          v: MESSAGE_VERSION,
          run: a.run,
          id: a.id,
          reason: `an ancestor failed: ${reason}`,
        },
      },
    ]);
  if (a.parent === null) {
    await failRun(rt, a.run, error.message, error);
    return;
  }
  const w = await writeTerminal(rt, {
    run: a.run,
    parent: a.parent,
    id: a.id,
    status: "FAILED",
    outcome: { ok: false, error: { ...serializeError(error), nonRecoverable: true } },
    attempt: undefined,
    kids: hadKids,
  });
  if (!w.written && w.existing?.["outcome"] === undefined) return;
  const ok = !w.written && w.existing?.["status"] === "SUCCEEDED";
  await sendToCoordinator(rt, [{ msg: doneOf(a, a.parent, ok) }]);
}

/** A parent's identity from its SELF item (written at its first suspension). */
export async function actionOfParent(
  rt: Runtime,
  id: string,
): Promise<(ActionId & { task: string }) | undefined> {
  const s = await readSelf(rt, id);
  if (!s) return undefined;
  return { run: s.run, id, parent: s.parent, task: s.task, window: s.window, ws: s.ws, wq: s.wq };
}
