/**
 * The embedded engine: the same semantics as the cloud, in one process. It is an adapter around the
 * pure replay core: it stores what each decision says (SQLite), dispatches child calls to the
 * executor (worker pool or inline), watches each suspended parent's wait with a WaitTracker and
 * replays it once that wait is satisfied, enforces retries, timeouts, windows and cancellation.
 *
 * This class is the scheduler: it holds the state (a {@link Scheduler}) and the run-level API. The
 * steps are functions over that state: dispatch.ts (start attempts, send them where they run),
 * outcome.ts (apply decisions, timeouts, an action's end), cancel.ts, resume.ts.
 */
import { EventEmitter } from "node:events";
import { randomUUID } from "node:crypto";
import type { Outcome } from "../core/history.ts";
import { TERMINAL } from "../core/history.ts";
import { serializeError } from "../errors.ts";
import type { TaskDef } from "../core/task-def.ts";
import type { ExecItem, LogBatch } from "./run-body.ts";
import { InlineExecutor, WorkerPool } from "./pool.ts";
import type { OnDecisions } from "./pool.ts";
import type { ActionStatus, RunRow } from "./store.ts";
import { Store } from "./store.ts";
import type { GroupProgress, RunState } from "../run-handle.ts";
import type { Live } from "./live.ts";
import { Placement } from "./placement.ts";
import { Progress } from "./progress.ts";
import { ReadyQueue } from "./ready-queue.ts";
import { tuneHeapGrowth } from "./heap-growth.ts";
import { PendingWrites, VISIBLE_MS, WRITE_DELAY_MS } from "./writes.ts";
import type { Scheduler } from "./scheduler.ts";
import { dispatchReady } from "./dispatch.ts";
import { applyDecisions, finish, track } from "./outcome.ts";
import { cancelRun, pollCancels } from "./cancel.ts";
import { resumeRun } from "./resume.ts";
import { rootTwins } from "../core/recover.ts";
import { LocalWaits, realWaitClock } from "./durable-waits.ts";
import type { WaitClock } from "./durable-waits.ts";
import { WaitStore } from "./wait-store.ts";
import { checkSignalName } from "../core/durable-waits.ts";
import { parseCallbackId } from "../core/callbacks.ts";
import { serialize } from "../serde.ts";

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
  private readonly s: Scheduler;
  private pumpScheduled = false;
  /** Writes what is pending (writes.ts) once it has waited WRITE_DELAY_MS, if nothing wrote it sooner. */
  private flushTimer: NodeJS.Timeout | undefined;
  /** Writes the deferred rows (writes.ts) of the oldest suspension once it is VISIBLE_MS old. */
  private showTimer: NodeJS.Timeout | undefined;
  private readonly runWaiters = new Map<string, ((r: RunRow) => void)[]>();
  private readonly warned = new Set<string>();
  private readonly cancelPoll: NodeJS.Timeout;
  /** Closed: the store may be closed too; late lines from bodies are dropped. */
  private closed = false;
  /** close() has begun: a worker stopped by it before it loaded the tasks fails no run. */
  private closing = false;
  readonly store: Store;
  /** Replays per run (an action's executions after its first). */
  readonly replays = new Map<string, number>();

  constructor(opts: EngineOptions) {
    super();
    tuneHeapGrowth();
    this.store = opts.store;
    const onDecisions: OnDecisions = (rs) => applyDecisions(this.s, rs);
    const onLost = (items: ExecItem[]): void => {
      for (const it of items) {
        const a = this.s.live.get(it.actionId);
        if (a && a.token === it.token && a.status === "RUNNING") this.enqueue(a);
      }
    };
    // What bodies print is stored as it comes, apart from decisions (a body still running shows it).
    const onLogs = (batch: LogBatch[]): void => {
      if (this.closed) return;
      // A line is stored under its action's row: a deferred one (writes.ts) is written once its
      // action has started, as one that printed has.
      if (this.s.writes.deferred.size) this.flush();
      this.store.appendLogs(batch);
    };
    const inline = new InlineExecutor(onDecisions, onLogs);
    const clock = opts.clock ?? realWaitClock;
    this.s = {
      store: opts.store,
      live: new Map(),
      runs: new Set(),
      windows: new Map(),
      ready: new ReadyQueue(),
      writes: new PendingWrites(),
      executor:
        opts.workers > 0
          ? // Work held for want of a worker goes out as soon as one has loaded the modules.
            new WorkerPool(
              opts.workers,
              opts.modules,
              onDecisions,
              onLost,
              onLogs,
              (bodies) => {
                for (const [task, ms] of bodies) this.s.placement.measure(task, ms);
                // Items held back while their task was measured go out (dispatch.ts).
                if (!this.closed) this.schedulePump();
              },
              () => {
                if (!this.closed) this.schedulePump();
              },
            )
          : inline,
      inline,
      placement: new Placement(),
      progress: new Progress((p) => this.emit("progress", p)),
      replays: this.replays,
      now: opts.now ?? (() => clock.now()),
      waits: new LocalWaits(new WaitStore(opts.store.db), clock, (id, status, outcome) => {
        const a = this.s.live.get(id);
        if (a) finish(this.s, a, status, outcome);
      }),
      enqueue: (a) => this.enqueue(a),
      schedulePump: () => this.schedulePump(),
      dispatchNow: () => dispatchReady(this.s),
      flush: (all) => this.flush(all),
      flushSoon: () => {
        if (this.closed) return;
        if (!this.flushTimer && this.s.writes.size)
          this.flushTimer = setTimeout(() => this.flush(), WRITE_DELAY_MS);
        this.showSoon();
      },
      warn: (m) => this.warn(m),
      finish: (a, status, outcome) => finish(this.s, a, status, outcome),
      endRun: (runId, status, outcome) => this.endRun(runId, status, outcome),
    };
    // Another process (`aloft cancel`) asks by writing to the store; look now and then.
    // So does `aloft signal` (its signals are in the store's signals table).
    this.cancelPoll = setInterval(() => {
      pollCancels(this.s);
      this.s.waits.poll();
    }, 250);
    this.cancelPoll.unref();
  }

  /** Every worker has loaded the task modules (a benchmark's clock starts after this). */
  async started(): Promise<void> {
    if (!(this.s.executor instanceof WorkerPool)) return;
    // The workers are unref'd: something must hold the event loop while they load.
    const hold = setInterval(() => undefined, 1 << 30);
    try {
      await this.s.executor.started();
    } finally {
      clearInterval(hold);
    }
  }

  /**
   * A worker has loaded the task modules (the others join as they load). Runs may start before:
   * their roots run on this thread. If no worker can load them, every run ends FAILED with why.
   */
  async takingWork(): Promise<void> {
    const pool = this.s.executor;
    if (!(pool instanceof WorkerPool)) return;
    try {
      await pool.takingWork();
    } catch (e) {
      if (this.closing) throw e;
      const error = serializeError(e);
      for (const a of [...this.s.live.values()])
        if (!a.parent && !TERMINAL.has(a.status)) finish(this.s, a, "FAILED", { ok: false, error });
      throw e;
    }
    // A worker that cannot load what another loaded: said once, and the others carry the work. (Not
    // one that close() stopped while it loaded: a quick run can end before every worker is up.)
    pool.started().catch((e: Error) => {
      if (!this.closing) process.emitWarning(`${e.message}\nruns continue on the workers that loaded them`);
    });
  }

  // ── runs ─────────────────────────────────────────────────────────────────────────────────────

  /**
   * Starts a run of `def`; with `recovers`, a recovery of that ended run (docs/recover.md): the
   * calls that succeeded in it (or in the runs it recovered) return their recorded outcomes.
   */
  startRun(def: TaskDef, args: string, recovers?: string): string {
    const id = `r-${randomUUID().slice(0, 13)}`;
    const now = this.s.now();
    this.store.createRun({ id, task: def.name, module: def.module, args, now, recoveredFrom: recovers });
    const root = track(this.s, {
      id,
      runId: id,
      parent: undefined,
      task: def.name,
      group: "",
      args,
      status: "QUEUED",
    });
    root.twins = rootTwins(this.store.recoveryChain(id));
    this.enqueue(root);
    return id;
  }

  /** Continues a run from its stored history (after a crash or a kill); `dispatch: false` only loads it. */
  resumeRun(runId: string, dispatch = true): void {
    resumeRun(this.s, runId, dispatch);
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
    cancelRun(this.s, runId, reason);
  }

  /**
   * Sends signal `name` to a running run (a run that ended is a RunEndedError): the first wait for
   * it, now or later, receives `payload`.
   */
  signal(runId: string, name: string, payload: unknown): void {
    checkSignalName(name, "signal");
    this.s.waits.send(runId, name, serialize(payload, `payload of signal ${JSON.stringify(name)}`));
  }

  /**
   * Completes callback `id` (`cb.<run>.<secret>`) with `outcome` (completionOutcome/failureOutcome):
   * the first completion wins; an unknown id, a callback that is over or a run that ended is the
   * error that says which.
   */
  completeCallback(id: string, outcome: Outcome): void {
    const { run, secret } = parseCallbackId(id);
    this.s.waits.completeCallback(run, secret, outcome);
  }

  progressOf(runId: string): GroupProgress[] {
    return this.s.progress.of(runId);
  }

  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.cancelPoll);
    this.s.waits.close();
    this.flush(true);
    for (const a of this.s.live.values()) clearTimeout(a.timer);
    await this.s.inline.close(); // its last lines, while the store is open
    if (this.s.executor !== this.s.inline) await this.s.executor.close();
    this.flush(true); // what ended while the workers stopped
    clearTimeout(this.showTimer);
    this.closed = true;
  }

  // ── scheduling ───────────────────────────────────────────────────────────────────────────────

  private enqueue(a: Live): void {
    if (a.queued) return;
    a.queued = true;
    this.s.ready.push(a.id);
    this.schedulePump();
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      dispatchReady(this.s);
    });
  }

  private warn(message: string): void {
    if (this.warned.has(message)) return;
    this.warned.add(message);
    this.emit("warning", message);
  }

  private endRun(runId: string, status: ActionStatus, outcome: Outcome): void {
    this.flush(true);
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
      this.s.now(),
      outcome.ok ? outcome.value : null,
      outcome.ok ? null : JSON.stringify(outcome.error),
    );
    const row = this.store.getRun(runId)!;
    for (const r of this.runWaiters.get(runId) ?? []) r(row);
    this.runWaiters.delete(runId);
    this.emit("runEnded", row);
  }

  /**
   * Writes the starts and results gathered since the last flush, in one transaction, with the
   * deferred rows they touch (writes.ts); `all`: every deferred row too.
   */
  private flush(all = false): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    // Closed, the store may be too: what a late result would write is dropped, as its lines are.
    if (this.closed) return;
    const w = this.s.writes;
    if (!w.size && !w.deferred.size) return;
    const now = performance.now();
    const { starts, completions, fresh } = w.take((d) => all || now - d.since >= VISIBLE_MS);
    if (starts.size || completions.length || fresh) this.store.write(starts, completions, fresh);
    if (fresh) {
      // A written row's later writes go by its rowid (or its id, where the row was there before).
      fresh.batches.forEach((b, n) => {
        const ids = fresh.rowids![n]!;
        b.indexes.forEach((i, k) => {
          if (b.ends.has(i)) return;
          const a = this.s.live.get(b.calls[i]!.id);
          if (a && a.row !== undefined && a.row < 0) a.row = ids[k];
        });
      });
    }
    this.showSoon();
  }

  /** Has the oldest suspension's deferred rows written once it is VISIBLE_MS old (writes.ts). */
  private showSoon(): void {
    if (this.closed) return;
    const oldest = this.s.writes.deferred.values().next().value;
    if (!oldest) {
      clearTimeout(this.showTimer);
      this.showTimer = undefined;
      return;
    }
    if (this.showTimer) return;
    const due = Math.max(0, oldest.since + VISIBLE_MS - performance.now());
    // Unref'd: a run in progress holds the event loop (backend.ts), not this timer.
    this.showTimer = setTimeout(() => {
      this.showTimer = undefined;
      this.flush();
    }, due).unref();
  }
}
