/**
 * Outcomes: what the engine does with a replay's decision (a result, a failure, a suspension with
 * new calls), with a timeout, and with an action's end (tell the parent, free a window slot, end
 * the run at the root). Retry and finality are the policy's (core/policy.ts); this carries them out.
 */
import type { SerializedError } from "../errors.ts";
import type { CallId, CallRecord, Outcome } from "../core/history.ts";
import type { Decision } from "../core/replay.ts";
import type { Continuation } from "../core/continuation.ts";
import type { TaskDef } from "../core/task-def.ts";
import { withSettings } from "../core/task-def.ts";
import { WaitTracker } from "../core/wait.ts";
import type { Wait } from "../core/wait.ts";
import { afterFailure, cacheLookup, descendantsReason, timeoutError } from "../core/policy.ts";
import { findTask } from "../registry.ts";
import { isBuiltin } from "../core/durable-waits.ts";
import { twinsOf } from "../core/recover.ts";
import type { Live, Window } from "./live.ts";
import type { ActionStatus } from "./store.ts";
import { TERMINAL } from "./store.ts";
import type { Scheduler } from "./scheduler.ts";
import { cancelCalls, cancelDescendants } from "./cancel.ts";
import { Deferred, deferredRow } from "./writes.ts";

/** Applies the decisions of replays that ended; stale and duplicate ones are dropped by token. */
export function applyDecisions(s: Scheduler, results: [string, number, Decision, Continuation?][]): void {
  for (const [id, token, d, kept] of results) {
    const a = s.live.get(id);
    if (!a || a.token !== token || a.status !== "RUNNING") continue; // stale or duplicate
    s.placement.measure(a.task, d.bodyMs);
    // Its replay, parked to continue when what it waits for arrives; a retry replays afresh.
    a.cont = d.kind === "suspended" ? kept : undefined;
    if (!a.cont) a.arrived = undefined;
    for (const w of d.warnings) s.warn(w);
    switch (d.kind) {
      case "completed":
        if (d.traces.length) s.store.writeTraces(a.id, d.traces);
        succeed(s, a, d.value);
        break;
      case "failed":
        if (d.traces.length) {
          s.store.writeTraces(a.id, d.traces);
          a.hasHistory = true;
        }
        fail(s, a, d.error, false);
        break;
      case "suspended":
        suspend(s, a, d.calls, d.traces, d.waits);
        cancelCalls(s, a, d.cancels);
        break;
      default:
        d satisfies never;
    }
  }
  s.schedulePump();
}

/** The task as this action runs it: registered settings, with its call site's overrides. */
export function defOf(a: Pick<Live, "task" | "settings">): TaskDef | undefined {
  const def = findTask(a.task);
  return def && withSettings(def, a.settings);
}

/** The window of `key`, created with `limit` slots on first use. */
export function windowOf(s: Scheduler, key: string, limit: number): Window {
  let w = s.windows.get(key);
  if (!w) s.windows.set(key, (w = { limit, inflight: 0, waiting: [], head: 0 }));
  return w;
}

function succeed(s: Scheduler, a: Live, value: string): void {
  const def = defOf(a);
  const key = def && cacheLookup(def, a.args);
  if (key) s.store.putCache(key, value, s.now());
  finish(s, a, "SUCCEEDED", { ok: true, value });
}

/** Fails an attempt: retried or ended as the policy says (core/policy.ts afterFailure). */
function fail(s: Scheduler, a: Live, error: SerializedError, timedOut: boolean): void {
  const next = afterFailure({
    retries: defOf(a)?.retries,
    attempt: a.attempts,
    error,
    timedOut,
    hasChildren: a.nextSeq > 0,
  });
  if (next.kind === "end") return finish(s, a, next.status, { ok: false, error: next.error });
  a.cont = undefined; // the next attempt replays afresh
  a.arrived = undefined;
  a.mem = undefined;
  clearTimeout(a.timer);
  a.timer = undefined;
  a.status = "QUEUED";
  a.attempts = next.attempt;
  a.token++; // a late result of the failed attempt is stale
  setTimeout(() => {
    if (a.status === "QUEUED") s.enqueue(a);
  }, next.delayMs).unref?.();
}

/**
 * Records a suspension: the new calls (each tracked, cached or enqueued) and the parent's waits.
 * The calls sent to run now are not written here: each is inserted by the first write after it
 * starts or ends (writes.ts, Deferred), and the parent's wait after the last of them. Those held
 * for a slot in their map's window, cache hits, reused outcomes and durable waits are written here.
 */
function suspend(
  s: Scheduler,
  a: Live,
  calls: CallRecord[],
  traces: Decision["traces"],
  waits: Wait[],
): void {
  // Its first suspension: what it writes is its whole history, kept for its first resume.
  const first = !a.hasHistory;
  a.hasHistory = true;
  // In a recovered run each call carries where its outcome is in the source runs (stored with it).
  if (a.twins) for (const c of calls) c.tw = twinsOf(a.twins, c);
  // The suspension is written only over a RUNNING row, after the one before it: this attempt's
  // start, and the calls of its last suspension not yet written, go first.
  if (s.writes.deferred.has(a.id)) s.flush(true);
  else if (s.writes.hasStart(a.id, a.row, a.parent)) s.flush();
  const seq = a.nextSeq;
  a.nextSeq += calls.length;
  const held = new Set<CallId>(); // calls waiting for a slot in their map's window
  for (const c of calls) {
    if (!c.window) continue;
    const w = windowOf(s, c.window.key, c.window.limit);
    if (w.inflight < w.limit) w.inflight++;
    else {
      w.waiting.push(c.id);
      held.add(c.id);
    }
  }
  const hits = new Map<number, [value: string, from: string | undefined]>(); // by call index
  const children = trackCalls(s, a, calls, held, hits);
  // What runs now: its row waits for its start (writes.ts). The rest is written below.
  let deferred: Deferred | undefined;
  const now: number[] = []; // indexes of the calls written now
  for (let i = 0; i < calls.length; i++) {
    const child = children[i]!;
    if (hits.has(i) || held.has(child.id) || isBuiltin(child.task)) {
      now.push(i);
      continue;
    }
    deferred ??= new Deferred(a.runId, a.id, calls, seq, waits, performance.now());
    deferred.unwritten[i] = 1;
    deferred.left++;
    child.row = deferredRow(i);
    s.enqueue(child);
  }
  if (deferred) {
    s.writes.deferred.set(a.id, deferred);
    // Sent before the rest are written: the pool's workers start on them meanwhile.
    if (now.length) s.dispatchNow();
  }
  const written = now.map((i) => calls[i]!);
  const rows = s.store.applySuspension(
    a.runId,
    a.id,
    written,
    traces,
    deferred ? undefined : waits,
    now.map((i) => seq + i),
    (c) => !held.has(c.id),
  );
  for (let k = 0; k < now.length; k++) children[now[k]!]!.row = rows[k];
  a.status = "SUSPENDED";
  if (first) {
    const kept = new Map<CallId, CallRecord>();
    // As the store reads a record back (store.ts history): no inputs digest, re-made by the replay.
    // A first run is never kept to continue (dispatch.ts), so nothing else changes these records
    // (a Deferred writing them reads no digest).
    for (const c of calls) {
      c.digest = "";
      kept.set(c.id, c);
    }
    a.mem = {
      calls: kept,
      outcomes: new Map(),
      traces: new Map(traces.map((t) => [t.key, t])),
      inCallOrder: true, // the suspension's calls, in the order the body made them
    };
  }
  watch(s, a, waits);
  // Durable waits (sleeps, signals) are armed once written, held for a window's slot or not:
  // arming one can end it at once.
  const armable: Live[] = [];
  for (const i of now) if (!hits.has(i)) armable.push(children[i]!);
  const taken = s.waits.arm(armable);
  for (const child of armable) if (!taken.has(child.id) && !held.has(child.id)) s.enqueue(child);
  for (const [i, [value, from]] of hits) {
    const child = children[i]!;
    if (from) s.store.markReused(child.id, from);
    else s.store.markCached(child.id);
    finish(s, child, "SUCCEEDED", { ok: true, value });
  }
}

/** Tracks a suspension's new calls; each cache hit or reused outcome goes in `hits`, by index. */
function trackCalls(
  s: Scheduler,
  a: Live,
  calls: readonly CallRecord[],
  held: ReadonlySet<CallId>,
  hits: Map<number, [value: string, from: string | undefined]>,
): Live[] {
  const out = new Array<Live>(calls.length);
  for (let i = 0; i < calls.length; i++) {
    const c = calls[i]!;
    const child = track(s, {
      id: c.id,
      runId: a.runId,
      parent: a.id,
      task: c.task,
      group: c.group,
      args: c.args,
      status: "QUEUED",
    });
    out[i] = child;
    if (c.window) {
      child.window = c.window.key;
      child.slot = !held.has(c.id);
    }
    if (c.settings) child.settings = c.settings;
    if (c.tw) child.twins = c.tw;
    (a.children ??= new Set()).add(c.id);
    if (!isBuiltin(c.task)) s.progress.total(a.runId, c.group);
    // A call that succeeded in a run this one recovers returns that outcome, as a cache hit does.
    const reused = c.tw && s.store.reusable(c.tw);
    if (reused) {
      hits.set(i, [reused.value, reused.run]);
      continue;
    }
    const def = defOf(child);
    const key = def && cacheLookup(def, c.args);
    const cached = key ? s.store.getCache(key) : undefined;
    if (cached !== undefined) hits.set(i, [cached, undefined]);
  }
  return out;
}

/** Starts tracking an action in memory. */
export function track(
  s: Scheduler,
  init: Pick<Live, "id" | "runId" | "parent" | "task" | "group" | "args" | "status">,
): Live {
  // Every field written here, in one order, and no spread: V8 then gives all actions one hidden
  // class. A spread (`{ ...init }`) made a new one per object: some 380 bytes more per child and
  // megamorphic property access on every step of the engine.
  const a: Live = {
    id: init.id,
    runId: init.runId,
    parent: init.parent,
    task: init.task,
    group: init.group,
    args: init.args,
    status: init.status,
    attempts: 0,
    token: 0,
    hasHistory: false,
    nextSeq: 0,
    tracker: undefined,
    childOk: undefined,
    seen: undefined,
    children: undefined,
    timer: undefined,
    queued: false,
    window: undefined,
    slot: undefined,
    settings: undefined,
    twins: undefined,
    cont: undefined,
    arrived: undefined,
    mem: undefined,
    row: undefined,
  };
  s.live.set(a.id, a);
  if (!a.parent) s.runs.add(a.runId);
  return a;
}

/** Starts watching a suspended parent's waits; resumes it at once if they are already met. */
export function watch(s: Scheduler, a: Live, waits: Wait[]): void {
  const t = new WaitTracker(waits);
  const { childOk, seen } = a;
  const kept = a.mem?.outcomes;
  a.seen = undefined;
  if (childOk || seen || kept?.size) {
    for (const id of [...t.watched()]) {
      const ok = childOk?.get(id) ?? seen?.get(id)?.ok ?? kept?.get(id)?.ok;
      if (ok !== undefined && t.settle(id, ok)) break;
    }
  }
  if (t.satisfied) s.enqueue(a);
  else a.tracker = t;
}

/** An attempt overran its timeout: stop it and its descendants, and fail it as timed out. */
export function onTimeout(s: Scheduler, id: CallId, ms: number): void {
  const a = s.live.get(id);
  if (!a || TERMINAL.has(a.status)) return;
  a.timer = undefined;
  // Whichever dispatch of the attempt is running now is stopped (its worker replaced).
  if (a.status === "RUNNING") s.executor.reclaim([id]);
  cancelDescendants(s, a, descendantsReason(a.task, "TIMED_OUT"));
  fail(s, a, timeoutError(a.task, ms), true);
}

/** Records a terminal state once, tells the parent, and ends the run at the root. */
export function finish(s: Scheduler, a: Live, status: ActionStatus, outcome: Outcome): void {
  if (TERMINAL.has(a.status)) return;
  a.status = status;
  a.queued = false;
  // Most actions have no timer: Node's clearTimeout, called for each, became hot code to compile.
  if (a.timer) {
    clearTimeout(a.timer);
    a.timer = undefined;
  }
  s.live.delete(a.id);
  a.cont = undefined;
  a.arrived = undefined;
  a.mem = undefined;
  if (!a.parent) s.runs.delete(a.runId);
  s.waits.ended(a.id, status);
  s.writes.complete(
    { id: a.id, row: a.row, status, outcome, ended: s.now(), attempts: a.attempts },
    a.parent,
  );
  if (a.children && a.children.size) cancelDescendants(s, a, descendantsReason(a.task, status));
  if (a.window && a.slot) {
    const w = s.windows.get(a.window);
    if (w) {
      w.inflight--;
      releaseWindow(s, w);
    }
  }
  const parent = a.parent ? s.live.get(a.parent) : undefined;
  if (parent) {
    parent.children?.delete(a.id);
    parent.arrived?.set(a.id, outcome);
    // Kept for its first resume, the outcome also tells a tracker whether the child succeeded.
    const kept = parent.mem?.outcomes as Map<CallId, Outcome> | undefined;
    if (kept) kept.set(a.id, outcome);
    else (parent.childOk ??= new Map()).set(a.id, outcome.ok);
    if (!isBuiltin(a.task)) s.progress.done(a.runId, a.group, outcome.ok);
    if (parent.status === "SUSPENDED" && parent.tracker?.settle(a.id, outcome.ok)) {
      parent.tracker = undefined;
      s.enqueue(parent);
    }
  }
  if (!a.parent) s.endRun(a.runId, status, outcome);
  else if (s.writes.size >= 2048) s.flush();
  else s.schedulePump();
}

/** Gives a window's free slots to the items waiting for them, in order. */
export function releaseWindow(s: Scheduler, w: Window): void {
  while (w.inflight < w.limit && w.head < w.waiting.length) {
    const id = w.waiting[w.head++]!;
    const c = s.live.get(id);
    if (!c || TERMINAL.has(c.status)) continue;
    w.inflight++;
    c.slot = true;
    s.enqueue(c);
  }
}
