/**
 * Resuming a run from its stored history (after a crash or a kill): rebuilds the in-memory state
 * of its actions and windows from the store, then dispatches what was running or ready and watches
 * what was suspended.
 */
import { parseOutcome } from "../core/history.ts";
import type { Wait } from "../core/wait.ts";
import { TERMINAL, callOf } from "./store.ts";
import type { Scheduler } from "./scheduler.ts";
import type { Live } from "./live.ts";
import { isBuiltin } from "../core/durable-waits.ts";
import { rootTwins } from "../core/recover.ts";
import { releaseWindow, track, watch, windowOf } from "./outcome.ts";

/** Loads `runId`'s unfinished actions; with `dispatch`, also sets them going again. */
export function resumeRun(s: Scheduler, runId: string, dispatch: boolean): void {
  const rows = s.store.runActions(runId);
  const byId = new Map(rows.map((r) => [r.id, r]));
  for (const r of rows) {
    if (TERMINAL.has(r.status)) continue;
    const a = track(s, {
      id: r.id,
      runId,
      parent: r.parent ?? undefined,
      task: r.task,
      group: r.grp,
      args: r.args,
      status: r.status,
    });
    a.attempts = r.attempts;
    // History: children (set below) or traces. An attempt that merely started has none.
    a.hasHistory = s.store.hasTraces(r.id);
    if (r.window_key) {
      a.window = r.window_key;
      a.slot = r.dispatched === 1;
    }
    if (r.call) {
      const c = callOf(r, r.call, r.parent ?? "");
      if (c.settings) a.settings = c.settings;
      if (c.tw) a.twins = c.tw;
    } else if (!r.parent) a.twins = rootTwins(s.store.recoveryChain(runId));
  }
  for (const r of rows) {
    if (!r.parent) continue;
    const p = s.live.get(r.parent);
    if (!p) continue;
    p.hasHistory = true;
    p.nextSeq = Math.max(p.nextSeq, r.seq + 1);
    if (TERMINAL.has(r.status) && r.outcome) {
      (p.childOk ??= new Map()).set(r.id, parseOutcome(`outcome of ${r.id}`, r.outcome).ok);
    } else (p.children ??= new Set()).add(r.id);
    if (r.window_key) {
      const w = windowOf(s, r.window_key, r.window_limit ?? 1);
      if (!TERMINAL.has(r.status)) {
        if (r.dispatched) w.inflight++;
        else w.waiting.push(r.id);
      }
    }
  }
  for (const w of s.windows.values())
    w.waiting.sort((x, y) => (byId.get(x)!.window_idx ?? 0) - (byId.get(y)!.window_idx ?? 0));
  if (!dispatch) return;
  const builtins: Live[] = [];
  for (const a of s.live.values()) {
    if (a.runId !== runId) continue;
    const row = byId.get(a.id)!;
    if (a.status === "SUSPENDED") watch(s, a, JSON.parse(row.waits ?? "[]") as Wait[]);
    else if (isBuiltin(a.task))
      builtins.push(a); // a sleep or signal wait: armed again, not run
    else if (a.status === "RUNNING" || (a.status === "QUEUED" && row.dispatched)) s.enqueue(a);
  }
  s.waits.arm(builtins);
  for (const w of s.windows.values()) releaseWindow(s, w);
  s.schedulePump();
}
