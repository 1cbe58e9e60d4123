/**
 * Cancelled calls in a parent's history (`future.cancel()`, a map's completion rules, a `map.aio`
 * loop left early).
 *
 * A cancel is part of the history, so a replay takes the same path: the call's outcome is
 * `CancelledError` from then on, whatever the child did meanwhile (it may have finished before the
 * cancel reached it; its result is not what the body saw). Each replay that cancels something
 * records one engine record among its traces (`cancelled:<r>`: call positions, in the order the
 * history lists calls, as ranges like `0-4,7`, as for observation records in delivery.ts); a call
 * made by the same replay takes the position after the recorded ones. Adapters persist the record
 * with the decision's other traces and stop what the decision's `cancels` name.
 */
import { CancelledError, HistoryError, serializeError } from "../errors.ts";
import { deserialize, serialize } from "../serde.ts";
import { HISTORY_VERSION } from "./history.ts";
import type { CallId, CallRecord, History, Outcome, TraceRecord } from "./history.ts";
import { decodePositions, encodePositions } from "./delivery.ts";

/** Trace-key prefix of cancel records (user trace keys always contain `|`, these never do). */
export const CANCELLED_KEY = "cancelled:";

/** What a cancelled call's future rejects with, and a cancelled map item yields. */
export function cancelledOutcome(task: string): Outcome {
  return {
    ok: false,
    error: serializeError(new CancelledError(`cancelled: task ${task} was cancelled by its parent`)),
  };
}

/** The calls the history's cancel records name. */
export function readCancels(history: History): Set<CallId> {
  // The calls by position, listed only if there is a record to read (a gather's last replay
  // has a million calls and, usually, no cancel).
  let ids: CallId[] | undefined;
  const out = new Set<CallId>();
  for (
    let r = 0, rec = history.traces.get(`${CANCELLED_KEY}0`);
    rec;
    rec = history.traces.get(`${CANCELLED_KEY}${++r}`)
  ) {
    const text = rec.outcome.ok ? deserialize(rec.outcome.value) : undefined;
    if (typeof text !== "string")
      throw new HistoryError(`corrupted history record (cancels ${r}): not a list of positions`);
    ids ??= [...history.calls.keys()];
    for (const p of decodePositions(text)) {
      const id = ids[p];
      if (id === undefined)
        throw new HistoryError(
          `corrupted history record (cancels ${r}): position ${p} is not a call of this action`,
        );
      out.add(id);
    }
  }
  return out;
}

/** The record of this replay's new cancels (if any), numbered after the history's own. */
export function cancelRecord(
  history: History,
  newCalls: readonly CallRecord[],
  cancels: readonly CallId[],
): TraceRecord | undefined {
  if (!cancels.length) return undefined;
  const position = new Map<CallId, number>();
  let i = 0;
  for (const id of history.calls.keys()) position.set(id, i++);
  for (const c of newCalls) if (!position.has(c.id)) position.set(c.id, i++);
  const positions = cancels.map((id) => position.get(id)!).sort((a, b) => a - b);
  let r = 0;
  while (history.traces.has(`${CANCELLED_KEY}${r}`)) r++;
  return {
    v: HISTORY_VERSION,
    key: `${CANCELLED_KEY}${r}`,
    outcome: { ok: true, value: serialize(encodePositions(positions)) },
  };
}
