/**
 * The embedded engine: the same semantics as the cloud, in one process. It is an adapter around the
 * pure replay core: it stores what each decision says (SQLite), dispatches child calls to the
 * executor (worker pool or inline), watches each suspended parent's wait with a WaitTracker and
 * replays it once that wait is satisfied, enforces retries, timeouts, windows and cancellation.
 */
import { EventEmitter } from "node:events";
import v8 from "node:v8";
import vm from "node:vm";
import { randomUUID } from "node:crypto";
import { CancelledError, serializeError } from "../errors.ts";
import type { SerializedError } from "../errors.ts";
import type { CallId, CallRecord, Outcome } from "../core/history.ts";
import { parseCallRecord, parseOutcome } from "../core/history.ts";
import type { Decision } from "../core/replay.ts";
import type { TaskDef } from "../core/task-def.ts";
import { withSettings } from "../core/task-def.ts";
import { WaitTracker } from "../core/wait.ts";
import type { Wait } from "../core/wait.ts";
import { findTask } from "../registry.ts";
import type { ExecItem } from "./run-body.ts";
import { InlineExecutor, WorkerPool } from "./pool.ts";
import type { Executor } from "./pool.ts";
import type { ActionStatus, Completion, RunRow } from "./store.ts";
import { Store, TERMINAL } from "./store.ts";
import {
  afterFailure,
  cacheLookup,
  cancelledError,
  descendantsReason,
  timeoutError,
} from "../core/policy.ts";
import type { GroupProgress, RunState } from "../run-handle.ts";
import type { Live, Window } from "./live.ts";
import { Placement } from "./placement.ts";
import { Progress } from "./progress.ts";
import { LocalWaits, realWaitClock } from "./durable-waits.ts";
import type { WaitClock } from "./durable-waits.ts";
import { WaitStore } from "./wait-store.ts";
import { checkSignalName, isBuiltin } from "../core/durable-waits.ts";
import { serialize } from "../serde.ts";

const COLLECT_EVERY = 10_000;
let fullGc: (() => void) | undefined | null = null;
/**
 * V8's full collection, reached without --expose-gc on the command line. Looked up at the first
 * collection, not at import: setting a V8 flag is not something `import "aloft"` may do.
 */
function gc(): (() => void) | undefined {
  if (fullGc !== null) return fullGc;
  try {
    v8.setFlagsFromString("--expose-gc");
    fullGc = vm.runInNewContext("gc") as () => void;
  } catch {
    fullGc = undefined;
  }
  return fullGc;
}

export interface EngineOptions {
  store: Store;
  /** Worker threads; 0 runs everything on the main thread. Default: one per core. */
  workers: number;
  /** Modules a worker must import to find the tasks. */
  modules: string[];
  now?: () => number;
  /** Time for durable waits (`sleep`, signal timeouts); its `now` is the engine's unless `now` is given. */
  clock?: WaitClock;
}

export interface EngineEvents {
  warning: [message: string];
  progress: [p: GroupProgress];
  runEnded: [row: RunRow];
}

export class Engine extends EventEmitter<EngineEvents> {
  private readonly live = new Map<CallId, Live>();
  private readonly windows = new Map<string, Window>();
  private ready: CallId[] = [];
  private readyHead = 0;
  private pumpScheduled = false;
  private pending: Completion[] = [];
  /** Work done since the last full collection (see {@link collect}). */
  private churn = 0;
  private readonly runWaiters = new Map<string, ((r: RunRow) => void)[]>();
  private readonly progress = new Progress((p) => this.emit("progress", p));
  private readonly warned = new Set<string>();
  private readonly executor: Executor;
  /** Roots, parents' replays and cheap tasks run here, on the engine's thread (see pump). */
  private readonly inline: InlineExecutor;
  private readonly now: () => number;
  private cancelPoll: NodeJS.Timeout | undefined;
  readonly store: Store;
  /** Replays per run (an action's executions after its first). */
  readonly replays = new Map<string, number>();
  private readonly placement = new Placement();
  /** Built-in calls (`sleep`, `waitForSignal`) this engine completes itself. */
  private readonly waits: LocalWaits;

  constructor(private readonly opts: EngineOptions) {
    super();
    this.store = opts.store;
    const clock = opts.clock ?? realWaitClock;
    this.now = opts.now ?? (() => clock.now());
    this.waits = new LocalWaits(new WaitStore(this.store.db), clock, (id, status, outcome) => {
      const a = this.live.get(id);
      if (a) this.finish(a, status, outcome);
    });
    const onDecisions = (rs: [string, number, Decision][]): void => this.onDecisions(rs);
    const onLost = (items: ExecItem[]): void => {
      for (const it of items) {
        const a = this.live.get(it.actionId);
        if (a && a.token === it.token && a.status === "RUNNING") this.enqueue(a);
      }
    };
    this.inline = new InlineExecutor(onDecisions);
    this.executor =
      opts.workers > 0 ? new WorkerPool(opts.workers, opts.modules, onDecisions, onLost) : this.inline;
    // Another process (`aloft cancel`) asks by writing to the store; look now and then.
    this.cancelPoll = setInterval(() => this.pollCancels(), 250);
    this.cancelPoll.unref();
  }

  async started(): Promise<void> {
    if (this.executor instanceof WorkerPool) await this.executor.started();
  }

  // ── runs ─────────────────────────────────────────────────────────────────────────────────────

  startRun(def: TaskDef, args: string): string {
    const id = `r-${randomUUID().slice(0, 13)}`;
    this.store.createRun({ id, task: def.name, module: def.module, args, now: this.now() });
    const root = this.track({
      id,
      runId: id,
      parent: undefined,
      task: def.name,
      group: "",
      args,
      status: "QUEUED",
    });
    this.enqueue(root);
    return id;
  }

  /** Continues a run from its stored history (after a crash or a kill); `dispatch: false` only loads it. */
  resumeRun(runId: string, dispatch = true): void {
    const rows = this.store.runActions(runId);
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const r of rows) {
      if (TERMINAL.has(r.status)) continue;
      const a = this.track({
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
      a.hasHistory = this.store.hasTraces(r.id);
      if (r.window_key) {
        a.window = r.window_key;
        a.slot = r.dispatched === 1;
      }
      if (r.call) {
        const settings = parseCallRecord(r.call).settings;
        if (settings) a.settings = settings;
      }
    }
    for (const r of rows) {
      if (!r.parent) continue;
      const p = this.live.get(r.parent);
      if (!p) continue;
      p.hasHistory = true;
      p.nextSeq = Math.max(p.nextSeq, r.seq + 1);
      if (TERMINAL.has(r.status) && r.outcome) {
        (p.childOk ??= new Map()).set(r.id, parseOutcome(`outcome of ${r.id}`, r.outcome).ok);
      } else (p.children ??= new Set()).add(r.id);
      if (r.window_key) {
        const w = this.window(r.window_key, r.window_limit ?? 1);
        if (!TERMINAL.has(r.status)) {
          if (r.dispatched) w.inflight++;
          else w.waiting.push(r.id);
        }
      }
    }
    for (const w of this.windows.values())
      w.waiting.sort((x, y) => (byId.get(x)!.window_idx ?? 0) - (byId.get(y)!.window_idx ?? 0));
    if (!dispatch) return;
    const builtins: Live[] = [];
    for (const a of this.live.values()) {
      if (a.runId !== runId) continue;
      const row = byId.get(a.id)!;
      if (a.status === "SUSPENDED") this.watch(a, JSON.parse(row.waits ?? "[]") as Wait[]);
      else if (isBuiltin(a.task)) builtins.push(a);
      else if (a.status === "RUNNING" || (a.status === "QUEUED" && row.dispatched)) this.enqueue(a);
    }
    this.waits.arm(builtins);
    for (const w of this.windows.values()) this.releaseWindow(w);
    this.schedulePump();
  }

  waitRun(runId: string): Promise<RunRow> {
    const row = this.store.getRun(runId);
    if (row && row.status !== "RUNNING") return Promise.resolve(row);
    return new Promise((resolve) => {
      const list = this.runWaiters.get(runId) ?? [];
      list.push(resolve);
      this.runWaiters.set(runId, list);
    });
  }

  /** Cancels a run: every action still queued or running ends CANCELLED. */
  cancelRun(runId: string, reason = "the run was cancelled"): void {
    const root = this.live.get(runId);
    if (root)
      this.finish(root, "CANCELLED", { ok: false, error: serializeError(new CancelledError(reason)) });
  }

  /**
   * Sends signal `name` to a running run (a run that ended is a RunEndedError): the first wait for
   * it, now or later, receives `payload`.
   */
  signal(runId: string, name: string, payload: unknown): void {
    checkSignalName(name, "signal");
    this.waits.send(runId, name, serialize(payload, `payload of signal ${JSON.stringify(name)}`));
  }

  progressOf(runId: string): GroupProgress[] {
    return this.progress.of(runId);
  }

  async close(): Promise<void> {
    clearInterval(this.cancelPoll);
    this.waits.close();
    this.flush();
    for (const a of this.live.values()) clearTimeout(a.timer);
    await this.executor.close();
  }

  // ── bookkeeping ──────────────────────────────────────────────────────────────────────────────

  private track(init: Pick<Live, "id" | "runId" | "parent" | "task" | "group" | "args" | "status">): Live {
    const a: Live = { ...init, attempts: 0, token: 0, hasHistory: false, nextSeq: 0, queued: false };
    this.live.set(a.id, a);
    return a;
  }

  private window(key: string, limit: number): Window {
    let w = this.windows.get(key);
    if (!w) this.windows.set(key, (w = { limit, inflight: 0, waiting: [], head: 0 }));
    return w;
  }

  private enqueue(a: Live): void {
    if (a.queued) return;
    a.queued = true;
    this.ready.push(a.id);
    this.schedulePump();
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Sends ready actions to the executor, as many as it takes. */
  private pump(): void {
    this.flush();
    let room = this.executor.capacity();
    if (room === 0 || this.readyHead >= this.ready.length) return;
    const batch: ExecItem[] = [];
    const replays: ExecItem[] = [];
    const unreadable: [Live, SerializedError][] = [];
    const now = this.now();
    this.store.tx(() => {
      while (room > 0 && this.readyHead < this.ready.length) {
        const id = this.ready[this.readyHead++]!;
        const a = this.live.get(id);
        if (!a || !a.queued) continue;
        a.queued = false;
        if (TERMINAL.has(a.status)) continue;
        const def = this.defOf(a);
        if (a.attempts === 0 || a.status !== "RUNNING") a.attempts = Math.max(1, a.attempts);
        a.status = "RUNNING";
        a.token++;
        this.store.startAttempt(a.id, a.attempts, now);
        if (a.hasHistory) this.replays.set(a.runId, (this.replays.get(a.runId) ?? 0) + 1);
        const item: ExecItem = { actionId: a.id, token: a.token, task: a.task, args: a.args };
        if (a.hasHistory) {
          try {
            item.history = this.store.history(a.id);
          } catch (e) {
            // A corrupted or too-new record: fail this action clearly rather than crash the engine.
            unreadable.push([a, serializeError(e)]);
            continue;
          }
        }
        // On this thread, when it knows the task: a parent's replay (orchestration, not compute,
        // and its history is already here), a root, and a task whose body proved cheap.
        if ((a.hasHistory || !a.parent || this.placement.cheap(a.task)) && def) replays.push(item);
        else batch.push(item);
        // One timer per attempt, across re-dispatches of it (a lost worker's action is sent again).
        if (def?.timeoutMs !== undefined && !a.timer)
          // Unref'd: a run in progress holds the event loop (sdk/local/backend.ts), not its timers.
          a.timer = setTimeout(() => this.onTimeout(a.id, def.timeoutMs!), def.timeoutMs).unref();
        room--;
      }
    });
    if (this.readyHead > 4096 && this.readyHead * 2 > this.ready.length) {
      this.ready = this.ready.slice(this.readyHead);
      this.readyHead = 0;
    }
    for (const [a, error] of unreadable)
      this.finish(a, "FAILED", { ok: false, error: { ...error, nonRecoverable: true } });
    if (batch.length) this.executor.send(batch);
    if (replays.length) this.inline.send(replays);
    if (this.readyHead < this.ready.length) this.schedulePump();
  }

  // ── decisions ────────────────────────────────────────────────────────────────────────────────

  private onDecisions(results: [string, number, Decision][]): void {
    for (const [id, token, d] of results) {
      const a = this.live.get(id);
      if (!a || a.token !== token || a.status !== "RUNNING") continue; // stale or duplicate
      this.placement.measure(a.task, d.bodyMs);
      for (const w of d.warnings) this.warn(w);
      switch (d.kind) {
        case "completed":
          if (d.traces.length) this.store.writeTraces(a.id, d.traces);
          this.succeed(a, d.value);
          break;
        case "failed":
          if (d.traces.length) {
            this.store.writeTraces(a.id, d.traces);
            a.hasHistory = true;
          }
          this.fail(a, d.error, false);
          break;
        case "suspended":
          this.suspend(a, d.calls, d.traces, d.waits);
          this.cancelCalls(a, d.cancels);
          break;
        default:
          d satisfies never;
      }
    }
    this.schedulePump();
  }

  private warn(message: string): void {
    if (this.warned.has(message)) return;
    this.warned.add(message);
    this.emit("warning", message);
  }

  /** The task as this action runs it: registered settings, with its call site's overrides. */
  private defOf(a: Pick<Live, "task" | "settings">): TaskDef | undefined {
    const def = findTask(a.task);
    return def && withSettings(def, a.settings);
  }

  private succeed(a: Live, value: string): void {
    const def = this.defOf(a);
    const key = def && cacheLookup(def, a.args);
    if (key) this.store.putCache(key, value, this.now());
    this.finish(a, "SUCCEEDED", { ok: true, value });
  }

  /** Fails an attempt: retried or ended as the policy says (core/policy.ts afterFailure). */
  private fail(a: Live, error: SerializedError, timedOut: boolean): void {
    const next = afterFailure({
      retries: this.defOf(a)?.retries,
      attempt: a.attempts,
      error,
      timedOut,
      hasChildren: a.nextSeq > 0,
    });
    if (next.kind === "end") return this.finish(a, next.status, { ok: false, error: next.error });
    clearTimeout(a.timer);
    a.timer = undefined;
    a.status = "QUEUED";
    a.attempts = next.attempt;
    a.token++; // a late result of the failed attempt is stale
    setTimeout(() => {
      if (a.status === "QUEUED") this.enqueue(a);
    }, next.delayMs).unref?.();
  }

  private suspend(a: Live, calls: CallRecord[], traces: Decision["traces"], waits: Wait[]): void {
    a.hasHistory = true;
    const fresh: Live[] = [];
    const hits: [Live, string][] = [];
    const held = new Set<CallId>(); // calls waiting for a slot in their map's window
    this.store.applySuspension(a.runId, a.id, calls, traces, waits, a.nextSeq, (c) => {
      if (!c.window) return true;
      const w = this.window(c.window.key, c.window.limit);
      if (w.inflight < w.limit) {
        w.inflight++;
        return true;
      }
      w.waiting.push(c.id);
      held.add(c.id);
      return false;
    });
    a.nextSeq += calls.length;
    this.collect(calls.length);
    a.status = "SUSPENDED";
    for (const c of calls) {
      const child = this.track({
        id: c.id,
        runId: a.runId,
        parent: a.id,
        task: c.task,
        group: c.group,
        args: c.args,
        status: "QUEUED",
      });
      if (c.window) {
        child.window = c.window.key;
        child.slot = !held.has(c.id);
      }
      if (c.settings) child.settings = c.settings;
      (a.children ??= new Set()).add(c.id);
      if (!isBuiltin(c.task)) this.progress.total(a.runId, c.group);
      const def = this.defOf(child);
      const key = def && cacheLookup(def, c.args);
      const cached = key ? this.store.getCache(key) : undefined;
      if (cached !== undefined) hits.push([child, cached]);
      else fresh.push(child);
    }
    this.watch(a, waits);
    const taken = this.waits.arm(fresh);
    for (const child of fresh) if (!held.has(child.id) && !taken.has(child.id)) this.enqueue(child);
    for (const [child, value] of hits) {
      this.store.markCached(child.id);
      this.finish(child, "SUCCEEDED", { ok: true, value });
    }
  }

  /** Starts watching a suspended parent's waits; resumes it at once if they are already met. */
  private watch(a: Live, waits: Wait[]): void {
    const t = new WaitTracker(waits);
    if (a.childOk) {
      for (const id of [...t.watched()]) {
        const ok = a.childOk.get(id);
        if (ok !== undefined && t.settle(id, ok)) break;
      }
    }
    if (t.satisfied) this.enqueue(a);
    else a.tracker = t;
  }

  private onTimeout(id: CallId, ms: number): void {
    const a = this.live.get(id);
    if (!a || TERMINAL.has(a.status)) return;
    a.timer = undefined;
    // Whichever dispatch of the attempt is running now is stopped (its worker replaced).
    if (a.status === "RUNNING") this.executor.reclaim([id]);
    this.cancelDescendants(a, descendantsReason(a.task, "TIMED_OUT"));
    this.fail(a, timeoutError(a.task, ms), true);
  }

  /** Records a terminal state once, tells the parent, and ends the run at the root. */
  private finish(a: Live, status: ActionStatus, outcome: Outcome): void {
    if (TERMINAL.has(a.status)) return;
    a.status = status;
    a.queued = false;
    clearTimeout(a.timer);
    a.timer = undefined;
    this.live.delete(a.id);
    this.waits.forget(a.id);
    this.pending.push({ id: a.id, status, outcome, ended: this.now(), attempts: a.attempts });
    if (a.children && a.children.size) this.cancelDescendants(a, descendantsReason(a.task, status));
    if (a.window && a.slot) {
      const w = this.windows.get(a.window);
      if (w) {
        w.inflight--;
        this.releaseWindow(w);
      }
    }
    const parent = a.parent ? this.live.get(a.parent) : undefined;
    if (parent) {
      parent.children?.delete(a.id);
      (parent.childOk ??= new Map()).set(a.id, outcome.ok);
      if (!isBuiltin(a.task)) this.progress.done(a.runId, a.group, outcome.ok);
      if (parent.status === "SUSPENDED" && parent.tracker?.settle(a.id, outcome.ok)) {
        parent.tracker = undefined;
        this.enqueue(parent);
      }
    }
    if (!a.parent) this.endRun(a.runId, status, outcome);
    else if (this.pending.length >= 2048) this.flush();
    else this.schedulePump();
  }

  private releaseWindow(w: Window): void {
    while (w.inflight < w.limit && w.head < w.waiting.length) {
      const id = w.waiting[w.head++]!;
      const c = this.live.get(id);
      if (!c || TERMINAL.has(c.status)) continue;
      w.inflight++;
      c.slot = true;
      this.enqueue(c);
    }
  }

  /**
   * Stops children a parent's replay cancelled (`future.cancel()`, a map's completion rules, a
   * `map.aio` loop left early), as a run cancel does: queued ones never start, running ones are
   * reclaimed, and their descendants are cancelled with them.
   */
  private cancelCalls(parent: Live, ids: readonly CallId[]): void {
    if (!ids.length) return;
    const err = serializeError(new CancelledError(`cancelled: its parent ${parent.task} cancelled it`));
    const running: CallId[] = [];
    for (const id of ids) {
      const c = this.live.get(id);
      if (!c || TERMINAL.has(c.status)) continue;
      if (c.status === "RUNNING") running.push(id);
      this.finish(c, "CANCELLED", { ok: false, error: err });
    }
    if (running.length) this.executor.reclaim(running);
  }

  private cancelDescendants(a: Live, reason: string): void {
    const stack = [...(a.children ?? [])];
    const running: CallId[] = [];
    const err = cancelledError(reason);
    while (stack.length) {
      const c = this.live.get(stack.pop()!);
      if (!c) continue;
      if (c.children) stack.push(...c.children);
      if (c.status === "RUNNING") running.push(c.id);
      c.children = undefined; // its own descendants are handled here, not again by finish()
      this.finish(c, "CANCELLED", { ok: false, error: err });
    }
    if (running.length) this.executor.reclaim(running);
  }

  private endRun(runId: string, status: ActionStatus, outcome: Outcome): void {
    this.flush();
    const state: RunState =
      status === "SUCCEEDED"
        ? "SUCCEEDED"
        : status === "TIMED_OUT"
          ? "TIMED_OUT"
          : status === "CANCELLED"
            ? "CANCELLED"
            : "FAILED";
    this.store.endRun(
      runId,
      state,
      this.now(),
      outcome.ok ? outcome.value : null,
      outcome.ok ? null : JSON.stringify(outcome.error),
    );
    const row = this.store.getRun(runId)!;
    for (const r of this.runWaiters.get(runId) ?? []) r(row);
    this.runWaiters.delete(runId);
    this.emit("runEnded", row);
  }

  /** Writes the results gathered since the last flush, in one transaction. */
  private flush(): void {
    if (!this.pending.length) return;
    const batch = this.pending;
    this.pending = [];
    this.store.complete(batch);
    this.collect(batch.length);
  }

  /**
   * A large fan-out makes short-lived garbage faster than V8 collects it, and the heap (so peak
   * RSS) grows ahead of what is live. A full collection every {@link COLLECT_EVERY} units of work
   * (results, calls) keeps it near the live size; it costs a few ms each time.
   */
  private collect(work: number): void {
    this.churn += work;
    if (this.churn < COLLECT_EVERY) return;
    this.churn = 0;
    gc()?.();
  }

  private pollCancels(): void {
    const runs = new Set<string>();
    for (const a of this.live.values()) if (!a.parent) runs.add(a.runId);
    for (const r of runs) if (this.store.cancelRequested(r)) this.cancelRun(r, "cancelled by aloft cancel");
    this.waits.poll();
  }
}
