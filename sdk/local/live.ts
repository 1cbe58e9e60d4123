/** The embedded engine's in-memory view of an action that has not ended, and of a map window. */
import type { CallId, History, Outcome, Twin } from "../core/history.ts";
import type { WaitTracker } from "../core/wait.ts";
import type { Continuation } from "../core/continuation.ts";
import type { ActionStatus } from "./store.ts";
import type { CallSettings } from "../core/task-def.ts";

export interface Live {
  id: CallId;
  runId: string;
  parent: CallId | undefined;
  task: string;
  group: string;
  args: string;
  status: ActionStatus;
  attempts: number;
  /** Bumped at every dispatch; a result with an older token is stale. */
  token: number;
  /** Has children or traces recorded (so a replay must load its history). */
  hasHistory: boolean;
  nextSeq: number;
  tracker?: WaitTracker;
  /**
   * Children settled (ok or not) since its history was last read, for building trackers; those
   * settled before are in `seen`, and those kept in `mem` are there. A gather's parent would
   * otherwise hold an entry per child.
   */
  childOk?: Map<CallId, boolean>;
  /** The outcomes in the history its current replay was given (until that replay's decision). */
  seen?: ReadonlyMap<CallId, Outcome>;
  /** Its last replay, parked on this thread to continue from its suspension (core/continuation.ts). */
  cont?: Continuation;
  /**
   * Children's outcomes since it was last dispatched on this thread, for its continuation: what a
   * fresh replay would read in its history, and the continuation does not know yet.
   */
  arrived?: Map<CallId, Outcome>;
  /**
   * Its history from its first suspension until its first resume, kept rather than read back: the
   * calls and traces that decision wrote, and its children's outcomes as they settle. A gather's
   * parent then never reads its history from the store.
   */
  mem?: History;
  /**
   * Its row in the store, when this engine inserted it: its writes go by rowid (store.ts). Negative
   * while the row waits to be written with its parent's other calls (writes.ts, deferredRow).
   */
  row?: number;
  children?: Set<CallId>;
  timer?: NodeJS.Timeout;
  queued: boolean;
  window?: string;
  /** Holds one of its window's slots. */
  slot?: boolean;
  /** What its call site overrides (`task.override`). */
  settings?: CallSettings;
  /** In a recovered run: where its calls' outcomes are in the source runs (core/recover.ts). */
  twins?: Twin[];
}

/** A windowed map's slots: how many items may run, how many do, and the items waiting in order. */
export interface Window {
  limit: number;
  inflight: number;
  waiting: CallId[];
  head: number;
}
