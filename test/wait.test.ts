import { test } from "node:test";
import assert from "node:assert/strict";
import { WaitTracker, waitCalls } from "../sdk/core/wait.ts";
import type { Wait } from "../sdk/core/wait.ts";

const c = (id: string): Wait => ({ kind: "call", id });
const all = (...of: Wait[]): Wait => ({ kind: "all", of });
const allSettled = (...of: Wait[]): Wait => ({ kind: "allSettled", of });
const any = (...of: Wait[]): Wait => ({ kind: "any", of });
const race = (...of: Wait[]): Wait => ({ kind: "race", of });
const K = (ok: boolean): Wait => ({ kind: "const", ok });
const opaque: Wait = { kind: "opaque" };
const stream = (ids: string[], from: number, batch: number, failFast = false): Wait => ({
  kind: "stream",
  ids,
  from,
  batch,
  failFast,
});

/** One settlement and what `settle` must return for it ("ok"/"err" = the child's outcome). */
type Step = [id: string, outcome: "ok" | "err", satisfies: boolean];

interface Case {
  name: string;
  roots: Wait[];
  /** Satisfied before any settlement. */
  initially?: boolean;
  steps: Step[];
}

// prettier-ignore
const cases: Case[] = [
  // all
  { name: "all: satisfied at the last child", roots: [all(c("a"), c("b"), c("c"))], steps: [["b", "ok", false], ["a", "ok", false], ["c", "ok", true]] },
  { name: "all: satisfied at the first failure", roots: [all(c("a"), c("b"), c("c"))], steps: [["a", "ok", false], ["b", "err", true], ["c", "ok", false]] },
  { name: "all: a failure first satisfies at once", roots: [all(c("a"), c("b"))], steps: [["b", "err", true], ["a", "err", false]] },
  // allSettled
  { name: "allSettled: failures do not satisfy early", roots: [allSettled(c("a"), c("b"), c("c"))], steps: [["a", "err", false], ["b", "err", false], ["c", "ok", true]] },
  // any
  { name: "any: the first success satisfies", roots: [any(c("a"), c("b"), c("c"))], steps: [["a", "err", false], ["c", "ok", true], ["b", "ok", false]] },
  { name: "any: all failing satisfies at the last (it rejects)", roots: [any(c("a"), c("b"))], steps: [["a", "err", false], ["b", "err", true]] },
  // race
  { name: "race: the first success satisfies", roots: [race(c("a"), c("b"))], steps: [["b", "ok", true], ["a", "ok", false]] },
  { name: "race: the first failure satisfies", roots: [race(c("a"), c("b"))], steps: [["a", "err", true], ["b", "ok", false]] },
  // stream (a map): in-order prefix from `from`, batches of `batch`
  { name: "stream: a batch of the prefix satisfies", roots: [stream(["a", "b", "c", "d"], 0, 2)], steps: [["b", "ok", false], ["c", "ok", false], ["a", "ok", true]] },
  { name: "stream: out of order, satisfied when the prefix covers the batch", roots: [stream(["a", "b", "c", "d"], 0, 4)], steps: [["d", "ok", false], ["c", "err", false], ["b", "ok", false], ["a", "ok", true]] },
  { name: "stream: items before `from` are not watched", roots: [stream(["a", "b", "c", "d"], 2, 2)], steps: [["a", "ok", false], ["b", "ok", false], ["d", "ok", false], ["c", "ok", true]] },
  { name: "stream: reaching the end satisfies even short of a batch", roots: [stream(["a", "b", "c"], 1, 5)], steps: [["c", "ok", false], ["b", "ok", true]] },
  { name: "stream: failures are items like any other without failFast", roots: [stream(["a", "b", "c"], 0, 2)], steps: [["a", "err", false], ["b", "err", true]] },
  { name: "stream failFast: a failure in the prefix satisfies", roots: [stream(["a", "b", "c", "d"], 0, 4, true)], steps: [["a", "ok", false], ["b", "err", true]] },
  { name: "stream failFast: a failure past a pending item waits for the prefix", roots: [stream(["a", "b", "c", "d"], 0, 4, true)], steps: [["c", "err", false], ["b", "ok", false], ["a", "ok", true]] },
  { name: "stream: from at the end is satisfied at once", roots: [stream(["a", "b"], 2, 1)], initially: true, steps: [] },
  // const and opaque
  { name: "const ok inside all counts as settled", roots: [all(K(true), c("a"))], steps: [["a", "ok", true]] },
  { name: "const err inside all satisfies at once", roots: [all(K(false), c("a"))], initially: true, steps: [["a", "ok", false]] },
  { name: "const err inside any still waits for the rest", roots: [any(K(false), c("a"))], steps: [["a", "err", true]] },
  { name: "const ok inside race satisfies at once", roots: [race(c("a"), K(true))], initially: true, steps: [] },
  { name: "a const root satisfies at once", roots: [K(false)], initially: true, steps: [] },
  { name: "opaque alone never satisfies", roots: [opaque], steps: [["a", "ok", false]] },
  { name: "opaque inside all never satisfies", roots: [all(opaque, c("a"))], steps: [["a", "ok", false]] },
  { name: "opaque inside race: the other member satisfies", roots: [race(opaque, c("a"))], steps: [["a", "ok", true]] },
  { name: "opaque root beside a call root: the call satisfies", roots: [opaque, c("a")], steps: [["a", "err", true]] },
  // several roots: the first satisfied root resumes
  { name: "several roots: any root satisfied resumes", roots: [all(c("a"), c("b")), c("c")], steps: [["a", "ok", false], ["c", "ok", true], ["b", "ok", false]] },
  { name: "several roots: a call shared by two roots", roots: [all(c("a"), c("b")), race(c("b"))], steps: [["b", "ok", true], ["a", "ok", false]] },
  { name: "a call listed twice in one all", roots: [all(c("a"), c("a"))], steps: [["a", "ok", true]] },
  // nesting
  { name: "all of any and race", roots: [all(any(c("a"), c("b")), race(c("c"), c("d")))], steps: [["a", "err", false], ["c", "ok", false], ["b", "ok", true]] },
  { name: "any of a failing all and a call", roots: [any(all(c("a"), c("b")), c("c"))], steps: [["a", "ok", false], ["b", "err", false], ["c", "err", true]] },
  { name: "allSettled of a failing all counts it as settled", roots: [allSettled(all(c("a"), c("b")), c("c"))], steps: [["c", "ok", false], ["a", "err", true], ["b", "ok", false]] },
  { name: "race of an all: its members do not win alone", roots: [race(all(c("a"), c("b")), c("c"))], steps: [["a", "ok", false], ["b", "ok", true], ["c", "ok", false]] },
  { name: "three levels deep", roots: [all(all(all(c("a")), c("b")), c("c"))], steps: [["c", "ok", false], ["a", "ok", false], ["b", "ok", true]] },
  // duplicates and strangers
  { name: "a duplicate settle is ignored", roots: [all(c("a"), c("b"))], steps: [["a", "ok", false], ["a", "ok", false], ["a", "err", false], ["b", "ok", true], ["b", "ok", false]] },
  { name: "a duplicate with a different outcome does not change the first", roots: [any(c("a"), c("b"))], steps: [["a", "err", false], ["a", "ok", false], ["b", "err", true]] },
  { name: "a call the wait does not mention is ignored", roots: [all(c("a"))], steps: [["zz", "ok", false], ["a", "ok", true]] },
  // empty combinators behave as JavaScript's
  { name: "empty all is satisfied (resolves at once)", roots: [all()], initially: true, steps: [] },
  { name: "empty allSettled is satisfied", roots: [allSettled()], initially: true, steps: [] },
  { name: "empty any is satisfied (rejects at once)", roots: [any()], initially: true, steps: [] },
  { name: "empty race never settles", roots: [race()], steps: [["a", "ok", false]] },
  { name: "empty all nested in all waits for the rest", roots: [all(all(), c("a"))], steps: [["a", "ok", true]] },
  { name: "empty all nested in race satisfies at once", roots: [race(c("a"), all())], initially: true, steps: [] },
  { name: "no roots at all never satisfies", roots: [], steps: [["a", "ok", false]] },
];

await test("WaitTracker, given roots and settlements, reports satisfaction exactly once", async (t) => {
  for (const k of cases) {
    await t.test(k.name, () => {
      const tracker = new WaitTracker(k.roots);
      assert.equal(tracker.satisfied, k.initially ?? false, "satisfied before any settlement");
      let trues = 0;
      for (const [i, [id, outcome, satisfies]] of k.steps.entries()) {
        const r = tracker.settle(id, outcome === "ok");
        assert.equal(r, satisfies, `step ${i}: settle(${id}, ${outcome})`);
        if (r) trues++;
      }
      assert.ok(trues <= 1, "reported satisfied more than once");
      const expectEnd = (k.initially ?? false) || k.steps.some((s) => s[2]);
      assert.equal(tracker.satisfied, expectEnd, "satisfied at the end");
    });
  }
});

await test("a gather of N reports satisfied once: at the last child, or at the first failure", async (t) => {
  const N = 10_000;
  const ids = Array.from({ length: N }, (_, i) => `c${i}`);
  await t.test("all successes, settled in a scrambled order", () => {
    const tracker = new WaitTracker([all(...ids.map(c))]);
    // A fixed permutation: i * 7919 mod N visits every index once (7919 is prime, N = 2^4 * 5^4).
    const order = ids.map((_, i) => ids[(i * 7919) % N]!);
    const trueAt = order.map((id) => tracker.settle(id, true)).flatMap((r, i) => (r ? [i] : []));
    assert.deepEqual(trueAt, [N - 1]);
  });
  await t.test("a failure part-way", () => {
    const tracker = new WaitTracker([all(...ids.map(c))]);
    const trueAt = ids.map((id, i) => tracker.settle(id, i !== 4321)).flatMap((r, i) => (r ? [i] : []));
    assert.deepEqual(trueAt, [4321]);
  });
  await t.test("allSettled with failures throughout", () => {
    const tracker = new WaitTracker([allSettled(...ids.map(c))]);
    const trueAt = ids.map((id, i) => tracker.settle(id, i % 3 !== 0)).flatMap((r, i) => (r ? [i] : []));
    assert.deepEqual(trueAt, [N - 1]);
  });
  await t.test("every child delivered twice", () => {
    const tracker = new WaitTracker([all(...ids.map(c))]);
    let trues = 0;
    for (const id of ids) {
      if (tracker.settle(id, true)) trues++;
      if (tracker.settle(id, true)) trues++;
    }
    assert.equal(trues, 1);
  });
  await t.test("a stream of N in batches of N/16", () => {
    const tracker = new WaitTracker([stream(ids, 0, N / 16)]);
    const trueAt = ids.map((id) => tracker.settle(id, true)).flatMap((r, i) => (r ? [i] : []));
    assert.deepEqual(trueAt, [N / 16 - 1]);
  });
});

await test("watched() lists the calls still awaited", () => {
  const tracker = new WaitTracker([all(c("a"), race(c("b"), c("c"))), stream(["x", "y", "z"], 1, 1)]);
  assert.deepEqual(new Set(tracker.watched()), new Set(["a", "b", "c", "y", "z"]));
  tracker.settle("b", true);
  assert.deepEqual(new Set(tracker.watched()), new Set(["a", "c", "y", "z"]));
});

await test("waitCalls lists every call a wait mentions", async (t) => {
  const table: [string, Wait, string[]][] = [
    ["a call", c("a"), ["a"]],
    ["const and opaque mention none", all(K(true), opaque), []],
    [
      "nested combinators, in order",
      all(c("a"), any(c("b"), race(c("c"))), allSettled(c("d"))),
      ["a", "b", "c", "d"],
    ],
    ["a stream from its offset", stream(["a", "b", "c"], 1, 1), ["b", "c"]],
  ];
  for (const [name, w, expected] of table) await t.test(name, () => assert.deepEqual(waitCalls(w), expected));
});
