/**
 * What a caller sees of a run, the same on either backend: the Run handle, its status tree and
 * group progress. The embedded engine (sdk/local) and the AWS client (sdk/aws) both produce these.
 */

export type RunState = "RUNNING" | "SUCCEEDED" | "FAILED" | "CANCELLED" | "TIMED_OUT";

/** A started run. */
export interface Run<R = unknown> {
  readonly id: string;
  /** The root task's result; rejects with a TaskError (or CancelledError / TaskTimeoutError). */
  result(): Promise<R>;
  status(): Promise<RunStatus>;
  /** Status snapshots while the run is live, ending with the terminal one. */
  watch(intervalMs?: number): AsyncIterable<RunStatus>;
  cancel(): Promise<void>;
  /**
   * Sends signal `name` to the run: the first `waitForSignal(name)` in it, now or later, receives
   * `payload`. Rejects with `RunEndedError` once the run has ended.
   * @example
   * await run.signal("approve", { approved: true, by: "ana" });
   */
  signal(name: string, payload?: unknown): Promise<void>;
  /** Per-group progress of children (done/total/failed). */
  progress(): GroupProgress[];
}

export interface GroupProgress {
  runId: string;
  group: string;
  total: number;
  done: number;
  failed: number;
}

export interface ActionNode {
  id: string;
  task: string;
  group: string;
  status: string;
  attempts: number;
  cached: boolean;
  /** In a recovered run: the run whose recorded outcome this action returned instead of running. */
  reusedFrom?: string;
  durationMs: number | undefined;
  startedAt: number | undefined;
  endedAt: number | undefined;
  /**
   * For a durable wait not yet over (`sleep`, `waitForSignal`), what it waits for: `timer fires at
   * <ISO time>`, `signal "approve"` (with `, times out at <ISO time>`).
   */
  waiting?: string;
  /** Children, in call order. */
  children: ActionNode[];
}

export interface GroupSummary {
  group: string;
  total: number;
  byStatus: Record<string, number>;
}

export interface RunStatus {
  id: string;
  task: string;
  state: string;
  createdAt: Date;
  endedAt: Date | undefined;
  root: ActionNode | undefined;
  /** Per group of the whole run: how many children are in each state. */
  groups: GroupSummary[];
  actions: number;
  /** The run this one recovers (`recover`), if it is a recovery. */
  recoveredFrom?: string;
  /** The recoveries started from this run, oldest first. */
  recoveries?: string[];
}

/** Counts a child in its group's summary (children without a group count under "(no group)"). */
export function countInGroup(groups: Map<string, GroupSummary>, n: ActionNode): void {
  const key = n.group || "(no group)";
  let g = groups.get(key);
  if (!g) groups.set(key, (g = { group: key, total: 0, byStatus: {} }));
  g.total++;
  g.byStatus[n.status] = (g.byStatus[n.status] ?? 0) + 1;
}
