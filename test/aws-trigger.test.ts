/**
 * The coordinator's resume rule (sdk/aws/store/trigger.ts), table-driven: given a suspension's
 * waits and what its replay already knew, expect thresholds that resume exactly when the wait is
 * satisfied for flat trees, never later than a WaitTracker would for any tree, and a property
 * check over random completion orders with duplicates: the counter rule is never late. Then the
 * map windows' layout (sdk/aws/store/windows.ts): parts, limits, first items.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { CallRecord, Outcome } from "../sdk/core/history.ts";
import { WaitTracker } from "../sdk/core/wait.ts";
import type { Wait } from "../sdk/core/wait.ts";
import { mayProgress, triggerFor } from "../sdk/aws/store/trigger.ts";
import {
  SLOTS_PER_PART,
  fitsHosted,
  isAssigned,
  isHosted,
  partId,
  partOf,
  partsFor,
  planWindows,
} from "../sdk/aws/store/windows.ts";

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
    // Runs whose wait was satisfied (the only ones that check anything): about 300 of 500, at
    // least 260 over 200 seeds tried.
    let satisfied = 0;
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
              satisfied++;
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
    assert.ok(satisfied >= 100, `only ${satisfied} of 500 runs satisfied their wait`);
  });
});

describe("map window parts (state/windows.ts)", () => {
  const calls = (n: number, limit: number, before = 0): CallRecord[] => [
    ...Array.from({ length: before }, (_, i) => rec(`x${i}`)),
    ...Array.from({ length: n }, (_, i) => rec(`c${i}`, { key: "K", index: i, limit })),
  ];
  const rec = (id: string, window?: CallRecord["window"]): CallRecord => ({
    v: 1,
    id,
    parent: "p",
    task: "t.t",
    group: "",
    digest: id,
    n: 0,
    args: "[]",
    ...(window ? { window } : {}),
  });

  it("a map whose limit covers it has no window", () => {
    assert.deepEqual(planWindows(calls(5, 5), 1), []);
    assert.deepEqual(planWindows(calls(5, 9), 1), []);
  });

  it("one part up to 64 slots: the first `limit` positions, offset past earlier calls", () => {
    const [w, ...rest] = planWindows(calls(100, 50, 3), 2);
    assert.equal(rest.length, 0);
    assert.deepEqual(
      { name: w!.name, parts: w!.parts, limit: w!.limit, offset: w!.offset, upto: w!.upto, epoch: w!.epoch },
      { name: "K#0", parts: 1, limit: 50, offset: 3, upto: 50, epoch: 2 },
    );
    assert.deepEqual(
      w!.slots,
      Array.from({ length: 50 }, (_, q) => q),
    );
    assert.ok(w!.pend.every((p) => p === -1));
  });

  it("with `host`, the first one-part window that fits is hosted (`@`), and only that one", () => {
    const second = Array.from({ length: 20 }, (_, i) => rec(`d${i}`, { key: "L", index: i, limit: 5 }));
    const names = planWindows([...calls(100, 10), ...second], 1, true).map((w) => w.name);
    assert.deepEqual(names, ["@K#0", "L#0"]);
    assert.deepEqual(
      planWindows(calls(100, 10), 1, false).map((w) => w.name),
      ["K#0"],
    );
    // Two parts, or one part too wide to fit beside the counter: not hosted.
    assert.ok(planWindows(calls(1000, 65), 1, true).every((w) => !isHosted(w.name)));
    assert.ok(!fitsHosted(64, 100_000, "K") && fitsHosted(50, 1000, "K"));
    assert.ok(planWindows(calls(100_000, 64), 1, true).every((w) => !isHosted(w.name)));
  });

  it("a wider window splits into parts whose limits add up to it; item i is in part i % parts", () => {
    for (const [n, limit] of [
      [1000, 65],
      [500, 200],
      [100_000, 10_000],
    ] as const) {
      const parts = planWindows(calls(n, limit), 1);
      assert.equal(parts.length, partsFor(limit));
      assert.equal(
        parts.reduce((s, p) => s + p.limit, 0),
        limit,
      );
      assert.ok(parts.every((p) => p.limit <= SLOTS_PER_PART && p.slots.length === p.limit));
      // The items let out first are each part's first positions: `limit` distinct items, none twice.
      const first = parts.flatMap((p) => p.slots.map((q) => q * p.parts + p.part));
      assert.equal(new Set(first).size, limit);
      for (let i = 0; i < 200; i++) {
        const p = parts[i % parts.length]!;
        assert.equal(partOf("K", i, limit), partId(p));
        assert.equal(isAssigned(p, i), first.includes(i));
      }
    }
  });
});
