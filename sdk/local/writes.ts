/**
 * Store writes the engine has decided but not yet made: attempts started and actions ended. They
 * are written together, in one transaction, WRITE_DELAY_MS after the first of them at the latest;
 * sooner when 2,048 are pending, before a replay reads its history from the store, before a
 * suspension is written over its parent's start, and when a run ends (Engine.flush). An action that
 * starts and ends between two writes costs one row update instead of two, and a map whose window
 * releases 50 children at a time writes once per few rounds, not once per round.
 *
 * Losing them in a crash is safe: an action whose start was not written is still QUEUED in the
 * store (dispatched, or waiting for its map window's slot), and `aloft resume` runs it again as it
 * would a RUNNING one; a result not written is a child run again, at most WRITE_DELAY_MS of them.
 */
import type { CallId } from "../core/history.ts";
import type { AttemptStart, Completion } from "./store.ts";

/** How long a start or result may wait to be written. */
export const WRITE_DELAY_MS = 10;

export class PendingWrites {
  starts = new Map<CallId, AttemptStart>();
  completions: Completion[] = [];

  get size(): number {
    return this.starts.size + this.completions.length;
  }

  start(id: CallId, row: number | undefined, attempts: number, at: number): void {
    const prev = this.starts.get(id);
    this.starts.set(id, { attempts, at: prev?.at ?? at, row });
  }

  complete(c: Completion): void {
    this.completions.push(c);
  }

  /** Hands over what is pending and starts afresh. */
  take(): { starts: Map<CallId, AttemptStart>; completions: Completion[] } {
    const out = { starts: this.starts, completions: this.completions };
    this.starts = new Map();
    this.completions = [];
    return out;
  }
}
