/**
 * Where the embedded engine runs replays: a pool of worker threads (default one per core, so
 * CPU-bound children run truly in parallel), or inline on the main thread (`workers: 0`).
 * A worker running an action past its timeout, or one that was cancelled, is terminated and
 * replaced: that is the only way to stop CPU-bound JavaScript.
 */
import { Worker } from "node:worker_threads";
import { serializeError } from "../errors.ts";
import { execute, failedDecision } from "./run-body.ts";
import type { Continuation } from "../core/continuation.ts";
import type { Decision } from "../core/replay.ts";
import type { ExecItem, LogBatch } from "./run-body.ts";
import { LogBuffer } from "./run-body.ts";
import type { FromWorker, ToWorker } from "./worker.ts";

export type OnDecisions = (
  results: [actionId: string, token: number, decision: Decision, kept?: Continuation][],
) => void;
/** Lines task bodies printed (sdk/log-capture.ts), to store. */
export type OnLogs = (batch: LogBatch[]) => void;
/** Items that were on a worker that died or was reclaimed, to be dispatched again. */
export type OnLost = (items: ExecItem[]) => void;
/** How long bodies' synchronous segments took on a worker, per task (placement.ts). */
export type OnMeasured = (bodies: [task: string, ms: number][]) => void;

export interface Executor {
  /** Worker threads it runs items on (none: the engine's thread). */
  readonly workers: number;
  /** How many more items it would take now. */
  capacity(): number;
  send(items: ExecItem[]): void;
  /** Stops whatever runs `actionIds` (and re-offers the rest of that worker's items via OnLost). */
  reclaim(actionIds: Iterable<string>): void;
  close(): Promise<void>;
  /** How many items of `task` it runs now. */
  running(task: string): number;
}

/** Items in flight per worker: enough to keep it busy, few enough to balance CPU-bound work. */
const PER_WORKER = 64;

class Slot {
  worker: Worker;
  ready: Promise<void>;
  /** Its first worker has loaded the task modules (start-up, see WorkerPool.room). */
  loaded = false;
  /** Its first worker has answered, whether it loaded the modules or not. */
  answered = false;
  readonly inflight = new Map<string, ExecItem>();
  constructor(private readonly spawn: () => { worker: Worker; ready: Promise<void> }) {
    ({ worker: this.worker, ready: this.ready } = spawn());
  }
  respawn(): void {
    void this.worker.terminate();
    ({ worker: this.worker, ready: this.ready } = this.spawn());
  }
}

export class WorkerPool implements Executor {
  private readonly slots: Slot[] = [];
  private next = 0;
  private closed = false;
  /** Until every first worker has answered (start-up): see room. */
  private booting = true;

  constructor(
    size: number,
    private readonly modules: string[],
    private readonly onDecisions: OnDecisions,
    private readonly onLost: OnLost,
    private readonly onLogs: OnLogs,
    private readonly onMeasured: OnMeasured,
    /** A worker has loaded the task modules: there is room where there was none. */
    private readonly onReady: () => void = () => undefined,
  ) {
    for (let i = 0; i < size; i++) {
      const slot: Slot = new Slot(() => this.spawn(() => slot));
      this.slots.push(slot);
    }
  }

  private spawn(slotOf: () => Slot): { worker: Worker; ready: Promise<void> } {
    const worker = new Worker(new URL("./worker-boot.js", import.meta.url), {
      workerData: { modules: this.modules },
      stdout: false,
      stderr: false,
    });
    let markReady!: () => void;
    let failReady!: (e: Error) => void;
    const ready = new Promise<void>((res, rej) => {
      markReady = res;
      failReady = rej;
    });
    ready.catch(() => undefined);
    worker.on("message", (m: FromWorker) => {
      if (m.type === "ready") {
        if (m.error)
          failReady(
            new Error(
              "a worker could not load the task modules: each worker thread imports them, so their " +
                "top level must load off the main thread too (or run with --workers 0, init({ workers: 0 }))" +
                `:\n${m.error}`,
            ),
          );
        else markReady();
        const slot = slotOf();
        if (this.booting && slot.worker === worker) {
          slot.loaded = !m.error;
          slot.answered = true;
          this.booting = !this.slots.every((s) => s.answered);
          this.onReady();
        }
        return;
      }
      // A body's lines are kept even from a worker reclaimed since (a timed-out attempt printed them).
      if (m.type === "logs") return this.onLogs(m.batch);
      if (m.type === "measured") return this.onMeasured(m.bodies);
      const slot = slotOf();
      if (slot.worker !== worker) return; // a reclaimed worker's last words
      for (const [id] of m.results) slot.inflight.delete(id);
      this.onDecisions(m.results);
    });
    // Stopped (the engine closed, or the module exited the thread) before it loaded the modules.
    worker.on("exit", (code) =>
      failReady(new Error(`a worker stopped (exit code ${code}) before it loaded the task modules`)),
    );
    worker.on("error", (e) => {
      failReady(e);
      const slot = slotOf();
      if (slot.worker !== worker || this.closed) return;
      // The worker died (e.g. out of memory): its items run again elsewhere.
      const lost = [...slot.inflight.values()];
      slot.inflight.clear();
      slot.respawn();
      this.onLost(lost);
    });
    // A run in progress keeps the process alive (sdk/local/backend.ts), not idle workers. After
    // the listeners: adding a "message" listener refs the worker's port again.
    worker.unref();
    return { worker, ready };
  }

  /** Resolves once every worker has loaded the task modules (or rejects with why one could not). */
  async started(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.ready));
  }

  /**
   * Resolves once a worker has loaded the task modules, or rejects with why none could: work
   * starts on the first worker ready while the others still load (start-up, docs/performance.md).
   */
  async takingWork(): Promise<void> {
    try {
      await Promise.any(this.slots.map((s) => s.ready));
    } catch (e) {
      throw (e as AggregateError).errors[0] as Error;
    }
  }

  /**
   * How many more items a worker takes now. While the pool starts, work begins on the workers
   * that have loaded the task modules, one item each at a time, so that CPU-bound children still
   * spread over all of them once they have loaded; after that, a worker being replaced takes
   * items too (they wait in its queue until it has loaded).
   */
  private room(s: Slot): number {
    if (!this.booting) return PER_WORKER - s.inflight.size;
    return s.loaded ? 1 - s.inflight.size : 0;
  }

  capacity(): number {
    let c = 0;
    for (const s of this.slots) c += Math.max(0, this.room(s));
    return c;
  }

  send(items: ExecItem[]): void {
    // Fill the least-loaded workers first, in small slices, so CPU-bound work spreads evenly.
    let i = 0;
    while (i < items.length) {
      let best: Slot | undefined;
      for (let k = 0; k < this.slots.length; k++) {
        const s = this.slots[(this.next + k) % this.slots.length]!;
        if (this.booting && this.room(s) <= 0) continue;
        if (!best || s.inflight.size < best.inflight.size) best = s;
      }
      // No room (dispatch sends within capacity()): the rest go back to the queue.
      if (!best) return this.onLost(items.slice(i));
      this.next = (this.next + 1) % this.slots.length;
      const room = Math.max(1, this.room(best));
      const share = Math.ceil((items.length - i) / this.slots.length);
      const slice = items.slice(i, i + Math.min(room, share, 16));
      i += slice.length;
      for (const it of slice) best.inflight.set(it.actionId, it);
      best.worker.postMessage({ type: "exec", items: slice } satisfies ToWorker);
    }
  }

  get workers(): number {
    return this.slots.length;
  }

  /** (Asked only while a task is being measured: it walks the items in flight, dispatch.ts.) */
  running(task: string): number {
    let n = 0;
    for (const slot of this.slots) for (const it of slot.inflight.values()) if (it.task === task) n++;
    return n;
  }

  reclaim(actionIds: Iterable<string>): void {
    const ids = new Set(actionIds);
    for (const slot of this.slots) {
      let hit = false;
      for (const id of slot.inflight.keys()) if (ids.has(id)) hit = true;
      if (!hit) continue;
      const others = [...slot.inflight.values()].filter((it) => !ids.has(it.actionId));
      slot.inflight.clear();
      slot.respawn();
      if (others.length) this.onLost(others);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}

/** Runs replays on the main thread: no parallelism, no reclaiming, least overhead. */
export class InlineExecutor implements Executor {
  readonly workers = 0;
  private inflight = 0;
  private readonly logs: LogBuffer;
  constructor(
    private readonly onDecisions: OnDecisions,
    onLogs: OnLogs,
  ) {
    this.logs = new LogBuffer(onLogs);
  }
  capacity(): number {
    return Math.max(0, 256 - this.inflight);
  }
  send(items: ExecItem[]): void {
    for (const item of items) {
      this.inflight++;
      let kept: Continuation | undefined;
      const onPark = item.keep ? (c: Continuation): void => void (kept = c) : undefined;
      execute(item, this.logs, onPark).then(
        (d) => {
          this.inflight--;
          this.logs.flush();
          this.onDecisions([[item.actionId, item.token, d, kept]]);
        },
        (e: unknown) => {
          this.inflight--;
          this.onDecisions([[item.actionId, item.token, failedDecision(serializeError(e))]]);
        },
      );
    }
  }
  reclaim(): void {
    /* inline work cannot be interrupted; its late result is ignored by token */
  }
  running(): number {
    return 0; // (placement only asks the pool: everything runs here without one)
  }
  async close(): Promise<void> {
    this.logs.flush();
  }
}
