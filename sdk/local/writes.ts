/**
 * Store writes the engine has decided but not yet made: attempts started, actions ended, and the
 * rows of a suspension's calls that have not started. They are written together, in one
 * transaction, WRITE_DELAY_MS after the first start or result at the latest; sooner when 2,048 are
 * pending, before a replay reads its history from the store, before a suspension is written over
 * its parent's start, and when a run ends (Engine.flush). An action that starts and ends between
 * two writes costs one row update instead of two, and a map whose window releases 50 children at a
 * time writes once per few rounds, not once per round.
 *
 * A call its parent's suspension sends to run at once is inserted by the first write after it
 * starts or ends, with what it has done by then: a child that runs and ends between two writes is
 * one insert, not an insert and an update (docs/performance.md, thirteenth pass). Until all of a
 * suspension's calls are written its parent stays RUNNING in the store, with its wait written
 * after the last of them; calls that have not started are written VISIBLE_MS after the suspension
 * at the latest, so that `aloft status` and the UI show them.
 *
 * Losing them in a crash is safe: an action whose start was not written is still QUEUED in the
 * store (dispatched, or waiting for its map window's slot), and `aloft resume` runs it again as it
 * would a RUNNING one; a result not written is a child run again, at most WRITE_DELAY_MS of them; a
 * parent whose calls were not all written is RUNNING, and is replayed as one that crashed before
 * it suspended: the calls recorded are matched, the rest made again (with seqs after the recorded
 * ones: a history with gaps in its seqs is matched by id, store.ts history).
 */
import type { CallId, CallRecord } from "../core/history.ts";
import type { Wait } from "../core/wait.ts";
import type { AttemptStart, Completion, NewRowBatch, NewRows } from "./store.ts";

/** How long a start or result may wait to be written. */
export const WRITE_DELAY_MS = 10;
/** How long a suspension's calls that have not started may wait to be written. */
export const VISIBLE_MS = 1_000;

/** A suspension's calls sent to run at once, whose rows are written as they start (see above). */
export class Deferred {
  /** Per call of the suspension: 1 while its row waits to be written. */
  readonly unwritten: Uint8Array;
  /** Calls whose rows wait. */
  left = 0;
  /** What waiting calls did since the last write, by index: written with their rows. */
  starts = new Map<number, AttemptStart>();
  ends = new Map<number, Completion>();

  constructor(
    readonly runId: string,
    readonly parent: CallId,
    /** All the suspension's calls (those written at once too): the i-th call's seq is firstSeq + i. */
    readonly calls: readonly CallRecord[],
    readonly firstSeq: number,
    /** The parent's wait, written with the last of the calls. */
    readonly waits: Wait[],
    /** When the suspension was made (performance.now()). */
    readonly since: number,
  ) {
    this.unwritten = new Uint8Array(calls.length);
  }
}

/**
 * A Live's `row` while its row waits in its parent's Deferred: -(its index there + 1). Negative,
 * so no rowid (they start at 1) is taken for it.
 */
export const deferredRow = (index: number): number => -(index + 1);

export class PendingWrites {
  starts = new Map<CallId, AttemptStart>();
  completions: Completion[] = [];
  /** Suspensions whose calls are not all written, by parent. */
  readonly deferred = new Map<CallId, Deferred>();
  /** Starts and ends of deferred calls since the last write. */
  private touched = 0;

  /** Starts and results pending (a deferred row that has done neither is not counted). */
  get size(): number {
    return this.starts.size + this.completions.length + this.touched;
  }

  /** The Deferred holding `row`'s row, if it waits there (see deferredRow). */
  private waiting(row: number | undefined, parent: CallId | undefined): Deferred | undefined {
    return row !== undefined && row < 0 && parent !== undefined ? this.deferred.get(parent) : undefined;
  }

  /** An attempt of `id` started; `row` its row (see deferredRow), `parent` its parent. */
  start(id: CallId, row: number | undefined, parent: CallId | undefined, attempts: number, at: number): void {
    const d = this.waiting(row, parent);
    if (d) {
      const i = -row! - 1;
      const prev = d.starts.get(i);
      if (!prev && !d.ends.has(i)) this.touched++;
      d.starts.set(i, { attempts, at: prev?.at ?? at, row: undefined });
      return;
    }
    const prev = this.starts.get(id);
    this.starts.set(id, {
      attempts,
      at: prev?.at ?? at,
      row: row !== undefined && row < 0 ? undefined : row,
    });
  }

  /** `c.id` ended; `parent` is its parent. */
  complete(c: Completion, parent: CallId | undefined): void {
    const d = this.waiting(c.row, parent);
    if (d) {
      const i = -c.row! - 1;
      if (!d.starts.has(i) && !d.ends.has(i)) this.touched++;
      d.ends.set(i, c);
      return;
    }
    if (c.row !== undefined && c.row < 0) c.row = undefined;
    this.completions.push(c);
  }

  /** Whether an attempt of `id` started and is not written yet. */
  hasStart(id: CallId, row: number | undefined, parent: CallId | undefined): boolean {
    const d = this.waiting(row, parent);
    return d ? d.starts.has(-row! - 1) : this.starts.has(id);
  }

  /**
   * Hands over what is pending and starts afresh: the starts and results, and the deferred rows to
   * write with them (those that started or ended; all of a Deferred `all` says, or older than
   * VISIBLE_MS at `now`). A Deferred whose rows are all taken is dropped, its parent's wait with them.
   */
  take(all: (d: Deferred) => boolean): {
    starts: Map<CallId, AttemptStart>;
    completions: Completion[];
    fresh: NewRows | undefined;
  } {
    let fresh: NewRows | undefined;
    if (this.deferred.size) {
      const batches: NewRowBatch[] = [];
      const suspends: [CallId, Wait[]][] = [];
      for (const [parent, d] of this.deferred) {
        const indexes: number[] = [];
        const put = (i: number): void => {
          if (!d.unwritten[i]) return;
          d.unwritten[i] = 0;
          d.left--;
          indexes.push(i);
        };
        if (all(d)) for (let i = 0; i < d.calls.length; i++) put(i);
        else {
          for (const i of d.starts.keys()) put(i);
          for (const i of d.ends.keys()) put(i);
        }
        if (indexes.length) {
          const { runId, calls, firstSeq, starts, ends } = d;
          batches.push({ runId, parent, calls, firstSeq, indexes, starts, ends });
          d.starts = new Map();
          d.ends = new Map();
        }
        if (d.left === 0) {
          suspends.push([parent, d.waits]);
          this.deferred.delete(parent);
        }
      }
      if (batches.length || suspends.length) fresh = { batches, suspends };
    }
    const out = { starts: this.starts, completions: this.completions, fresh };
    this.starts = new Map();
    this.completions = [];
    this.touched = 0;
    return out;
  }
}
