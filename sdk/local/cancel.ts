/**
 * Cancellation: of children a parent's replay cancelled, of an ended action's descendants, of a
 * whole run (by the API or by `aloft cancel` from another process). Queued actions never start,
 * running ones are reclaimed (their worker replaced), and each ends CANCELLED through `s.finish`.
 */
import { CancelledError, serializeError } from "../errors.ts";
import type { CallId } from "../core/history.ts";
import { cancelledError } from "../core/policy.ts";
import type { Live } from "./live.ts";
import { TERMINAL } from "./store.ts";
import type { Scheduler } from "./scheduler.ts";

/** Cancels a run: every action still queued or running ends CANCELLED. */
export function cancelRun(s: Scheduler, runId: string, reason: string): void {
  const root = s.live.get(runId);
  if (root) s.finish(root, "CANCELLED", { ok: false, error: serializeError(new CancelledError(reason)) });
}

/**
 * Stops children a parent's replay cancelled (`future.cancel()`, a map's completion rules, a
 * `map.aio` loop left early), as a run cancel does: queued ones never start, running ones are
 * reclaimed, and their descendants are cancelled with them.
 */
export function cancelCalls(s: Scheduler, parent: Live, ids: readonly CallId[]): void {
  if (!ids.length) return;
  const err = serializeError(new CancelledError(`cancelled: its parent ${parent.task} cancelled it`));
  const running: CallId[] = [];
  for (const id of ids) {
    const c = s.live.get(id);
    if (!c || TERMINAL.has(c.status)) continue;
    if (c.status === "RUNNING") running.push(id);
    s.finish(c, "CANCELLED", { ok: false, error: err });
  }
  if (running.length) s.executor.reclaim(running);
}

/** Cancels every descendant of `a` (which ended or timed out) with `reason`. */
export function cancelDescendants(s: Scheduler, a: Live, reason: string): void {
  const stack = [...(a.children ?? [])];
  const running: CallId[] = [];
  const err = cancelledError(reason);
  while (stack.length) {
    const c = s.live.get(stack.pop()!);
    if (!c) continue;
    if (c.children) stack.push(...c.children);
    if (c.status === "RUNNING") running.push(c.id);
    c.children = undefined; // its own descendants are handled here, not again by finish()
    s.finish(c, "CANCELLED", { ok: false, error: err });
  }
  if (running.length) s.executor.reclaim(running);
}

/** Cancels the runs in progress that another process (`aloft cancel`) asked to stop. */
export function pollCancels(s: Scheduler): void {
  const runs = new Set<string>();
  for (const a of s.live.values()) if (!a.parent) runs.add(a.runId);
  for (const r of runs) if (s.store.cancelRequested(r)) cancelRun(s, r, "cancelled by aloft cancel");
}
