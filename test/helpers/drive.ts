/**
 * A tiny adapter for tests: persists decisions into an in-memory history, settles children through a
 * WaitTracker and replays the parent only when the tracker says it may progress, as the embedded
 * engine and the Lambda coordinator do.
 */
import assert from "node:assert/strict";
import { replay } from "../../sdk/core/replay.ts";
import type { Decision } from "../../sdk/core/replay.ts";
import type { CallRecord, History, Outcome, TraceRecord } from "../../sdk/core/history.ts";
import { WaitTracker } from "../../sdk/core/wait.ts";
import type { Wait } from "../../sdk/core/wait.ts";
import { serializeError } from "../../sdk/errors.ts";
import type { SerializedError } from "../../sdk/errors.ts";
import { deserialize, serialize } from "../../sdk/serde.ts";
import type { TaskDef } from "../../sdk/core/task-def.ts";

export const ok = (value: unknown): Outcome => ({ ok: true, value: serialize(value) });
export const fail = (error: unknown, attempts?: number): Outcome => {
  const e = serializeError(error);
  if (attempts !== undefined) e.attempts = attempts;
  return { ok: false, error: e };
};

/** An action's history as an adapter would store it. */
export class Recorder implements History {
  readonly calls = new Map<string, CallRecord>();
  readonly outcomes = new Map<string, Outcome>();
  readonly traces = new Map<string, TraceRecord>();

  /** Persists a decision's new calls and traces. A call dispatched twice is a test failure. */
  record(d: Decision): void {
    for (const c of d.calls) {
      if (this.calls.has(c.id)) throw new Error(`call ${c.id} (${c.task}${c.args}) was dispatched twice`);
      this.calls.set(c.id, c);
    }
    for (const t of d.traces) {
      if (this.traces.has(t.key)) throw new Error(`trace ${t.key} was recorded twice`);
      this.traces.set(t.key, t);
    }
  }

  /** Dispatched calls with no outcome yet, in dispatch order. */
  pending(): CallRecord[] {
    return [...this.calls.values()].filter((c) => !this.outcomes.has(c.id));
  }
}

/** The first argument of a recorded call (most test children take one). */
export const arg0 = (c: CallRecord): any => (JSON.parse(c.args) as unknown[])[0];

export function replayWith(
  def: TaskDef,
  args: unknown[],
  history: History,
  actionId = "root",
): Promise<Decision> {
  return replay({ task: def, args: serialize(args), actionId, history });
}

/**
 * A tracker for a suspension, as adapters build one (see `watch` in sdk/local/engine.ts): from the
 * decision's waits, then told of the outcomes already recorded for the calls it watches. A stream
 * wait lists items after its first pending one that may have settled already.
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
  final: Decision;
  decisions: Decision[];
  history: Recorder;
}

/**
 * Runs a parent to completion. After each suspension, pending children settle one at a time (in
 * dispatch order, or as `order` arranges them) with `outcomeOf` until the decision's waits are
 * satisfied; then the parent is replayed.
 */
export async function drive(
  def: TaskDef,
  args: unknown[],
  outcomeOf: (call: CallRecord) => Outcome,
  opts: { order?: (pending: CallRecord[]) => CallRecord[]; maxReplays?: number; history?: Recorder } = {},
): Promise<Driven> {
  const history = opts.history ?? new Recorder();
  const decisions: Decision[] = [];
  for (;;) {
    const d = await replayWith(def, args, history);
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

type Kind<K extends Decision["kind"]> = Extract<Decision, { kind: K }>;

function expectKind<K extends Decision["kind"]>(d: Decision, kind: K): Kind<K> {
  const shown =
    d.kind === "failed" ? `failed with ${d.error.name}: ${d.error.message}` : JSON.stringify(d).slice(0, 500);
  assert.equal(d.kind, kind, `expected a ${kind} decision, got ${shown}`);
  return d as Kind<K>;
}

/** The completed decision's value, deserialised. */
export const completedValue = (d: Decision): unknown => deserialize(expectKind(d, "completed").value);
export const failedError = (d: Decision): SerializedError => expectKind(d, "failed").error;
export const suspended = (d: Decision): Kind<"suspended"> => expectKind(d, "suspended");
