/**
 * Repairing a failed fan-out with `aloft recover` (docs/recover.md): 20 records are scored and
 * record 13 trips a bug. Once the bug is fixed (here `BUG_FIXED=1` stands for deploying the fix),
 * a recovery runs only what did not succeed: the 19 scored records are reused from the failed run.
 *
 *   npx aloft run examples/repair.ts scoreAll 20     # fails: 1 of 20 records failed
 *   BUG_FIXED=1 npx aloft recover <run>              # a new run: 19 children reused, 1 runs
 *   npx aloft status <new run>                       # "recovered from <run>", "19 reused"
 */
import { TaskEnvironment } from "aloft";

const env = new TaskEnvironment({ name: "repair" });

export const score = env.task(async function score(record: number) {
  await new Promise((r) => setTimeout(r, 50)); // simulating work
  if (record === 13 && process.env["BUG_FIXED"] !== "1")
    throw new Error(`record ${record}: its date "13/13/2026" does not parse`);
  return record * 2;
});

export const scoreAll = env.task(async function scoreAll(n: number) {
  // allSettled: every record is scored even when one fails, so the recovery has them all to reuse.
  const results = await Promise.allSettled(Array.from({ length: n }, (_, i) => score(i)));
  const failed = results.flatMap((r, i) => (r.status === "rejected" ? [i] : []));
  if (failed.length) throw new Error(`${failed.length} of ${n} records failed: ${failed.join(", ")}`);
  return results.reduce((t, r) => t + (r.status === "fulfilled" ? r.value : 0), 0);
});
