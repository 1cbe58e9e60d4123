/**
 * Replaying a task body in a test, with no engine: the body runs against a history, and a parent
 * is driven to its end by settling its children with outcomes the test chooses, as the embedded
 * engine and the Lambda coordinator would (replay only once a suspension's waits are satisfied).
 */
import { replay } from "../core/replay.ts";
import type { Decision } from "../core/replay.ts";
import type { CallRecord, History, Outcome } from "../core/history.ts";
import type { TaskDef } from "../core/task-def.ts";
import { WaitTracker } from "../core/wait.ts";
import type { Wait } from "../core/wait.ts";
import { serialize } from "../serde.ts";
import { Recorder } from "./history.ts";

/** A task handle (`env.task(...)`) or its definition. */
export type TaskLike = { readonly def: TaskDef } | TaskDef;

const defOf = (t: TaskLike): TaskDef => ("def" in t ? t.def : t);

/**
 * Replays `task` once against `history`: its decision (calls to dispatch, a result, a failure or
 * a suspension).
 * @example
 * const d = await replayTask(gather, [3], new Recorder());
 * assert.equal(d.kind, "suspended");
 */
export function replayTask(
  task: TaskLike,
  args: unknown[],
  history: History,
  actionId = "root",
): Promise<Decision> {
  return replay({ task: defOf(task), args: serialize(args), actionId, history });
}

/**
 * A tracker for a suspension, as adapters build one: from the decision's waits, then told of the
 * outcomes already recorded for the calls it watches. A stream wait lists items after its first
 * pending one that may have settled already.
 */
export function watch(waits: Wait[], history: History): WaitTracker {
  const t = new WaitTracker(waits);
  for (const id of [...t.watched()]) {
    const o = history.outcomes.get(id);
    if (o && t.settle(id, o.ok)) break;
  }
  return t;
}

export interface Driven {
  /** The last decision: completed or failed. */
  final: Decision;
  decisions: Decision[];
  history: Recorder;
}

/**
 * Runs a parent to completion. After each suspension, pending children settle one at a time (in
 * dispatch order, or as `order` arranges them) with `outcomeOf` until the decision's waits are
 * satisfied; then the parent is replayed.
 * @example
 * const { final, decisions } = await drive(pipeline, [["a", "b"]], (c) => ok(`done ${c.args}`));
 * assert.equal(final.kind, "completed");
 * assert.equal(decisions.length, 2); // one suspension for the whole gather, then the result
 */
export async function drive(
  task: TaskLike,
  args: unknown[],
  outcomeOf: (call: CallRecord) => Outcome,
  opts: { order?: (pending: CallRecord[]) => CallRecord[]; maxReplays?: number; history?: Recorder } = {},
): Promise<Driven> {
  const history = opts.history ?? new Recorder();
  const decisions: Decision[] = [];
  for (;;) {
    const d = await replayTask(task, args, history);
    decisions.push(d);
    history.record(d);
    if (d.kind !== "suspended") return { final: d, decisions, history };
    if (decisions.length >= (opts.maxReplays ?? 1000))
      throw new Error(`no result after ${decisions.length} replays`);
    const tracker = watch(d.waits, history);
    const pending = opts.order ? opts.order(history.pending()) : history.pending();
    for (const c of pending) {
      if (tracker.satisfied) break;
      const o = outcomeOf(c);
      history.outcomes.set(c.id, o);
      tracker.settle(c.id, o.ok);
    }
    if (!tracker.satisfied) {
      throw new Error(
        `stuck: every pending child settled but the waits are not satisfied: ${JSON.stringify(d.waits)}`,
      );
    }
  }
}
