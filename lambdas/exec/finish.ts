/** Ending an action: its open children cancelled, its outcome written once and reported to its parent. */
import type { History } from "../../sdk/core/history.ts";
import { sendToCoordinator } from "../../sdk/aws/transport/dispatch.ts";
import { doneOf } from "../../sdk/aws/messages.ts";
import type { ExecMessage } from "../../sdk/aws/messages.ts";
import type { Runtime } from "../../sdk/aws/runtime.ts";
import { cancelChildren, sweepOf } from "../../sdk/aws/store/cancel.ts";
import { endCounter } from "../../sdk/aws/store/counters.ts";
import { bumpedByTwin, readAction, writeTerminal } from "../../sdk/aws/store/results.ts";
import { retryDelayMs } from "../../sdk/core/task-def.ts";
import { taskOf } from "../task-of.ts";
import { sendRetry } from "./retry.ts";
import type { Terminal } from "../../sdk/aws/store/results.ts";
import type { CounterItem, TerminalStatus } from "../../sdk/aws/store/table.ts";
import { descendantsReason } from "../../sdk/core/policy.ts";
import type { Delivery, Outbox } from "./context.ts";
import { CANCEL_INLINE } from "../../sdk/aws/store/cancel.ts";
import { releaseToken } from "../../sdk/aws/store/windows.ts";
import { untold } from "./untold.ts";

/** Ends an action: its unsettled children are cancelled first, then its outcome is written once. */
export interface Ending {
  rt: Runtime;
  m: ExecMessage;
  outbox: Outbox;
  delivery: Delivery;
  status: TerminalStatus;
  outcome: Terminal["outcome"];
  /** The history it ended with: its open children are cancelled. */
  history?: History | undefined;
  cnt?: CounterItem | undefined;
  startedAt?: number;
  cached?: boolean;
  /** The source run whose recorded outcome a recovery reused. */
  reused?: string;
}

export async function finish(e: Ending): Promise<void> {
  const { rt, m, outbox, status, outcome, history, cnt, startedAt, cached, reused } = e;
  if (cnt) {
    // Ended before the outcome is written: no resume or window advance can sneak in between.
    await endCounter(rt, m.id, "self");
    if (history) {
      const open = [...history.calls.keys()].filter((id) => !history.outcomes.has(id));
      // A few are cancelled here, before the outcome (a race's losers end with the race); more
      // are swept by the coordinator a page at a time: work here must not grow with them.
      const reason = descendantsReason(m.task, status);
      if (open.length > CANCEL_INLINE) await sendToCoordinator(rt, [{ msg: sweepOf(m.run, m.id, reason) }]);
      else {
        const parents = await cancelChildren(rt, m.run, m.id, open, reason);
        for (const p of parents) outbox.push({ msg: sweepOf(m.run, p, reason) });
      }
    }
  }
  const t: Terminal = {
    run: m.run,
    parent: m.parent,
    id: m.id,
    status,
    outcome,
    attempt: m.attempt,
  };
  if (startedAt !== undefined) t.startedAt = startedAt;
  if (cached) t.cached = true;
  if (reused) t.reused = reused;
  if (cnt) t.kids = true;
  const by = releaseToken(e.delivery.id);
  if (m.parent !== null) t.by = by;
  const w = await writeTerminal(rt, t);
  if (!w.written && w.existing?.["outcome"] === undefined) {
    // A stale attempt: a later one runs — unless a delivery of this same message failed, moved
    // the action to it and died before sending it (this one's acknowledgement deletes the message
    // its redelivery would have sent it from): send it (an exec delivered twice is recorded once).
    const def = taskOf(m);
    if (def && bumpedByTwin(w.existing, m.attempt, by))
      await sendRetry(rt, m, retryDelayMs(def.retries, m.attempt));
    return;
  }
  if (m.parent === null) return;
  let ok = outcome.ok;
  if (!w.written) {
    // Recorded before: whoever wrote it tells the parent (another delivery of this exec, a
    // timeout check, a cancellation) — unless it may not have (untold).
    if (!untold(w.existing!, e.delivery, rt.now())) return;
    ok = w.existing!["status"] === "SUCCEEDED";
  }
  outbox.push({ msg: doneOf(m, m.parent, ok) });
}

/**
 * A redelivered exec for a parent that already ended: its first delivery may have crashed after
 * writing the outcome and before telling its own parent, so tell it again from the record.
 */
export async function resendDone(
  rt: Runtime,
  m: ExecMessage,
  outbox: Outbox,
  delivery: Delivery,
): Promise<boolean> {
  const item = await readAction(rt, m.run, m.parent, m.id);
  if (item?.outcome === undefined) return false;
  if (m.parent === null || !untold(item as unknown as Record<string, unknown>, delivery, rt.now()))
    return true;
  outbox.push({ msg: doneOf(m, m.parent, item.status === "SUCCEEDED") });
  return true;
}

export async function cancelSelf(rt: Runtime, m: ExecMessage, outbox: Outbox, reason: string): Promise<void> {
  const hadChildren = await endCounter(rt, m.id);
  if (m.parent !== null) {
    await cancelChildren(rt, m.run, m.parent, [m.id], reason);
  }
  if (hadChildren) outbox.push({ msg: sweepOf(m.run, m.id, reason) });
}

/**
 * Whether a durable wait's exec finds the wait over already (its outcome written: a matcher paired
 * it, or it timed out). Only a redelivery, whose first delivery may have died before telling the
 * parent, reports it again.
 */
export async function waitOver(
  rt: Runtime,
  m: ExecMessage,
  outbox: Outbox,
  delivery: Delivery,
): Promise<boolean> {
  const own = await readAction(rt, m.run, m.parent, m.id);
  if (own?.outcome === undefined) return false;
  if (delivery.redelivered) outbox.push({ msg: doneOf(m, m.parent!, own.status === "SUCCEEDED") });
  return true;
}
