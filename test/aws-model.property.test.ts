/**
 * The schedule-exploring property test (issue 8): random task trees (gathers, nested parents,
 * windowed and streaming maps, races, failures with retries, timeouts) run on the real handlers over
 * DynamoDB Local, through the simulated SQS of test/helpers/bus.ts on a fake clock (visibility
 * timeout 300 s), under random schedules: which queue and messages go next, duplicates (two
 * invocations at once — both faulted alike, or one dying while the other acknowledges — or a copy
 * with a new id), reordering, a crash before or after the k-th AWS
 * call of an invocation (a send loop cut after any request), redelivery after the visibility
 * timeout, another delivery or a cancel in the middle of an invocation, a cancel between deliveries.
 *
 * Invariants (helpers/model-run.ts): the run ends within the liveness bound — 120 s of simulated
 * time, plus 360 s (a visibility timeout and 60 s) per faulted step, plus 1,200 s when the tree
 * has a parent with a 600 s deadline; each outcome is written once; the result is what the
 * embedded engine returns (fixtures/model-tasks.ts `expected`, itself checked against the engine
 * on random trees below); no map has more than its `concurrency` children in flight at any send;
 * no action is left open.
 *
 * ALOFT_MODEL_RUNS (default 300) schedules in three lanes, the same ones every run (fixed seeds);
 * `npm run soak:model` draws 3,000 new ones each time (ALOFT_MODEL_RANDOM=1).
 * Every fault kind is on. The schedules that found bugs (a lost retry, partial dispatch, a cancel
 * or a parent's deadline before its first commit, a resume dying between recording its calls and
 * its commit, an outcome or a retry lost to a twin delivery, a dispatch's last slice dying between
 * its mark and its resume check) run first, before the random ones, as regression cases (helpers/model-arbs.ts
 * `examples`); a newly found one can be left out meanwhile by listing it in KNOWN_BROKEN.
 * ALOFT_MODEL_SEED and ALOFT_MODEL_PATH replay a counterexample (one lane); ALOFT_MODEL_TRACE=1
 * prints every delivery and send. A violation carries its schedule's trace; since which of two twin
 * deliveries writes first is a race, a seed may not replay one: test/helpers/one-schedule.ts runs a
 * printed counterexample alone.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { init, run, shutdown } from "../sdk/run.ts";
import * as m from "./fixtures/model-tasks.ts";
import type { Spec } from "./fixtures/model-tasks.ts";
import { Bus, currentBus } from "./helpers/bus.ts";
import { describeStep, enabledFaults, examples, scheduleArb, treeArb } from "./helpers/model-arbs.ts";
import type { Step } from "./helpers/model-arbs.ts";
import { runSchedule } from "./helpers/model-run.ts";
import { RECOVERABLE } from "../sdk/core/recover.ts";

const RUNS = Number(process.env["ALOFT_MODEL_RUNS"] ?? 300);
/** Recoveries explored (each after a source run cancelled part-way). */
const RECOVER_RUNS = Math.max(1, Math.round(RUNS / 10));
const RANDOM = process.env["ALOFT_MODEL_RANDOM"] === "1";
const FIXED_SEED = 20_261_205;
const LANES = 3;
const faults = enabledFaults();
let nonce = 0;
const key = () => `k${process.pid}-${nonce++}`;

/** Explores schedules on one lane of the bus; returns fast-check's details and what it saw. */
async function explore(bus: Bus, params: fc.Parameters<[Spec, Step[]]>) {
  const seen = { explored: 0, deliveries: 0, worst: 0 };
  const details = await fc.check(
    fc.asyncProperty(treeArb(faults), scheduleArb(faults), async (spec, steps) => {
      const o = await runSchedule(bus, spec, steps, key(), faults.spare);
      seen.explored++;
      seen.deliveries += o.deliveries;
      if (o.tookMs !== undefined) seen.worst = Math.max(seen.worst, o.tookMs / o.boundMs);
      if (o.violations.length)
        throw new Error(
          `${o.violations.join("; ")}\n  tree: ${JSON.stringify(spec)}\n  schedule:\n` +
            steps.map((s, i) => `    ${i + 1}. ${describeStep(s)}`).join("\n"),
        );
    }),
    params,
  );
  return { ...seen, details };
}

describe("the AWS handlers under random schedules", { timeout: 3_600_000 }, () => {
  it("the expected results are the embedded engine's", async () => {
    await init({ store: ":memory:", workers: 0 });
    try {
      let checked = 0;
      await fc.assert(
        fc.asyncProperty(treeArb(enabledFaults("all")), async (spec) => {
          const r = await run(spec.k === "timed" ? m.timed : m.node, { s: spec, key: key() });
          let got: unknown;
          try {
            got = await r.result();
          } catch (e) {
            got = `E:${(e as Error).name}`;
          }
          checked++;
          assert.ok(
            m.matches(got, m.expected(spec)),
            `engine ${JSON.stringify(got)} for ${JSON.stringify(spec)}`,
          );
        }),
        { numRuns: 25 },
      );
      assert.equal(checked, 25);
    } finally {
      // A race's losers may still be sleeping (slow bodies): let them end before the store closes.
      await new Promise((r) => setTimeout(r, 300));
      await shutdown();
    }
  });

  describe("on the bus", () => {
    let bus: Bus;
    before(async () => {
      bus = await Bus.start({ visibilityTimeoutSeconds: 300 });
      m.clock.tick = (ms) => currentBus()!.tick(ms);
    });
    after(async () => {
      delete m.clock.tick;
      await bus.stop();
    });

    // Found by random exploration on 2026-12-05 (seed 1225686155; there since before that day): a
    // timed parent's duplicate exec, delivered after its deadline check ended its counter and
    // crashed before writing TIMED_OUT, replayed to an outcome of its own — CancelledError from the
    // child the same check had cancelled. Fixed by recording who ended a counter (CounterItem.eb).
    it("a duplicated, crashed start of a timed parent ends as its tree says", async () => {
      // The schedules that seed and path drew (the path no longer replays once the arbitrary
      // draws another fault kind, so they are kept as values).
      const found = [
        '[{"k":"timed","kid":{"k":"wide","n":11}},[{"q":0,"at":0,"n":1,"dup":"same","crash":{"k":3,"at":"before","on":"write"},"wait":false,"cancel":true,"meanwhile":null},{"q":0,"at":0,"n":1,"dup":"none","crash":null,"wait":false,"cancel":false,"meanwhile":{"k":1,"what":"deliver","q":0,"at":0,"n":1}},{"q":0,"at":0,"n":1,"dup":"none","crash":null,"wait":true,"cancel":false,"meanwhile":null},{"q":0,"at":0,"n":1,"dup":"none","crash":{"k":1,"at":"before","on":"send"},"wait":true,"cancel":false,"meanwhile":null}]]',
        '[{"k":"timed","kid":{"k":"wide","n":11}},[{"q":0,"at":0,"n":1,"dup":"same","crash":{"k":3,"at":"before","on":"write"},"wait":false,"cancel":true,"meanwhile":null},{"q":0,"at":0,"n":1,"dup":"none","crash":null,"wait":false,"cancel":false,"meanwhile":{"k":1,"what":"deliver","q":0,"at":0,"n":1}},{"q":0,"at":0,"n":1,"dup":"none","crash":null,"wait":true,"cancel":false,"meanwhile":null},{"q":0,"at":0,"n":1,"dup":"none","crash":{"k":1,"at":"after","on":"send"},"wait":false,"cancel":false,"meanwhile":null}]]',
        '[{"k":"timed","kid":{"k":"wide","n":11}},[{"q":0,"at":0,"n":1,"dup":"same","crash":{"k":3,"at":"before","on":"write"},"wait":false,"cancel":true,"meanwhile":null},{"q":0,"at":0,"n":1,"dup":"none","crash":null,"wait":false,"cancel":false,"meanwhile":{"k":1,"what":"deliver","q":0,"at":0,"n":1}},{"q":0,"at":0,"n":1,"dup":"none","crash":null,"wait":true,"cancel":false,"meanwhile":null},{"q":0,"at":0,"n":1,"dup":"none","crash":{"k":1,"at":"after","on":"send"},"wait":true,"cancel":true,"meanwhile":null}]]',
      ].map((c) => JSON.parse(c) as [Spec, Step[]]);
      const r = await explore(bus, { numRuns: found.length, examples: found, seed: FIXED_SEED });
      if (r.details.failed) assert.fail(String(r.details.errorInstance));
    });

    // Recover (issue 18): a run cancelled part-way is recovered under a random schedule; the
    // recovery reuses what the source finished and must end with the tree's result, within the
    // bound, every outcome written once — the same invariants as any run.
    it(`a recovery of a cancelled run ends right, within the bound, under ${RECOVER_RUNS} random schedules`, async () => {
      let recovered = 0;
      const details = await fc.check(
        fc.asyncProperty(
          treeArb(faults),
          fc.integer({ min: 1, max: 8 }),
          scheduleArb(faults),
          async (spec, cancelAt, steps) => {
            const k = key();
            // The source: fair deliveries of whole batches, the run cancelled before the cancelAt-th.
            const fair: Step[] = Array.from({ length: cancelAt + 1 }, (_, i) => ({
              q: 0,
              at: 0,
              n: 10,
              dup: "none",
              crash: null,
              wait: false,
              cancel: i === cancelAt,
              meanwhile: null,
            }));
            const src = await runSchedule(bus, spec, fair, k, faults.spare);
            if (src.violations.length) throw new Error(`source: ${src.violations.join("; ")}`);
            const ended = await bus.within(() => bus.client.getRun(src.runId));
            if (!ended || !RECOVERABLE.has(ended.status)) return; // it finished before the cancel
            recovered++;
            const o = await runSchedule(bus, spec, steps, k, faults.spare, () =>
              bus.client.recover(src.runId),
            );
            if (o.violations.length)
              throw new Error(
                `${o.violations.join("; ")}\n  tree: ${JSON.stringify(spec)}\n  source cancelled before delivery ${cancelAt}\n  schedule:\n` +
                  steps.map((s, i) => `    ${i + 1}. ${describeStep(s)}`).join("\n"),
              );
          },
        ),
        { numRuns: RECOVER_RUNS, seed: RANDOM ? Date.now() : FIXED_SEED + 99 },
      );
      console.log(`aws model: ${recovered} of ${RECOVER_RUNS} sources were cancelled part-way and recovered`);
      if (details.failed)
        assert.fail(`${fc.defaultReportMessage(details)}\n${String(details.errorInstance)}`);
      assert.ok(recovered > 0, "no source ended before its cancel: nothing was recovered");
    });

    it(`every run ends right, within the bound, under ${RUNS} random schedules`, async () => {
      const t0 = Date.now();
      const seed = process.env["ALOFT_MODEL_SEED"];
      const path = process.env["ALOFT_MODEL_PATH"];
      // Lanes explore side by side (DynamoDB Local is latency-bound); a seed and path replay one.
      const lanes = seed === undefined ? LANES : 1;
      const tried = examples(faults);
      const results = await Promise.all(
        Array.from({ length: lanes }, (_, i) =>
          explore(i === 0 ? bus : bus.lane(), {
            // fast-check counts the examples among numRuns.
            numRuns: Math.ceil(RUNS / lanes) + (i === 0 && seed === undefined ? tried.length : 0),
            ...(i === 0 && seed === undefined ? { examples: tried } : {}),
            // `npm test` explores the same schedules every run (CI stays reproducible); the soak
            // (ALOFT_MODEL_RANDOM=1, `npm run soak:model`) draws new ones each time.
            seed: seed !== undefined ? Number(seed) : RANDOM ? Date.now() ^ (i * 0x9e3779b1) : FIXED_SEED + i,
            ...(path === undefined ? {} : { path }),
          }),
        ),
      );
      const explored = results.reduce((n, r) => n + r.explored, 0);
      const deliveries = results.reduce((n, r) => n + r.deliveries, 0);
      const worst = Math.max(...results.map((r) => r.worst));
      console.log(
        `aws model: ${explored} schedules explored in ${lanes} lanes, ${deliveries} deliveries, ` +
          `${((Date.now() - t0) / 1000).toFixed(1)} s; slowest run took ${(worst * 100).toFixed(0)}% of its liveness bound; ` +
          `faults on: ${[...faults.kinds].join(", ")}${faults.off.length ? `; known broken, off: ${faults.off.join(", ")}` : ""}`,
      );
      const failed = results.filter((r) => r.details.failed);
      if (failed.length)
        assert.fail(
          failed
            .map((r) => `${fc.defaultReportMessage(r.details)}\n${String(r.details.errorInstance)}`)
            .join("\n\n"),
        );
    });
  });
});
