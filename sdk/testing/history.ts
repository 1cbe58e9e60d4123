/**
 * Histories for tests: an in-memory recorder that persists decisions as an adapter does, outcome
 * builders, and loading a stored history (call records and outcomes as JSON text).
 */
import type { Decision } from "../core/replay.ts";
import type { CallRecord, History, Outcome, TraceRecord } from "../core/history.ts";
import { parseCallRecord, parseOutcome } from "../core/history.ts";
import { serializeError } from "../errors.ts";
import { serialize } from "../serde.ts";

/** A child's successful outcome. */
export const ok = (value: unknown): Outcome => ({ ok: true, value: serialize(value) });

/** A child's failed outcome, after `attempts` attempts. */
export const fail = (error: unknown, attempts?: number): Outcome => {
  const e = serializeError(error);
  if (attempts !== undefined) e.attempts = attempts;
  return { ok: false, error: e };
};

/**
 * An action's history as an adapter would store it.
 * @example
 * const h = new Recorder();
 * h.record(await replayTask(parent, [3], h)); // persist the first decision's calls
 */
export class Recorder implements History {
  readonly calls = new Map<string, CallRecord>();
  readonly outcomes = new Map<string, Outcome>();
  readonly traces = new Map<string, TraceRecord>();
  /**
   * `record` keeps decisions in the order they were made, so their calls are in call order (a
   * replay may match them by position, sdk/core/calls.ts): calls set by hand must keep it too.
   */
  readonly inCallOrder = true;

  /** Persists a decision's new calls and traces. A call dispatched twice is an error. */
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

/**
 * A history as stored: whole call records (`JSON.stringify` of a `CallRecord`, as a `Recorder`
 * keeps them) and outcomes by call id, as JSON text. (The embedded store's call column leaves out
 * what its row has columns for: its records are read with their row, sdk/local/store.ts.)
 */
export interface StoredHistory {
  calls: string[];
  outcomes: Record<string, string>;
}

/**
 * Parses a stored history, validating each record (a corrupted one throws `HistoryError`).
 * @example
 * const h = loadHistory(JSON.parse(readFileSync("fixtures/midway.json", "utf8")));
 * const d = await replayTask(pipeline, [[1, 2, 3]], h);
 */
export function loadHistory(stored: StoredHistory): History {
  const calls = new Map(stored.calls.map((json) => parseCallRecord(json)).map((c) => [c.id, c]));
  const outcomes = new Map(
    Object.entries(stored.outcomes).map(([id, json]) => [id, parseOutcome(`outcome of ${id}`, json)]),
  );
  return { calls, outcomes, traces: new Map() };
}
