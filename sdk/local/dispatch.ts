/**
 * Dispatch: takes ready actions off the queue, starts an attempt of each, and sends them where
 * they run: the engine's own thread for orchestration and cheap bodies, the worker pool for
 * everything else. The starts are buffered (writes.ts) and written with the next results.
 */
import { serializeError } from "../errors.ts";
import type { SerializedError } from "../errors.ts";
import type { ExecItem } from "./run-body.ts";
import type { CallId, Outcome } from "../core/history.ts";
import type { Live } from "./live.ts";
import { TERMINAL } from "./store.ts";
import type { Scheduler } from "./scheduler.ts";
import { defOf, finish, onTimeout } from "./outcome.ts";

const EMPTY: ReadonlyMap<CallId, Outcome> = new Map();
/** A replay on this thread with nothing to continue: replayed afresh, and kept if it can be. */
const FRESH = { cont: undefined, arrived: EMPTY };

/** Sends ready actions to where they run, as many as each place takes now. */
export function dispatchReady(s: Scheduler): void {
  const pooled = s.executor !== s.inline;
  let inlineRoom = s.inline.capacity();
  let poolRoom = pooled ? s.executor.capacity() : 0;
  const batch: ExecItem[] = [];
  const replays: ExecItem[] = [];
  const unreadable: [Live, SerializedError][] = [];
  const now = s.now();
  let probing: Map<string, number> | undefined; // per task not yet placed: its items on the pool
  while (s.ready.size > 0) {
    const a = s.live.get(s.ready.peek()!);
    if (!a || !a.queued || TERMINAL.has(a.status)) {
      s.ready.shift();
      if (a) a.queued = false;
      continue;
    }
    const def = defOf(a);
    // On this thread, when it knows the task: a parent's replay (orchestration, not compute,
    // and its history is already here), a root, and a task whose body proved cheap.
    const here = !pooled || ((a.hasHistory || !a.parent || s.placement.cheap(a.task)) && def !== undefined);
    // In order: an item whose place is full waits, and so do those behind it.
    if (here ? inlineRoom === 0 : poolRoom === 0) break;
    // A task not yet measured: as many on the pool at once as measuring it takes (placement.ts).
    if (!here && !s.placement.known(a.task)) {
      const n = (probing ??= new Map()).get(a.task) ?? s.executor.running(a.task);
      if (n >= s.placement.probes(s.executor.workers)) break;
      probing.set(a.task, n + 1);
    }
    s.ready.shift();
    a.queued = false;
    if (a.attempts === 0 || a.status !== "RUNNING") a.attempts = Math.max(1, a.attempts);
    a.status = "RUNNING";
    a.token++;
    s.writes.start(a.id, a.row, a.parent, a.attempts, now);
    if (a.hasHistory) s.replays.set(a.runId, (s.replays.get(a.runId) ?? 0) + 1);
    const item: ExecItem = {
      actionId: a.id,
      runId: a.runId,
      token: a.token,
      task: a.task,
      args: a.args,
      attempt: a.attempts,
    };
    if (here) {
      // On this thread its replay may be kept to continue (core/continuation.ts); a kept one
      // continues, with the outcomes that arrived since it last ran, instead of reading its history.
      const cont = a.cont?.usable ? a.cont : undefined;
      // Only a replay is kept, never an action's first run: so every parent's first resume is a
      // fresh replay of all it did so far, which is what finds a body that is not deterministic
      // (docs/replay.md, "Continuing a replay"). A gather's parent, resumed once, is never continued.
      item.keep = cont ? { cont, arrived: a.arrived ?? EMPTY } : a.hasHistory ? FRESH : undefined;
      a.arrived = a.hasHistory ? new Map() : undefined;
      a.cont = undefined;
      if (cont) {
        a.seen = cont.outcomes;
        a.childOk = undefined;
      }
    }
    if (a.hasHistory && !item.keep?.cont) {
      try {
        // A first resume takes the history its suspension kept (outcome.ts suspend) rather than
        // read back what that suspension just wrote.
        if (!a.mem) s.flush(true); // the history read back has every call and result so far
        item.history = a.mem ?? s.store.history(a.id);
        // Every child settled so far is in this history (the writes were flushed above): the
        // decision's tracker learns of them from it, and childOk counts only those settling later.
        a.seen = item.history.outcomes;
        a.childOk = undefined;
      } catch (e) {
        // A corrupted or too-new record: fail this action clearly rather than crash the engine.
        unreadable.push([a, serializeError(e)]);
        continue;
      }
    }
    a.mem = undefined; // for its first resume only: later ones have more history than it holds
    if (here) {
      replays.push(item);
      inlineRoom--;
    } else {
      batch.push(item);
      poolRoom--;
    }
    // One timer per attempt, across re-dispatches of it (a lost worker's action is sent again).
    if (def?.timeoutMs !== undefined && !a.timer) {
      const ms = def.timeoutMs;
      // Unref'd: a run in progress holds the event loop (sdk/local/backend.ts), not its timers.
      a.timer = setTimeout(() => onTimeout(s, a.id, ms), ms).unref();
    }
  }
  s.ready.compact();
  for (const [a, error] of unreadable)
    finish(s, a, "FAILED", { ok: false, error: { ...error, nonRecoverable: true } });
  if (batch.length) s.executor.send(batch);
  if (replays.length) s.inline.send(replays);
  // The starts are written shortly, whatever happens meanwhile (writes.ts): a cheap child's result
  // arrives first and shares the update, and a long body's start is not left unwritten (the store
  // shows it RUNNING to `aloft status` while it runs). What is left to dispatch waits for a decision
  // that frees some room, which schedules the next dispatch.
  s.flushSoon();
}
