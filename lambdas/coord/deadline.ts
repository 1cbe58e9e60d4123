/** Enforcing an attempt's deadline: nothing if it ended; else a retry or a TIMED_OUT outcome (core/policy.ts). */
import { retryDelayMs } from "../../sdk/core/task-def.ts";
import { sendExecs, sendToCoordinator } from "../../sdk/aws/transport/dispatch.ts";
import { MESSAGE_VERSION, actionOf, doneOf } from "../../sdk/aws/messages.ts";
import type { ExecMessage, TimeoutMessage } from "../../sdk/aws/messages.ts";
import type { Runtime } from "../../sdk/aws/runtime.ts";
import { sweepOf } from "../../sdk/aws/store/cancel.ts";
import { endCounter, readCounter } from "../../sdk/aws/store/counters.ts";
import { decodeChunk, fenceFirstEpoch, isFenced, loadActionItems } from "../../sdk/aws/store/history.ts";
import { bumpAttempt, bumpedByTwin, readAction, writeTerminal } from "../../sdk/aws/store/results.ts";
import { releaseToken } from "../../sdk/aws/store/windows.ts";
import type { ResultItem, RunItem } from "../../sdk/aws/store/table.ts";
import { expiry } from "../../sdk/aws/store/table.ts";
import { afterFailure, descendantsReason, timeoutError } from "../../sdk/core/policy.ts";
import { countCompletions } from "./completions.ts";
import { taskOf } from "../task-of.ts";

/** At an attempt's deadline: nothing if it ended; else a retry or a TIMED_OUT outcome. */
export async function checkTimeout(rt: Runtime, m: TimeoutMessage, messageId: string): Promise<void> {
  const left = m.deadline - rt.now();
  if (left > 1000) {
    await sendToCoordinator(rt, [{ msg: m, delaySeconds: Math.min(900, Math.ceil(left / 1000)) }]);
    return;
  }
  const item = await readAction(rt, m.run, m.parent, m.id);
  if (m.parent === null) {
    if (!item || (item as RunItem).status !== "RUNNING") return;
  } else if (item?.outcome !== undefined) {
    // This check wrote TIMED_OUT on an earlier delivery and crashed before counting it: count again
    // (an over-count only resumes early). Any other outcome was reported by whoever wrote it.
    if (item.status === "TIMED_OUT" && item.attempt === m.attempt) {
      await countCompletions(rt, [{ id: messageId, msg: doneOf(m, m.parent, false) }]);
    }
    return;
  }
  const def = taskOf(m);
  if ((item?.attempt ?? 1) !== m.attempt) {
    // A later attempt is running — or this check started it and died before sending it (the fence
    // it wrote says so): send it again (a duplicate exec of it is recorded once).
    if (def && item?.attempt === m.attempt + 1 && (await isFenced(rt, m.id, m.attempt)))
      await sendCheckRetry(rt, m, item, retryDelayMs(def.retries, m.attempt));
    return;
  }
  const cnt = await readCounter(rt, m.id);
  const x = expiry(rt.now(), rt.config.retentionDays, 7);
  const next = afterFailure({
    retries: def?.retries,
    attempt: m.attempt,
    error: timeoutError(m.task, m.timeoutMs, m.attempt),
    timedOut: true,
    hasChildren: cnt !== undefined,
  });
  // A retry only once this attempt is fenced off its first suspension, so it cannot commit one
  // while the retry runs (store/history.ts claimEpoch).
  const by = releaseToken(messageId);
  if (next.kind === "retry" && def && (await fenceFirstEpoch(rt, m.id, m.attempt, x))) {
    // A delivery of this same check that bumped it first may have died before sending the retry.
    const b = await bumpAttempt(rt, m.run, m.parent, m.id, m.attempt, by);
    if (b.bumped || bumpedByTwin(b.existing, m.attempt, by)) await sendCheckRetry(rt, m, item, next.delayMs);
    return;
  }
  const error =
    next.kind === "end"
      ? next.error
      : { ...timeoutError(m.task, m.timeoutMs, m.attempt), attempts: m.attempt };
  // Ended first (also an attempt still committing its first suspension: that commit then fails),
  // its descendants swept (in pages, by the coordinator), then its outcome.
  const kids = (await endCounter(rt, m.id)) || (cnt !== undefined && cnt.st !== "E");
  if (kids)
    await sendToCoordinator(rt, [{ msg: sweepOf(m.run, m.id, descendantsReason(m.task, "TIMED_OUT")) }]);
  const w = await writeTerminal(rt, {
    run: m.run,
    parent: m.parent,
    id: m.id,
    status: "TIMED_OUT",
    outcome: { ok: false, error },
    attempt: m.attempt,
    kids,
    ...(m.parent === null ? {} : { by }),
  });
  // A delivery of this same check that wrote it first may have died before counting it (an
  // over-count, if it did not, only resumes early).
  const told = w.written || w.existing?.["by"] === by;
  if (told && m.parent !== null)
    // A timed-out item of a windowed map frees its slot (its check carries the slot).
    await countCompletions(rt, [{ id: messageId, msg: doneOf(m, m.parent, false) }]);
}

/** The next attempt of the action a check timed out; it keeps the window slot the action holds. */
export async function sendCheckRetry(
  rt: Runtime,
  m: TimeoutMessage,
  item: ResultItem | RunItem | undefined,
  delayMs: number,
): Promise<void> {
  const args = m.args ?? (m.parent === null ? (item as RunItem).args : await argsOf(rt, m));
  if (args === undefined) return;
  const msg: ExecMessage = {
    k: "exec",
    v: MESSAGE_VERSION,
    ...actionOf(m),
    args,
    attempt: m.attempt + 1,
    epoch: 0,
  };
  await sendExecs(rt, [{ msg, delayMs }]);
}

/** A retried child's arguments from its parent's call records (a check sent by an older Aloft carries none). */
export async function argsOf(rt: Runtime, m: TimeoutMessage): Promise<string | undefined> {
  for (const it of await loadActionItems(rt, m.parent!))
    if (String(it["sk"]).startsWith("C#")) for (const c of decodeChunk(it)) if (c.id === m.id) return c.args;
  return undefined;
}
