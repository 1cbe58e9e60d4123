/**
 * Property tests of the replay engine under the conditions the adapters face: children finishing in
 * any order, SQS delivering a result more than once, and processes dying between recording a result
 * and acting on it, or between replaying a parent and persisting what the replay decided.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { TaskEnvironment } from "../sdk/task.ts";
import type { Task } from "../sdk/task.ts";
import { map } from "../sdk/map.ts";
import type { TaskError } from "../sdk/errors.ts";
import type { Decision } from "../sdk/core/replay.ts";
import type { CallRecord, Outcome } from "../sdk/core/history.ts";
import type { WaitTracker } from "../sdk/core/wait.ts";
import { Recorder, arg0, completedValue, fail, failedError, ok, replayWith, watch } from "./helpers/drive.ts";

const env = new TaskEnvironment({ name: "replay_property" });
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

const child = env.task(async function child(i: number) {
  return i * 3;
});
const syncChild = env.task(function syncChild(i: number) {
  return i * 3;
});

const show = (r: unknown): unknown => (r instanceof Error ? `E${(r as TaskError).original.message}` : r);

const gatherAll = env.task(async function gatherAll(k: number) {
  return Promise.all(range(k).map((i) => child(i)));
});
const gatherSettled = env.task(async function gatherSettled(k: number) {
  const rs = await Promise.allSettled(range(k).map((i) => child(i)));
  return rs.map((r) => (r.status === "fulfilled" ? r.value : show(r.reason)));
});
const gatherIdiom = env.task(async function gatherIdiom(k: number) {
  return Promise.all(range(k).map(async (i) => (await child(i)) + 1));
});
const mapSync = env.task(function mapSync(k: number) {
  return [...map(syncChild, range(k))].map(show);
});
const mapAio = env.task(async function mapAio(k: number) {
  const out: unknown[] = [];
  for await (const r of map.aio(child, range(k))) out.push(show(r));
  return out;
});
const raceThen = env.task(async function raceThen(k: number) {
  const w = await Promise.race(range(k).map((i) => child(i)));
  return [w, await child(w + 1000)];
});

/** Child i fails (with "bad i") when the schedule says so; otherwise returns 3i. */
const outcomes =
  (failing: readonly boolean[]) =>
  (c: CallRecord): Outcome => {
    const i = arg0(c) as number;
    return failing[i] ? fail(new RangeError(`bad ${i}`)) : ok(i * 3);
  };

interface Schedule {
  k: number;
  failing: boolean[];
  /** Deliveries in order, as indexes into the calls dispatched so far (each at least once). */
  deliveries: number[];
  /** Deliveries after which the adapter dies before updating its in-memory tracker. */
  crashes: Set<number>;
  /** Resumes whose decision is lost (the coordinator dies before persisting it) and replayed again. */
  lost: boolean[];
}

/** `slots(k)` calls are dispatched over the parent's life; each is delivered at least once. */
function schedules(slots: (k: number) => number, withFailures: boolean): fc.Arbitrary<Schedule> {
  return fc
    .integer({ min: 1, max: 50 })
    .chain((k) =>
      fc.record({
        k: fc.constant(k),
        order: fc.shuffledSubarray(range(slots(k)), { minLength: slots(k), maxLength: slots(k) }),
        dups: fc.array(fc.tuple(fc.nat({ max: slots(k) - 1 }), fc.nat()), { maxLength: k }),
        failing: withFailures
          ? fc.array(fc.boolean(), { minLength: k, maxLength: k })
          : fc.constant<boolean[]>([]),
        crashes: fc.array(fc.nat(), { maxLength: 6 }),
        lost: fc.array(fc.boolean(), { maxLength: 20 }),
      }),
    )
    .map(({ k, order, dups, failing, crashes, lost }) => {
      const deliveries = [...order];
      for (const [slot, at] of dups) deliveries.splice(at % (deliveries.length + 1), 0, slot);
      return { k, failing, deliveries, crashes: new Set(crashes.map((c) => c % deliveries.length)), lost };
    });
}

interface Simulated {
  final: Decision;
  /** Decisions persisted, in order (lost ones are not). */
  persisted: Decision[];
  history: Recorder;
}

/**
 * The adapter loop: record each delivered outcome once, tell the tracker, replay the parent when
 * the tracker says it may progress. A crash (after recording an outcome, before telling the
 * tracker) drops the tracker; the restarted adapter rebuilds it from the persisted decision and the
 * outcomes recorded so far, and replays if that is satisfied.
 */
async function simulate(task: Task<(k: number) => unknown>, s: Schedule): Promise<Simulated> {
  const history = new Recorder(); // throws if a call is dispatched twice
  const outcomeOf = outcomes(s.failing);
  const persisted: Decision[] = [];
  let d!: Decision;
  let tracker: WaitTracker | undefined;

  const resume = async (): Promise<void> => {
    for (;;) {
      // A wait satisfied the moment it is built, by a replay that made no progress, would loop here.
      assert.ok(
        persisted.length <= 2 * s.k + 20,
        `replay loop: ${persisted.length} replays, last ${JSON.stringify(d)}`,
      );
      let next = await replayWith(task.def, [s.k], history);
      if (s.lost[persisted.length]) {
        const again = await replayWith(task.def, [s.k], history);
        assert.deepEqual(again, next, "a replay is a function of its history");
        next = again;
      }
      history.record(next);
      persisted.push(next);
      d = next;
      tracker = d.kind === "suspended" ? watch(d.waits, history) : undefined;
      if (!tracker?.satisfied) return;
    }
  };

  const deliver = async (c: CallRecord, crash: boolean): Promise<void> => {
    if (d.kind !== "suspended") return; // a late duplicate after the parent finished
    if (!history.outcomes.has(c.id)) history.outcomes.set(c.id, outcomeOf(c)); // recorded once
    const o = history.outcomes.get(c.id)!;
    if (crash) {
      tracker = watch(d.waits, history);
      if (tracker.satisfied) await resume();
    } else if (tracker!.settle(c.id, o.ok)) await resume();
  };

  await resume();
  for (const [i, slot] of s.deliveries.entries()) {
    const c = [...history.calls.values()][slot];
    if (c) await deliver(c, s.crashes.has(i)); // a call not dispatched yet cannot finish yet
  }
  while (d.kind === "suspended") {
    const c = history.pending()[0];
    assert.ok(c, `stuck: nothing pending, yet suspended on ${JSON.stringify(d.waits)}`);
    await deliver(c, false);
  }
  return { final: d, persisted, history };
}

/** Every call was dispatched exactly once over all replays, and they are the first decision's calls. */
function assertDispatchedOnce(r: Simulated, k: number): void {
  const ids = r.persisted.flatMap((d) => d.calls.map((c) => c.id));
  assert.equal(new Set(ids).size, ids.length, "a call was dispatched twice");
  assert.equal(ids.length, k);
  assert.deepEqual(
    r.persisted[0]!.calls.map((c) => arg0(c)),
    range(k),
  );
}

const expectedItems = (s: Schedule): unknown[] => range(s.k).map((i) => (s.failing[i] ? `Ebad ${i}` : i * 3));
const RUNS = { numRuns: 60 };

/** The parent completed with `expectedItems(s)`. */
const sameItems = (final: Decision, s: Schedule): void =>
  assert.deepEqual(completedValue(final), expectedItems(s));

/**
 * For random schedules of K children (failing some if `withFailures`): the final decision passes
 * `check`, every call was dispatched exactly once, and the replays number exactly `replays`, or lie
 * within `[min, max]`.
 */
async function holds(
  task: Task<(k: number) => unknown>,
  withFailures: boolean,
  check: (final: Decision, s: Schedule) => void,
  replays: number | { min: number; max: number },
): Promise<void> {
  await fc.assert(
    fc.asyncProperty(
      schedules((k) => k, withFailures),
      async (s) => {
        const r = await simulate(task, s);
        check(r.final, s);
        assertDispatchedOnce(r, s.k);
        const n = r.persisted.length;
        if (typeof replays === "number") assert.equal(n, replays);
        else assert.ok(n >= replays.min && n <= replays.max, `${n} replays`);
      },
    ),
    RUNS,
  );
}

await test("gather (Promise.all) of K children, all succeeding: same result, dispatch once, exactly 2 replays", () =>
  holds(gatherAll, false, sameItems, 2));

await test("gather (Promise.all) with failures: fails with TaskError after exactly 2 replays", () =>
  holds(
    gatherAll,
    true,
    (final, s) => {
      if (s.failing.some(Boolean)) assert.equal(failedError(final).name, "TaskError");
      else sameItems(final, s);
    },
    2,
  ));

await test("gather (Promise.allSettled) with failures: same result whatever the order, exactly 2 replays", () =>
  holds(gatherSettled, true, sameItems, 2));

await test("gather idiom Promise.all(items.map(async i => (await child(i)) + 1)): exactly 2 replays", () =>
  holds(
    gatherIdiom,
    false,
    (final, s) =>
      assert.deepEqual(
        completedValue(final),
        range(s.k).map((i) => i * 3 + 1),
      ),
    2,
  ));

await test("sync map over K children with failures: errors in place, exactly 2 replays", () =>
  holds(mapSync, true, sameItems, 2));

await test("map.aio over K children with failures: same result, at most 9 replays (8 stream batches)", () =>
  holds(mapAio, true, sameItems, { min: 2, max: 9 }));

await test("race then a child: the first delivered child wins for good, whatever arrives later", async () => {
  await fc.assert(
    fc.asyncProperty(
      schedules((k) => k + 1, false),
      async (s) => {
        const r = await simulate(raceThen, s);
        const first = s.deliveries.find((slot) => slot < s.k)!; // the follow-up cannot arrive before it exists
        const w = first * 3;
        assert.deepEqual(completedValue(r.final), [w, (w + 1000) * 3]);
        const ids = r.persisted.flatMap((d) => d.calls.map((c) => c.id));
        assert.equal(new Set(ids).size, ids.length, "a call was dispatched twice");
        assert.equal(r.persisted.length, 3);
      },
    ),
    RUNS,
  );
});
