/**
 * The coordinator's resume rule (lambdas/state/trigger.ts), table-driven: given a suspension's
 * waits and what its replay already knew, expect thresholds that resume exactly when the wait is
 * satisfied for flat trees, never later than a WaitTracker would for any tree, and a property
 * check over random completion orders with duplicates: the counter rule is never late.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { Outcome } from "../sdk/core/history.ts";
import { WaitTracker } from "../sdk/core/wait.ts";
import type { Wait } from "../sdk/core/wait.ts";
import { mayProgress, triggerFor } from "../lambdas/state/trigger.ts";

const call = (id: string): Wait => ({ kind: "call", id });
const ids = (n: number, p = "c") => Array.from({ length: n }, (_, i) => `${p}${i}`);
const ok: Outcome = { ok: true, value: "1" };

describe("resume thresholds", () => {
  const table: [string, Wait[], Map<string, Outcome>, { D: number; B: number }][] = [
    ["gather of 5", [{ kind: "all", of: ids(5).map(call) }], new Map(), { D: 1, B: 5 }],
    [
      "gather of 5, two known",
      [{ kind: "all", of: ids(5).map(call) }],
      new Map([
        ["c0", ok],
        ["c1", ok],
      ]),
      { D: 1, B: 3 },
    ],
    ["allSettled of 4", [{ kind: "allSettled", of: ids(4).map(call) }], new Map(), { D: 4, B: 4 }],
    ["race of 3", [{ kind: "race", of: ids(3).map(call) }], new Map(), { D: 1, B: 1 }],
    ["one sync call", [call("a")], new Map(), { D: 1, B: 1 }],
    [
      "stream batch 4 of 10",
      [{ kind: "stream", ids: ids(10), from: 0, batch: 4, failFast: false }],
      new Map(),
      { D: 4, B: 4 },
    ],
    [
      "stream failFast",
      [{ kind: "stream", ids: ids(10), from: 2, batch: 8, failFast: true }],
      new Map(),
      { D: 1, B: 8 },
    ],
    [
      "a child awaited twice falls back to any settlement",
      [{ kind: "all", of: [call("x"), call("x"), call("y")] }],
      new Map(),
      { D: 1, B: 1 },
    ],
    [
      "all of alls",
      [
        {
          kind: "all",
          of: [
            { kind: "all", of: ids(2, "a").map(call) },
            { kind: "all", of: ids(3, "b").map(call) },
          ],
        },
      ],
      new Map(),
      { D: 1, B: 5 },
    ],
  ];
  for (const [name, waits, known, expect] of table) {
    it(`given ${name}, expect D=${expect.D} B=${expect.B}`, () =>
      assert.deepEqual(triggerFor(waits, known), expect));
  }

  it("a gather resumes once: on the last success, or on the first failure", () => {
    const t = triggerFor([{ kind: "all", of: ids(100).map(call) }], new Map());
    assert.equal(mayProgress(t, 99, 0), false);
    assert.equal(mayProgress(t, 100, 0), true);
    assert.equal(mayProgress(t, 3, 1), true);
  });

  it("never later than the WaitTracker, for random trees, orders, outcomes and duplicates", () => {
    const leaf = fc.integer({ min: 0, max: 7 }).map((i) => call(`k${i}`));
    const tree = fc.letrec<{ w: Wait }>((tie) => ({
      w: fc.oneof(
        { depthSize: "small", withCrossShrink: true },
        leaf,
        fc.record({
          kind: fc.constantFrom("all" as const, "allSettled" as const, "race" as const, "any" as const),
          of: fc.array(tie("w"), { minLength: 1, maxLength: 4 }),
        }),
      ),
    })).w;
    fc.assert(
      fc.property(
        fc.array(tree, { minLength: 1, maxLength: 3 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 7 }), fc.boolean(), fc.boolean()), { maxLength: 24 }),
        (waits, events) => {
          const t = triggerFor(waits, new Map());
          const tracker = new WaitTracker(waits);
          let o = 0;
          let e = 0;
          for (const [k, good, dup] of events) {
            const id = `k${k}`;
            tracker.settle(id, good);
            // Counting is not deduplicated: a duplicate delivery counts again.
            for (let i = 0; i < (dup ? 2 : 1); i++)
              if (good) o++;
              else e++;
            if (tracker.satisfied) {
              assert.ok(
                mayProgress(t, o, e),
                `wait satisfied but thresholds D=${t.D} B=${t.B} not met by ok=${o} err=${e}`,
              );
              return;
            }
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
