/**
 * Dispatch: takes ready actions off the queue, starts an attempt of each (in one transaction), and
 * sends them where they run: the engine's own thread for orchestration and cheap bodies, the
 * worker pool for everything else.
 */
import { serializeError } from "../errors.ts";
import type { SerializedError } from "../errors.ts";
import type { ExecItem } from "./run-body.ts";
import type { Live } from "./live.ts";
import { TERMINAL } from "./store.ts";
import type { Scheduler } from "./scheduler.ts";
import { defOf, finish, onTimeout } from "./outcome.ts";

/** Sends ready actions to the executor, as many as it takes. */
export function dispatchReady(s: Scheduler): void {
  s.flush();
  let room = s.executor.capacity();
  if (room === 0 || s.ready.size === 0) return;
  const batch: ExecItem[] = [];
  const replays: ExecItem[] = [];
  const unreadable: [Live, SerializedError][] = [];
  const now = s.now();
  s.store.tx(() => {
    while (room > 0 && s.ready.size > 0) {
      const a = s.live.get(s.ready.shift()!);
      if (!a || !a.queued) continue;
      a.queued = false;
      if (TERMINAL.has(a.status)) continue;
      const def = defOf(a);
      if (a.attempts === 0 || a.status !== "RUNNING") a.attempts = Math.max(1, a.attempts);
      a.status = "RUNNING";
      a.token++;
      s.store.startAttempt(a.id, a.attempts, now);
      if (a.hasHistory) s.replays.set(a.runId, (s.replays.get(a.runId) ?? 0) + 1);
      const item: ExecItem = { actionId: a.id, token: a.token, task: a.task, args: a.args };
      if (a.hasHistory) {
        try {
          item.history = s.store.history(a.id);
        } catch (e) {
          // A corrupted or too-new record: fail this action clearly rather than crash the engine.
          unreadable.push([a, serializeError(e)]);
          continue;
        }
      }
      // On this thread, when it knows the task: a parent's replay (orchestration, not compute,
      // and its history is already here), a root, and a task whose body proved cheap.
      if ((a.hasHistory || !a.parent || s.placement.cheap(a.task)) && def) replays.push(item);
      else batch.push(item);
      // One timer per attempt, across re-dispatches of it (a lost worker's action is sent again).
      if (def?.timeoutMs !== undefined && !a.timer) {
        const ms = def.timeoutMs;
        // Unref'd: a run in progress holds the event loop (sdk/local/backend.ts), not its timers.
        a.timer = setTimeout(() => onTimeout(s, a.id, ms), ms).unref();
      }
      room--;
    }
  });
  s.ready.compact();
  for (const [a, error] of unreadable)
    finish(s, a, "FAILED", { ok: false, error: { ...error, nonRecoverable: true } });
  if (batch.length) s.executor.send(batch);
  if (replays.length) s.inline.send(replays);
  if (s.ready.size > 0) s.schedulePump();
}
