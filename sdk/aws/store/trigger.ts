/**
 * When may a suspended parent progress? The coordinator cannot hold a WaitTracker per parent (it is
 * stateless, and a 100,000-child tree is too big to reload per batch), so a suspension is reduced
 * to two numbers over the children still unsettled when the replay read its history:
 *
 * - `D`: the fewest further settlements (of any outcome) after which some awaited root *could* be
 *   decided;
 * - `B`: the fewest further successful settlements, with no failure, after which it could be.
 *
 * The coordinator resumes the parent when `ce' = 0 and co' >= B`, or `ce' >= 1 and co' + ce' >= D`,
 * where co'/ce' count completions reported since the snapshot. Both are lower bounds, so a resume
 * is never late (nothing is lost); for a flat `all`, `allSettled`, `race`, a single call and a map
 * stream they are exact, so a gather resumes once. Over-counting (a duplicate completion, or one the
 * replay had already seen) can only resume early: the replay then finds its wait unsatisfied and
 * suspends again with fresh numbers. docs/aws.md has the argument.
 */
import type { CallId, Outcome } from "../../core/history.ts";
import type { Wait } from "../../core/wait.ts";
import { waitCalls } from "../../core/wait.ts";
import { NEVER } from "./table.ts";

export interface Trigger {
  D: number;
  B: number;
}

type Eval = { decided: true } | { decided: false; d: number; b: number };

const cap = (n: number) => Math.min(NEVER, n);

function evalWait(w: Wait, known: ReadonlyMap<CallId, Outcome>): Eval {
  switch (w.kind) {
    case "call":
      return known.has(w.id) ? { decided: true } : { decided: false, d: 1, b: 1 };
    case "const":
      return { decided: true };
    case "opaque":
      return { decided: false, d: NEVER, b: NEVER };
    case "all":
    case "allSettled":
    case "any":
    case "race": {
      const subs = w.of.map((c) => evalWait(c, known));
      const open = subs.filter((s): s is Eval & { decided: false } => !s.decided);
      if (w.of.length === 0)
        return w.kind === "race" ? { decided: false, d: NEVER, b: NEVER } : { decided: true };
      if (open.length === 0) return { decided: true };
      // A decided member decides race at once; for the others it is conservative to assume it
      // did not (the replay would not have suspended on a decided tree).
      if (w.kind === "race" && open.length < subs.length) return { decided: true };
      const minD = Math.min(...open.map((s) => s.d));
      const minB = Math.min(...open.map((s) => s.b));
      const sumD = cap(open.reduce((a, s) => a + s.d, 0));
      const sumB = cap(open.reduce((a, s) => a + s.b, 0));
      switch (w.kind) {
        case "all": // rejects on the first member to decide (if it failed); fulfils when all did
          return { decided: false, d: minD, b: sumB };
        case "allSettled":
          return { decided: false, d: sumD, b: sumB };
        case "any": // fulfils on the first success; rejects when all failed
          return { decided: false, d: minD, b: minB };
        case "race":
          return { decided: false, d: minD, b: minB };
      }
      break;
    }
    case "stream": {
      // Satisfied once the settled prefix from `from` spans `batch` items (or reaches the end), or,
      // failing fast, when that prefix meets a failure.
      const end = Math.min(w.ids.length, w.from + w.batch);
      let next = w.from;
      while (next < end && known.has(w.ids[next]!)) {
        if (w.failFast && !known.get(w.ids[next]!)!.ok) return { decided: true };
        next++;
      }
      if (next >= end) return { decided: true };
      let open = 0;
      for (let i = next; i < end; i++) if (!known.has(w.ids[i]!)) open++;
      return { decided: false, d: w.failFast ? 1 : open, b: open };
    }
    default:
      w satisfies never;
  }
  return { decided: false, d: 1, b: 1 };
}

/**
 * The thresholds of a suspension. Sums assume the members watch disjoint children; when a child
 * appears twice the sums could overshoot, so the trigger falls back to "any settlement" (1, 1).
 */
export function triggerFor(waits: readonly Wait[], known: ReadonlyMap<CallId, Outcome>): Trigger {
  const seen = new Set<CallId>();
  for (const w of waits) {
    for (const id of waitCalls(w)) {
      if (known.has(id)) continue;
      if (seen.has(id)) return { D: 1, B: 1 };
      seen.add(id);
    }
  }
  let D = NEVER;
  let B = NEVER;
  for (const w of waits) {
    const e = evalWait(w, known);
    if (e.decided) return { D: 0, B: 0 };
    D = Math.min(D, e.d);
    B = Math.min(B, e.b);
  }
  return { D: Math.max(1, D), B: Math.max(1, Math.max(D, B)) };
}

/** Whether counts reported since the snapshot may satisfy the suspension. */
export function mayProgress(t: Trigger, ok: number, err: number): boolean {
  if (t.D <= 0) return true;
  if (err === 0) return ok >= t.B;
  return ok + err >= t.D;
}
