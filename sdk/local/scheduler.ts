/**
 * What the engine's steps (dispatch.ts, outcome.ts, cancel.ts) share: the in-memory state of a
 * store's runs and the engine's hooks. The Engine class owns one and hands it to each step, so the
 * steps are plain functions and none of them imports another's caller.
 */
import type { CallId, Outcome } from "../core/history.ts";
import type { Live, Window } from "./live.ts";
import type { Executor, InlineExecutor } from "./pool.ts";
import type { Placement } from "./placement.ts";
import type { Progress } from "./progress.ts";
import type { ActionStatus, Store } from "./store.ts";
import type { PendingWrites } from "./writes.ts";
import type { ReadyQueue } from "./ready-queue.ts";
import type { LocalWaits } from "./durable-waits.ts";

export interface Scheduler {
  readonly store: Store;
  /** Actions that have not ended, by id. */
  readonly live: Map<CallId, Live>;
  /** Runs in progress (their roots are in `live`), so polling for cancels need not scan `live`. */
  readonly runs: Set<string>;
  /** Windowed maps' slots, by window key. */
  readonly windows: Map<string, Window>;
  readonly ready: ReadyQueue;
  /** Attempts started and results not yet written (see Engine.flush). */
  readonly writes: PendingWrites;
  /** Where bodies run: the worker pool (or `inline` when there are no workers). */
  readonly executor: Executor;
  /** Roots, parents' replays and cheap tasks run here, on the engine's thread (see dispatch.ts). */
  readonly inline: InlineExecutor;
  readonly placement: Placement;
  readonly progress: Progress;
  /** Replays per run (an action's executions after its first). */
  readonly replays: Map<string, number>;
  readonly now: () => number;
  /** Built-in calls (`sleep`, `waitForSignal`) the engine completes itself (durable-waits.ts). */
  readonly waits: LocalWaits;

  /** Puts an action on the ready queue (once) and schedules a dispatch. */
  enqueue(a: Live): void;
  schedulePump(): void;
  /** Dispatches what is ready now, not on the next turn (dispatch.ts dispatchReady). */
  dispatchNow(): void;
  /**
   * Writes the pending starts and results in one transaction, with the deferred rows they touch;
   * `all`: every deferred row too (writes.ts).
   */
  flush(all?: boolean): void;
  /** Has them written within WRITE_DELAY_MS (writes.ts), if nothing writes them sooner. */
  flushSoon(): void;
  /** Emits a warning once per distinct message. */
  warn(message: string): void;
  /** Records a terminal state (outcome.ts finish); a hook so cancel.ts need not import outcome.ts. */
  finish(a: Live, status: ActionStatus, outcome: Outcome): void;
  /** The root ended: records the run's end and tells its waiters. */
  endRun(runId: string, status: ActionStatus, outcome: Outcome): void;
}
