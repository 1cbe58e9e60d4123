/**
 * A map's completion rules (`minSuccessful`, `toleratedFailures`), as Step Functions' Map and the
 * Lambda durable functions' `completionConfig` have them, decided from the parent's history so that
 * every replay decides alike.
 *
 * - `minSuccessful: m`: once m items succeeded (at most the number of items), the map has what it
 *   needs; `0` ends it at once.
 * - `toleratedFailures: t` (a count, or `"p%"` of the items, rounded down: 10% of 7 items is 0):
 *   once more than t items failed, the map fails with a {@link MapFailedError} giving the counts.
 *
 * The replay that first sees a rule met cancels every item with no outcome yet (recorded, so later
 * replays find the same items cancelled, whatever their children did meanwhile). When both rules
 * are met at once, `minSuccessful` wins: the map got what it asked for.
 */
import { MapFailedError } from "./errors.ts";
import type { Call } from "./core/calls.ts";
import type { ReplayState } from "./core/state.ts";
import { cancelledOutcome } from "./core/cancels.ts";

export interface Rules {
  /** Successes that end the map (Infinity: none). */
  min: number;
  /** Failures tolerated (Infinity: any). */
  tolerated: number;
}

/** The rules for a map of `n` items, or undefined when it has none. */
export function resolveRules(
  o: { minSuccessful?: number | undefined; toleratedFailures?: number | string | undefined },
  n: number,
): Rules | undefined {
  if (o.minSuccessful === undefined && o.toleratedFailures === undefined) return undefined;
  const t = o.toleratedFailures;
  return {
    min: o.minSuccessful === undefined ? Infinity : Math.min(o.minSuccessful, n),
    tolerated:
      t === undefined ? Infinity : typeof t === "number" ? t : Math.floor((n * Number(t.slice(0, -1))) / 100),
  };
}

export type Verdict = { kind: "open" } | { kind: "succeeded" } | { kind: "failed"; error: MapFailedError };

/**
 * The map's verdict from its calls' outcomes; when a rule is met, the items with no outcome are
 * cancelled (in the replay state, and in `calls`, whose outcome becomes CancelledError).
 */
export function decide(st: ReplayState, task: string, calls: Call[], rules: Rules, tasks: string[]): Verdict {
  let ok = 0;
  let err = 0;
  let cancelled = 0;
  for (const c of calls) {
    if (st.cancelled.has(c.id)) cancelled++;
    else if (c.outcome?.ok) ok++;
    else if (c.outcome) err++;
  }
  const succeeded = ok >= rules.min;
  const failed = !succeeded && err > rules.tolerated;
  if (!succeeded && !failed) return { kind: "open" };
  calls.forEach((c, i) => {
    if (c.outcome) return;
    st.cancel(c.id);
    c.outcome = cancelledOutcome(tasks[i]!);
    cancelled++;
  });
  if (succeeded) return { kind: "succeeded" };
  const total = calls.length;
  return {
    kind: "failed",
    error: new MapFailedError(
      `map(${task}) failed: ${err} of ${total} items failed, more than the ${rules.tolerated} tolerated ` +
        `(${ok} succeeded, ${cancelled} cancelled)`,
      { details: { total, succeeded: ok, failed: err, cancelled, tolerated: rules.tolerated } },
    ),
  };
}

/**
 * The quota part of a map's stream wait from item `from` on: the further successes, or failures,
 * after which a rule is met (counting only items from `from`; those before it have settled).
 */
export function quotaFrom(calls: Call[], from: number, rules: Rules): { ok: number; err: number } {
  let ok = 0;
  let err = 0;
  for (let i = 0; i < from; i++) {
    if (calls[i]!.outcome?.ok) ok++;
    else err++;
  }
  const big = Number.MAX_SAFE_INTEGER;
  return {
    ok: rules.min === Infinity ? big : rules.min - ok,
    err: rules.tolerated === Infinity ? big : rules.tolerated + 1 - err,
  };
}
