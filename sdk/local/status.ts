/**
 * The status tree of a run, read from the store: actions under their parents, children gathered
 * by group, with states, attempts and durations.
 */
import type { ActionRow, RunRow, Store } from "./store.ts";
import type { ActionNode, GroupSummary, RunStatus } from "../run-handle.ts";
import { countInGroup } from "../run-handle.ts";
import { shownStatus, waitingText } from "../core/durable-waits.ts";
import { TERMINAL } from "../core/history.ts";
import { WaitStore } from "./wait-store.ts";

export function runStatus(store: Store, run: RunRow, now = Date.now()): RunStatus {
  const rows = store.runActions(run.id);
  const nodes = new Map<string, ActionNode>();
  const node = (r: ActionRow): ActionNode => ({
    id: r.id,
    task: r.task,
    group: r.grp,
    status: r.status,
    attempts: r.attempts,
    cached: r.cached === 1,
    ...(r.reused ? { reusedFrom: r.reused } : {}),
    durationMs: r.started === null ? undefined : (r.ended ?? now) - r.started,
    startedAt: r.started ?? undefined,
    endedAt: r.ended ?? undefined,
    children: [],
  });
  for (const r of rows) nodes.set(r.id, node(r));
  for (const [id, w] of new WaitStore(store.db).waitsOf(run.id)) {
    const n = nodes.get(id);
    if (!n || TERMINAL.has(n.status)) continue;
    n.waiting = waitingText(w.kind, w.name, w.due, { run: run.id, since: w.since });
    n.status = shownStatus(n.task, n.status);
  }
  const groups = new Map<string, GroupSummary>();
  for (const r of rows) {
    if (!r.parent) continue;
    const n = nodes.get(r.id)!;
    nodes.get(r.parent)?.children.push(n);
    countInGroup(groups, n);
  }
  return {
    id: run.id,
    task: run.task,
    state: run.status,
    createdAt: new Date(run.created),
    endedAt: run.ended === null ? undefined : new Date(run.ended),
    root: nodes.get(run.id),
    groups: [...groups.values()],
    actions: rows.length,
    ...recovery(store, run),
  };
}

/** A run's links to the run it recovers and to its own recoveries (docs/recover.md). */
function recovery(store: Store, run: RunRow): Pick<RunStatus, "recoveredFrom" | "recoveries"> {
  const recoveries = store.recoveries(run.id);
  return {
    ...(run.recovered_from ? { recoveredFrom: run.recovered_from } : {}),
    ...(recoveries.length ? { recoveries } : {}),
  };
}
