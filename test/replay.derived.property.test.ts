/**
 * Property: any graph of promises derived from durable futures (then/catch/finally chains, async
 * functions awaiting them, the four combinators, nested, and child calls made when one settles)
 * takes the same path on every replay as on the first execution, whatever order children finish
 * in and however many finish between two resumes (docs/replay.md, "Delivery order").
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { TaskEnvironment } from "../sdk/task.ts";
import type { Decision } from "../sdk/core/replay.ts";
import { Recorder, arg0, completedValue, fail, ok, replayWith, watch } from "./helpers/drive.ts";

const env = new TaskEnvironment({ name: "derived_property" });

type Kind = "all" | "allSettled" | "race" | "any";
type Node =
  | { k: "then"; of: number }
  | { k: "catch"; of: number }
  | { k: "finally"; of: number }
  | { k: "async"; of: number[] }
  | { k: "comb"; kind: Kind; of: number[] }
  /** A child call made when `of` settles, whose argument depends on what settled before it. */
  | { k: "follow"; of: number };

interface Spec {
  calls: number;
  nodes: Node[];
  /** Child x fails when (x + failSeed) % 3 === 0. */
  failSeed: number;
}

const child = env.task(async function child(x: number) {
  return x * 3;
});

/** The settle log of each replay, in replay order: each must extend the one before it. */
let logs: string[][] = [];

const graph = env.task(async function graph(spec: Spec) {
  const log: string[] = [];
  logs.push(log);
  const nodes: Promise<number>[] = [];
  for (let i = 0; i < spec.calls; i++) nodes.push(child(i) as Promise<number>);
  for (const n of spec.nodes) {
    const of = (j: number): Promise<number> => nodes[j % nodes.length]!;
    let p: Promise<number>;
    switch (n.k) {
      case "then":
        p = of(n.of).then((v) => v + 1);
        break;
      case "catch":
        p = of(n.of).catch(() => -1);
        break;
      case "finally":
        p = of(n.of).finally(() => log.push(`finally ${nodes.length}`));
        break;
      case "async": {
        const members = n.of.map(of); // earlier nodes only (a node awaiting itself never settles)
        p = (async () => {
          let s = 0;
          for (const m of members) s += await m;
          return s;
        })();
        break;
      }
      case "comb": {
        const members = n.of.map(of);
        if (n.kind === "all") p = Promise.all(members).then((vs) => vs.reduce((a, b) => a + b, 0));
        else if (n.kind === "allSettled")
          p = Promise.allSettled(members).then((rs) => rs.filter((r) => r.status === "fulfilled").length);
        else p = Promise[n.kind](members);
        break;
      }
      case "follow":
        p = of(n.of).then(
          () => child(100 + log.length) as Promise<number>,
          () => child(200 + log.length) as Promise<number>,
        );
        break;
    }
    const idx = nodes.length;
    nodes.push(p);
    p.then(
      (v) => log.push(`${idx}=${v}`),
      () => log.push(`${idx}!`),
    );
  }
  await Promise.allSettled(nodes);
  return log;
});

const specs: fc.Arbitrary<Spec> = fc
  .record({ calls: fc.integer({ min: 1, max: 5 }), failSeed: fc.nat({ max: 2 }) })
  .chain(({ calls, failSeed }) => {
    const ref = fc.nat({ max: 30 });
    const node: fc.Arbitrary<Node> = fc.oneof(
      fc.record({ k: fc.constant("then" as const), of: ref }),
      fc.record({ k: fc.constant("catch" as const), of: ref }),
      fc.record({ k: fc.constant("finally" as const), of: ref }),
      fc.record({ k: fc.constant("async" as const), of: fc.array(ref, { minLength: 1, maxLength: 3 }) }),
      fc.record({
        k: fc.constant("comb" as const),
        kind: fc.constantFrom<Kind>("all", "allSettled", "race", "any"),
        of: fc.array(ref, { minLength: 1, maxLength: 4 }),
      }),
      fc.record({ k: fc.constant("follow" as const), of: ref }),
    );
    return fc.record({
      calls: fc.constant(calls),
      failSeed: fc.constant(failSeed),
      nodes: fc.array(node, { minLength: 1, maxLength: 12 }),
    });
  });

interface Schedule {
  /** Which pending child finishes next (an index into the pending ones, modulo their count). */
  picks: number[];
  /** How many more children finish after the wait is satisfied, before the parent resumes. */
  extras: number[];
}

const schedules: fc.Arbitrary<Schedule> = fc.record({
  picks: fc.array(fc.nat(), { maxLength: 60 }),
  extras: fc.array(fc.nat({ max: 3 }), { maxLength: 30 }),
});

async function firstExecution(
  spec: Spec,
  s: Schedule,
): Promise<{ decisions: Decision[]; history: Recorder }> {
  const history = new Recorder(); // throws if a call is dispatched twice
  const decisions: Decision[] = [];
  let pick = 0;
  const finish = (): void => {
    const pending = history.pending();
    const c = pending[(s.picks[pick++] ?? 0) % pending.length]!;
    const x = arg0(c) as number;
    history.outcomes.set(c.id, (x + spec.failSeed) % 3 === 0 ? fail(new RangeError(`bad ${x}`)) : ok(x * 3));
    return tracker.settle(c.id, history.outcomes.get(c.id)!.ok) as unknown as void;
  };
  let tracker!: ReturnType<typeof watch>;
  for (;;) {
    const d = await replayWith(graph.def, [spec], history);
    decisions.push(d);
    history.record(d);
    if (d.kind !== "suspended") return { decisions, history };
    assert.ok(decisions.length < 200, "no result after 200 replays");
    tracker = watch(d.waits, history);
    while (!tracker.satisfied) {
      assert.ok(history.pending().length > 0, `stuck on ${JSON.stringify(d.waits)}`);
      finish();
    }
    for (let e = s.extras[decisions.length] ?? 0; e > 0 && history.pending().length > 0; e--) finish();
  }
}

await test("any graph of promises derived from child futures replays the path of its first execution", async () => {
  await fc.assert(
    fc.asyncProperty(specs, schedules, async (spec, s) => {
      logs = [];
      const { decisions, history } = await firstExecution(spec, s);
      const final = decisions.at(-1)!;
      const value = completedValue(final) as string[];
      // Each replay took the path of the one before it (and then went further).
      for (let k = 1; k < logs.length; k++) {
        const before = logs[k - 1]!;
        assert.deepEqual(
          logs[k]!.slice(0, before.length),
          before,
          `replay ${k} left the path of replay ${k - 1}`,
        );
      }
      // A replay of the whole history issues the same calls, none new, and ends the same way.
      const again = await replayWith(graph.def, [spec], history);
      assert.deepEqual(again.calls, []);
      assert.deepEqual(completedValue(again), value);
    }),
    { numRuns: 300, timeout: 5000 },
  );
});
