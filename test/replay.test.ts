import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { TaskEnvironment } from "../sdk/task.ts";
import type { Task } from "../sdk/task.ts";
import { map } from "../sdk/map.ts";
import { group } from "../sdk/group.ts";
import { trace } from "../sdk/trace.ts";
import { TaskError } from "../sdk/errors.ts";
import { replay } from "../sdk/core/replay.ts";
import { sharedTurnScheduler } from "../sdk/core/decision.ts";
import { WaitTracker } from "../sdk/core/wait.ts";
import { emptyHistory } from "../sdk/core/history.ts";
import { loadHistory } from "../sdk/testing/history.ts";
import type { CallRecord, Outcome } from "../sdk/core/history.ts";
import { serialize } from "../sdk/serde.ts";
import {
  Recorder,
  arg0,
  completedValue,
  drive,
  fail,
  failedError,
  ok,
  replayWith,
  suspended,
} from "./helpers/drive.ts";

const env = new TaskEnvironment({ name: "replay_test" });
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- children ------------------------------------------------------------------------------------

const double = env.task(async function double(x: number) {
  return x * 2;
});
const square = env.task(function square(x: number) {
  return x * x + 2 * x + 1;
});

/** What the children return; calls selected by `failing` fail with a RangeError after 2 attempts. */
function children(failing: (c: CallRecord) => boolean = () => false): (c: CallRecord) => Outcome {
  return (c) => {
    const x = arg0(c) as number;
    if (failing(c)) return fail(new RangeError(`bad ${x}`), 2);
    if (c.task === double.taskName) return ok(x * 2);
    if (c.task === square.taskName) return ok(x * x + 2 * x + 1);
    throw new Error(`no such child in this test: ${c.task}`);
  };
}
const failArg =
  (...xs: number[]) =>
  (c: CallRecord): boolean =>
    xs.includes(arg0(c) as number);

// ---- parents -------------------------------------------------------------------------------------

const gather = env.task(async function gather(n: number) {
  return Promise.all(range(n).map((i) => double(i)));
});
const gatherIdiom = env.task(async function gatherIdiom(n: number) {
  return Promise.all(range(n).map(async (i) => (await double(i)) + 1));
});
const raceTask = env.task(async function raceTask(xs: number[]) {
  return Promise.race(xs.map((x) => double(x)));
});
const anyTask = env.task(async function anyTask(xs: number[]) {
  return Promise.any(xs.map((x) => double(x)));
});
const settledTask = env.task(async function settledTask(xs: number[]) {
  const rs = await Promise.allSettled(xs.map((x) => double(x)));
  return rs.map((r) =>
    r.status === "fulfilled"
      ? r.value
      : `${(r.reason as TaskError).name}:${(r.reason as TaskError).errorName}`,
  );
});
const aioParent = env.task(async function aioParent(xs: number[]) {
  return Promise.all(xs.map((x) => square.aio(x)));
});
const syncParent = env.task(function syncParent(x: number) {
  return square(x) + 1;
});
const asyncCallsSync = env.task(async function asyncCallsSync(x: number) {
  return square(x) * 2;
});
const syncMap = env.task(function syncMap(n: number) {
  const out: unknown[] = [];
  for (const r of map(square, range(n)))
    out.push(r instanceof Error ? `${r.name}:${(r as TaskError).task}` : r);
  return out;
});
const syncMapStrict = env.task(function syncMapStrict(n: number) {
  const out: unknown[] = [];
  for (const r of map(square, range(n), { returnExceptions: false })) out.push(r);
  return out;
});
const catchChild = env.task(async function catchChild(x: number) {
  try {
    return await double(x);
  } catch (e) {
    if (!(e instanceof TaskError)) return `not a TaskError: ${String(e)}`;
    const cause = e.cause as Error;
    return {
      name: e.name,
      task: e.task,
      attempts: e.attempts,
      errorName: e.errorName,
      message: e.message,
      cause: cause.name,
    };
  }
});

// ---- combinators, table-driven ---------------------------------------------------------------------

interface Case {
  name: string;
  task: Task<(...a: any[]) => unknown>;
  args: unknown[];
  /** Calls the first replay dispatches (as the first argument of each). */
  dispatches: unknown[];
  /** Children to settle, by index in the first decision's calls; the wait is satisfied at the last. */
  settle: [index: number, outcome: "ok" | "err"][];
  expect: { value: unknown } | { error: string; message?: RegExp };
}

const cases: Case[] = [
  {
    name: "Promise.all: resumes once, at the last child",
    task: gather,
    args: [4],
    dispatches: [0, 1, 2, 3],
    settle: [
      [3, "ok"],
      [1, "ok"],
      [0, "ok"],
      [2, "ok"],
    ],
    expect: { value: [0, 2, 4, 6] },
  },
  {
    name: "Promise.all: a child failure resumes at once and rejects with TaskError",
    task: gather,
    args: [4],
    dispatches: [0, 1, 2, 3],
    settle: [
      [0, "ok"],
      [2, "err"],
    ],
    expect: {
      error: "TaskError",
      message: /^task replay_test\.double failed after 2 attempt\(s\): RangeError: bad 2$/,
    },
  },
  {
    name: "Promise.all(items.map(async i => (await child(i)) + 1)): resumes once, at the last child",
    task: gatherIdiom,
    args: [5],
    dispatches: [0, 1, 2, 3, 4],
    settle: [
      [4, "ok"],
      [0, "ok"],
      [3, "ok"],
      [1, "ok"],
      [2, "ok"],
    ],
    expect: { value: [1, 3, 5, 7, 9] },
  },
  {
    name: "Promise.race: resumes at the first child",
    task: raceTask,
    args: [[5, 6, 7]],
    dispatches: [5, 6, 7],
    settle: [[1, "ok"]],
    expect: { value: 12 },
  },
  {
    name: "Promise.race: a first failure rejects",
    task: raceTask,
    args: [[5, 6]],
    dispatches: [5, 6],
    settle: [[0, "err"]],
    expect: { error: "TaskError", message: /RangeError: bad 5/ },
  },
  {
    name: "Promise.any: failures wait, the first success resumes",
    task: anyTask,
    args: [[1, 2, 3]],
    dispatches: [1, 2, 3],
    settle: [
      [0, "err"],
      [2, "err"],
      [1, "ok"],
    ],
    expect: { value: 4 },
  },
  {
    name: "Promise.any: all failing rejects with AggregateError",
    task: anyTask,
    args: [[1, 2]],
    dispatches: [1, 2],
    settle: [
      [1, "err"],
      [0, "err"],
    ],
    expect: { error: "AggregateError" },
  },
  {
    name: "Promise.allSettled: failures do not resume early",
    task: settledTask,
    args: [[1, 2, 3]],
    dispatches: [1, 2, 3],
    settle: [
      [0, "err"],
      [2, "ok"],
      [1, "ok"],
    ],
    expect: { value: ["TaskError:RangeError", 4, 6] },
  },
  {
    name: ".aio() of a sync task: a durable future",
    task: aioParent,
    args: [[1, 2, 3]],
    dispatches: [1, 2, 3],
    settle: [
      [2, "ok"],
      [1, "ok"],
      [0, "ok"],
    ],
    expect: { value: [4, 9, 16] },
  },
  {
    name: "sync task called in a sync task: suspends on the call, then returns its value",
    task: syncParent,
    args: [3],
    dispatches: [3],
    settle: [[0, "ok"]],
    expect: { value: 17 },
  },
  {
    name: "sync task called in an async task",
    task: asyncCallsSync,
    args: [3],
    dispatches: [3],
    settle: [[0, "ok"]],
    expect: { value: 32 },
  },
  {
    name: "sync map: suspends once until every item settled, errors in place",
    task: syncMap,
    args: [4],
    dispatches: [0, 1, 2, 3],
    settle: [
      [3, "ok"],
      [1, "err"],
      [2, "ok"],
      [0, "ok"],
    ],
    expect: { value: [1, "TaskError:replay_test.square", 9, 16] },
  },
  {
    name: "sync map with returnExceptions: false throws the first failure in order",
    task: syncMapStrict,
    args: [4],
    dispatches: [0, 1, 2, 3],
    settle: [
      [1, "err"],
      [0, "ok"],
    ],
    expect: {
      error: "TaskError",
      message: /replay_test\.square failed after 2 attempt\(s\): RangeError: bad 1/,
    },
  },
  {
    name: "a caught child failure is a TaskError with task, attempts and the original error",
    task: catchChild,
    args: [-1],
    dispatches: [-1],
    settle: [[0, "err"]],
    expect: {
      value: {
        name: "TaskError",
        task: "replay_test.double",
        attempts: 2,
        errorName: "RangeError",
        message: "task replay_test.double failed after 2 attempt(s): RangeError: bad -1",
        cause: "RangeError",
      },
    },
  },
  {
    name: "an uncaught child failure fails the parent with TaskError",
    task: gather,
    args: [1],
    dispatches: [0],
    settle: [[0, "err"]],
    expect: {
      error: "TaskError",
      message: /^task replay_test\.double failed after 2 attempt\(s\): RangeError: bad 0$/,
    },
  },
];

await test("given a first replay and children settling, expect one resume and this result", async (t) => {
  for (const k of cases) {
    await t.test(k.name, async () => {
      const history = new Recorder();
      const first = suspended(await replayWith(k.task.def, k.args, history));
      history.record(first);
      assert.deepEqual(
        first.calls.map((c) => arg0(c)),
        k.dispatches,
      );
      const tracker = new WaitTracker(first.waits);
      assert.equal(tracker.satisfied, false, "satisfied before any child settled");
      for (const [step, [index, outcome]] of k.settle.entries()) {
        const call = first.calls[index]!;
        const o = children(() => outcome === "err")(call);
        history.outcomes.set(call.id, o);
        const last = step === k.settle.length - 1;
        assert.equal(
          tracker.settle(call.id, o.ok),
          last,
          `settling call ${index} (step ${step}) resumes: ${!last}`,
        );
      }
      const second = await replayWith(k.task.def, k.args, history);
      assert.deepEqual(second.calls, [], "no new calls on the resume");
      if ("value" in k.expect) assert.deepEqual(completedValue(second), k.expect.value);
      else {
        const e = failedError(second);
        assert.equal(e.name, k.expect.error);
        if (k.expect.message) assert.match(e.message, k.expect.message);
      }
    });
  }
});

await test("the first replay of a gather: N calls with their identity, and one wait over all of them", async () => {
  const d = suspended(await replayWith(gather.def, [3], emptyHistory()));
  assert.equal(d.calls.length, 3);
  for (const [i, c] of d.calls.entries()) {
    assert.equal(c.v, 1);
    assert.equal(c.parent, "root");
    assert.equal(c.task, "replay_test.double");
    assert.equal(c.group, "");
    assert.equal(c.n, 0);
    assert.equal(c.args, `[${i}]`);
    assert.equal(c.window, undefined);
  }
  assert.equal(new Set(d.calls.map((c) => c.id)).size, 3);
  assert.deepEqual(d.waits, [{ kind: "all", of: d.calls.map((c) => ({ kind: "call", id: c.id })) }]);
  assert.deepEqual(d.traces, []);
  assert.deepEqual(d.warnings, []);
});

await test("a gather of 200,000 children replays (no spread of its members overflows the stack)", async () => {
  // A million-child gather failed with RangeError: the combinator digested its members' ids through
  // a spread into a function call, which overflows past about 130,000 arguments.
  const d = suspended(await replayWith(gather.def, [200_000], emptyHistory()));
  assert.equal(d.calls.length, 200_000);
  assert.equal(d.waits.length, 1);
});

await test("an uncaught child failure carries the child's task and attempts in the parent's error", async () => {
  const { final } = await drive(gather.def, [2], children(failArg(1)));
  const e = failedError(final);
  assert.equal(e.name, "TaskError");
  assert.equal(e.code, "TASK_FAILED");
  assert.equal(e.task, "replay_test.double");
  assert.equal(e.attempts, 2);
  assert.equal(e.cause?.name, "RangeError");
});

await test("a sync task in a sync task suspends with a call wait", async () => {
  const d = suspended(await replayWith(syncParent.def, [3], emptyHistory()));
  assert.equal(d.calls.length, 1);
  assert.deepEqual(d.waits, [{ kind: "call", id: d.calls[0]!.id }]);
  const { final, decisions } = await drive(syncParent.def, [3], children());
  assert.equal(completedValue(final), 17);
  assert.equal(decisions.length, 2);
});

const chain = env.task(function chain(x: number) {
  return square(square(x)); // each sync call suspends the body until its value exists
});

await test("sync calls in sequence: one replay per call, each returning the recorded value", async () => {
  const { final, decisions } = await drive(chain.def, [1], children());
  assert.equal(completedValue(final), 25); // square(1) = 4, square(4) = 25
  assert.equal(decisions.length, 3);
});

// ---- map ---------------------------------------------------------------------------------------------

await test("sync map: one stream wait over every item", async () => {
  const d = suspended(await replayWith(syncMap.def, [3], emptyHistory()));
  assert.deepEqual(d.waits, [
    { kind: "stream", ids: d.calls.map((c) => c.id), from: 0, batch: 3, failFast: false },
  ]);
  assert.deepEqual(
    d.calls.map((c) => c.group),
    ["square", "square", "square"],
  );
  const strict = suspended(await replayWith(syncMapStrict.def, [3], emptyHistory()));
  assert.equal((strict.waits[0] as { failFast: boolean }).failFast, true);
});

await test("sync map: two replays whatever the settle order", async () => {
  const reverse = (p: CallRecord[]): CallRecord[] => [...p].reverse();
  for (const order of [undefined, reverse]) {
    const { final, decisions } = await drive(syncMap.def, [20], children(failArg(7)), order ? { order } : {});
    assert.equal(decisions.length, 2);
    const value = completedValue(final) as unknown[];
    assert.equal(value[7], "TaskError:replay_test.square");
    assert.equal(value[19], 400);
  }
});

const aioMapSum = env.task(async function aioMapSum(n: number) {
  let sum = 0;
  let count = 0;
  for await (const r of map.aio(square, range(n))) {
    sum += r as number;
    count++;
  }
  return { sum, count };
});

await test("map.aio over 10,000 children settling in order: coalesced resumes (at most 20 replays)", async () => {
  const n = 10_000;
  const { final, decisions } = await drive(aioMapSum.def, [n], children());
  assert.equal(decisions[0]!.calls.length, n);
  assert.ok(decisions.length <= 20, `${decisions.length} replays`);
  assert.ok(decisions.length >= 2);
  // Σ (i + 1)^2 for i < n
  assert.deepEqual(completedValue(final), { sum: (n * (n + 1) * (2 * n + 1)) / 6, count: n });
});

const aioMapErrors = env.task(async function aioMapErrors(n: number, strict: boolean) {
  const out: unknown[] = [];
  for await (const r of map.aio(square, range(n), strict ? { returnExceptions: false } : {})) {
    out.push(r instanceof Error ? r.name : r);
  }
  return out;
});

await test("map.aio: errors in place by default, thrown with returnExceptions: false", async () => {
  const lenient = await drive(aioMapErrors.def, [4, false], children(failArg(2)));
  assert.deepEqual(completedValue(lenient.final), [1, 4, "TaskError", 16]);
  const strict = await drive(aioMapErrors.def, [4, true], children(failArg(2)));
  assert.equal(failedError(strict.final).name, "TaskError");
});

const windowed = env.task(function windowed(n: number) {
  const a = [...map(square, range(n), { concurrency: 2 })];
  const b = [...map(square, range(n), { concurrency: 3 })];
  const c = [...map(square, range(n))];
  return [a, b, c];
});

await test("map with concurrency: every call carries its window (key, index, limit)", async () => {
  const { final, history } = await drive(windowed.def, [3], children());
  assert.deepEqual(completedValue(final), [
    [1, 4, 9],
    [1, 4, 9],
    [1, 4, 9],
  ]);
  const calls = [...history.calls.values()];
  assert.equal(calls.length, 9);
  const [a, b, c] = [calls.slice(0, 3), calls.slice(3, 6), calls.slice(6)];
  assert.deepEqual(
    a.map((x) => [x.window?.index, x.window?.limit]),
    [
      [0, 2],
      [1, 2],
      [2, 2],
    ],
  );
  assert.deepEqual(
    b.map((x) => [x.window?.index, x.window?.limit]),
    [
      [0, 3],
      [1, 3],
      [2, 3],
    ],
  );
  assert.equal(new Set(a.map((x) => x.window?.key)).size, 1);
  assert.notEqual(a[0]!.window?.key, b[0]!.window?.key, "two maps in one group get distinct windows");
  assert.deepEqual(
    c.map((x) => x.window),
    [undefined, undefined, undefined],
  );
});

// ---- group -------------------------------------------------------------------------------------------

const grouped = env.task(async function grouped() {
  const a = await group("prep", () => Promise.all([double(1), double(2)]));
  const b = await group("outer", () => group("inner", () => double(1)));
  const c = await double(1);
  const d = await group("g", async () => {
    const out: unknown[] = [];
    for await (const r of map.aio(square, [1])) out.push(r);
    for await (const r of map.aio(square, [1], { group: "custom" })) out.push(r);
    return out;
  });
  return [a, b, c, d];
});

await test("group changes the group of the calls made inside it, and their identity", async () => {
  const { final, history } = await drive(grouped.def, [], children());
  assert.deepEqual(completedValue(final), [[2, 4], 2, 2, [4, 4]]);
  const calls = [...history.calls.values()];
  assert.deepEqual(
    calls.map((c) => [c.task, c.args, c.group]),
    [
      ["replay_test.double", "[1]", "prep"],
      ["replay_test.double", "[2]", "prep"],
      ["replay_test.double", "[1]", "outer/inner"],
      ["replay_test.double", "[1]", ""],
      ["replay_test.square", "[1]", "g/square"],
      ["replay_test.square", "[1]", "g/custom"],
    ],
  );
  const sameCallElsewhere = calls.filter((c) => c.args === "[1]" && c.task === "replay_test.double");
  assert.equal(new Set(sameCallElsewhere.map((c) => c.id)).size, 3, "the group is part of a call's identity");
  assert.ok(sameCallElsewhere.every((c) => c.n === 0));
});

// ---- trace -------------------------------------------------------------------------------------------

let seedRuns = 0;
const fetchSeed = trace(async function fetchSeed(x: number) {
  seedRuns++;
  await sleep(5); // real I/O takes time: the replay waits for a trace in flight, and does not warn
  return x + seedRuns * 100; // differs on every run: replay must return the recorded one
});
const traced = env.task(async function traced(x: number) {
  const s = await fetchSeed(x);
  return [s, await double(s)];
});

await test("trace runs once and returns the recorded value on replay", async () => {
  seedRuns = 0;
  const { final, decisions } = await drive(traced.def, [1], children());
  assert.equal(seedRuns, 1);
  assert.deepEqual(completedValue(final), [101, 202]);
  assert.equal(decisions.length, 2);
  assert.equal(decisions[0]!.traces.length, 1);
  assert.deepEqual(decisions[0]!.traces[0]!.outcome, ok(101));
  assert.deepEqual(decisions[1]!.traces, []);
  for (const d of decisions) assert.deepEqual(d.warnings, []);
});

let flakyRuns = 0;
const flaky = trace(async function flaky() {
  flakyRuns++;
  throw new TypeError(`service down (${flakyRuns})`);
});
let clockRuns = 0;
const clock = trace(function clock() {
  clockRuns++;
  return 1_700_000_000_000 + clockRuns;
});
const tracedFailure = env.task(async function tracedFailure() {
  const t0 = clock();
  let msg: string;
  try {
    await flaky();
    msg = "no error";
  } catch (e) {
    msg = `${(e as Error).name}: ${(e as Error).message}`;
  }
  return [t0, msg, await double(msg.length)];
});

await test("a failed trace (and a sync trace) also run once and replay from the record", async () => {
  flakyRuns = 0;
  clockRuns = 0;
  const { final, decisions } = await drive(tracedFailure.def, [], children());
  assert.equal(flakyRuns, 1);
  assert.equal(clockRuns, 1);
  const msg = "TypeError: service down (1)";
  assert.deepEqual(completedValue(final), [1_700_000_000_001, msg, msg.length * 2]);
  const recorded = decisions[0]!.traces;
  assert.equal(recorded.length, 2);
  assert.deepEqual(
    recorded.map((r) => r.outcome.ok),
    [true, false],
  );
});

// ---- determinism -------------------------------------------------------------------------------------

const fanOut = env.task(async function fanOut(xs: number[]) {
  return Promise.all(xs.map((x) => double(x)));
});

await test("a history recorded with other inputs fails the replay with NonDeterminismError naming both calls", async () => {
  const history = new Recorder();
  history.record(await replayWith(fanOut.def, [[1, 2, 3]], history));
  const e = failedError(await replayWith(fanOut.def, [[1, 2, 4]], history));
  assert.equal(e.name, "NonDeterminismError");
  assert.equal(e.nonRecoverable, true);
  assert.match(e.message, /task replay_test\.fanOut is not deterministic/);
  assert.match(
    e.message,
    /history records replay_test\.double\(3\) #0 but the replay called replay_test\.double\(4\) #0 instead/,
  );
  assert.match(e.message, /trace\(\.\.\.\)/, "says what to do");
  assert.equal((e.details?.["recorded"] as CallRecord).args, "[3]");
  assert.equal((e.details?.["replayed"] as CallRecord).args, "[4]");
});

await test("a replay matches its calls by position while it makes them as recorded, then by identity", async () => {
  const history = new Recorder();
  const first = suspended(await replayWith(fanOut.def, [[1, 1, 2, 1]], history));
  history.record(first);
  // Each recorded call has an outcome of its own: a call matched to another record shows.
  first.calls.forEach((c, i) => history.outcomes.set(c.id, ok(100 + i)));
  assert.deepEqual(
    completedValue(await replayWith(fanOut.def, [[1, 1, 2, 1]], history)),
    [100, 101, 102, 103],
  );
  // The same calls in another order: double(1) #0 and #1 by position, then double(1) #2 by its
  // identity, whose count must include the two matched by position.
  assert.deepEqual(
    completedValue(await replayWith(fanOut.def, [[1, 1, 1, 2]], history)),
    [100, 101, 103, 102],
  );
  // A history not known to be in call order is matched by identity throughout.
  const unordered = {
    calls: new Map([...history.calls].reverse()),
    outcomes: history.outcomes,
    traces: history.traces,
  };
  assert.deepEqual(
    completedValue(await replayWith(fanOut.def, [[1, 1, 2, 1]], unordered)),
    [100, 101, 102, 103],
  );
});

const maybe = env.task(async function maybe(call: boolean) {
  return call ? await double(1) : 5;
});

await test("a recorded call the replay no longer makes is a NonDeterminismError, even when the body completes", async () => {
  const history = new Recorder();
  history.record(await replayWith(maybe.def, [true], history));
  const e = failedError(await replayWith(maybe.def, [false], history));
  assert.equal(e.name, "NonDeterminismError");
  assert.match(e.message, /history records replay_test\.double\(1\) #0 but the replay made no such call/);
});

const twoBranches = env.task(async function twoBranches() {
  const left = (async () => (await double(1)) + (await double(100)))();
  const right = (async () => (await double(2)) + (await double(100)))();
  return [await left, await right];
});

await test("child identity does not depend on the order outcomes arrive in", async () => {
  const orders: ((p: CallRecord[]) => CallRecord[])[] = [(p) => p, (p) => [...p].reverse()];
  for (const task of [twoBranches, gather, gatherIdiom, syncMap]) {
    const runs = [];
    for (const order of orders)
      runs.push(await drive(task.def, task === twoBranches ? [] : [6], children(), { order }));
    const ids = runs.map((r) => [...r.history.calls.keys()].sort());
    assert.deepEqual(ids[0], ids[1], `${task.taskName}: the same calls whatever the order`);
    assert.deepEqual(completedValue(runs[0]!.final), completedValue(runs[1]!.final));
  }
  const same = [...(await drive(twoBranches.def, [], children())).history.calls.values()].filter(
    (c) => c.args === "[100]",
  );
  assert.deepEqual(
    same.map((c) => c.n),
    [0, 1],
    "equal calls are told apart by their sequence",
  );
});

const raceThen = env.task(async function raceThen() {
  const w = await Promise.race([double(1), double(2)]);
  return double(w * 10);
});
const anyThen = env.task(async function anyThen() {
  const w = await Promise.any([double(1), double(2)]);
  return double(w * 10);
});
const allCatchThen = env.task(async function allCatchThen() {
  try {
    await Promise.all([double(1), double(2)]);
    return -1;
  } catch (e) {
    return double(Number((e as TaskError).original.message.slice("bad ".length)) * 10);
  }
});

await test("the winner of race/any/all stays the winner when a later replay knows more outcomes", async (t) => {
  // [name, parent, members fail, the call made after the second member settles first, final result]
  const table: [string, Task<() => Promise<unknown>>, boolean, string, number][] = [
    ["Promise.race", raceThen, false, "[40]", 80],
    ["Promise.any", anyThen, false, "[40]", 80],
    ["Promise.all's first rejection", allCatchThen, true, "[20]", 40],
  ];
  for (const [name, task, failing, next, expected] of table) {
    await t.test(name, async () => {
      const history = new Recorder();
      const outcome = children(() => failing);
      const first = suspended(await replayWith(task.def, [], history));
      history.record(first);
      const [one, two] = first.calls as [CallRecord, CallRecord];
      history.outcomes.set(two.id, outcome(two)); // the second member settles first ...
      const second = suspended(await replayWith(task.def, [], history));
      history.record(second);
      assert.deepEqual(
        second.calls.map((c) => c.args),
        [next],
      );
      history.outcomes.set(one.id, outcome(one)); // ... then the first, before the next replay
      history.outcomes.set(second.calls[0]!.id, children()(second.calls[0]!));
      const third = await replayWith(task.def, [], history);
      assert.equal(completedValue(third), expected);
    });
  }
});

// ---- recorded histories (fixtures) -------------------------------------------------------------------

const recorded = env.task(async function recorded(xs: number[]) {
  const doubled = await group("double", () => Promise.all(xs.map((x) => double(x))));
  const squares: unknown[] = [];
  for await (const r of map.aio(square, doubled)) squares.push(r);
  return { doubled, squares };
});

interface Fixture {
  description: string;
  task: string;
  args: string;
  actionId: string;
  /** Stored call records, as the store holds them (JSON text). */
  calls: string[];
  /** Stored outcomes by call id (JSON text). */
  outcomes: Record<string, string>;
  expect:
    | { kind: "completed"; value: string }
    | { kind: "suspended"; newCalls: number; waits: number }
    | { error: "HistoryError"; message: string }
    /** The replay fails the parent with this error. */
    | { failed: string; message: string };
}

await test("recorded histories replay to the recorded decision; bad ones fail with HistoryError or fail the parent", async (t) => {
  const dir = new URL("./fixtures/", import.meta.url);
  const files = readdirSync(dir).filter((f) => f.endsWith(".json"));
  assert.ok(files.length >= 6, `fixtures found: ${files.join(", ")}`);
  const tasks = new Map([[recorded.taskName, recorded]]);
  for (const file of files) {
    const f = JSON.parse(readFileSync(new URL(file, dir), "utf8")) as Fixture;
    await t.test(`${file}: ${f.description}`, async () => {
      const task = tasks.get(f.task);
      assert.ok(task, `fixture task ${f.task}`);
      if ("error" in f.expect) {
        const { message } = f.expect;
        assert.throws(
          () => loadHistory(f),
          (e: unknown) => {
            assert.equal((e as Error).name, "HistoryError");
            assert.ok((e as Error).message.includes(message), `message: ${(e as Error).message}`);
            return true;
          },
        );
        return;
      }
      const d = await replay({ task: task.def, args: f.args, actionId: f.actionId, history: loadHistory(f) });
      if ("failed" in f.expect) {
        const e = failedError(d);
        assert.equal(e.name, f.expect.failed);
        assert.ok(e.message.includes(f.expect.message), `message: ${e.message}`);
        assert.deepEqual(d.calls, []);
      } else if (f.expect.kind === "completed") {
        assert.equal(d.kind === "completed" ? d.value : completedValue(d), f.expect.value);
        assert.deepEqual(d.calls, []);
      } else {
        const s = suspended(d);
        assert.equal(s.calls.length, f.expect.newCalls);
        assert.equal(s.waits.length, f.expect.waits);
      }
    });
  }
});

// ---- errors in the parent itself ----------------------------------------------------------------------

const boom = env.task(async function boom() {
  throw "boom";
});
const boomSync = env.task(function boomSync() {
  throw { code: 42 };
});

await test("a task that throws a non-Error fails with NonErrorThrown saying what to do", async () => {
  const e = failedError(await replayWith(boom.def, [], emptyHistory()));
  assert.equal(e.name, "NonErrorThrown");
  assert.equal(e.code, "NON_ERROR_THROWN");
  assert.match(e.message, /threw a non-Error value \(string: "boom"\); throw an Error so its stack is kept/);
  const e2 = failedError(await replayWith(boomSync.def, [], emptyHistory()));
  assert.equal(e2.name, "NonErrorThrown");
  assert.match(e2.message, /\(object: \[object Object\]\)/);
});

class Handle {
  fd = 3;
}
const badResult = env.task(async function badResult() {
  return { rows: [1], handle: new Handle() };
});
const badChildArg = env.task(async function badChildArg() {
  return double((() => 1) as unknown as number);
});

await test("a result that cannot be serialised fails with SerializationError naming the task and path", async () => {
  const e = failedError(await replayWith(badResult.def, [], emptyHistory()));
  assert.equal(e.name, "SerializationError");
  assert.equal(e.nonRecoverable, true);
  assert.match(e.message, /^result of task replay_test\.badResult: cannot serialise a Handle at \.handle/);
});

await test("a child argument that cannot be serialised fails the parent, naming the argument", async () => {
  const e = failedError(await replayWith(badChildArg.def, [], emptyHistory()));
  assert.equal(e.name, "SerializationError");
  assert.match(e.message, /^argument 1 of task replay_test\.double: cannot serialise a function/);
});

await test("arguments that are not a serialised list fail the replay without running the body", async () => {
  for (const [args, message] of [
    ["{oops", /payload is not valid JSON/],
    ["5", /arguments of replay_test\.double are not a list/],
  ] as const) {
    const d = await replay({ task: double.def, args, actionId: "root", history: emptyHistory() });
    const e = failedError(d);
    assert.equal(e.name, "SerializationError");
    assert.match(e.message, message);
    assert.equal(e.nonRecoverable, true);
  }
});

// ---- outside a task, and I/O in a body ------------------------------------------------------------------

await test("a task called outside any task runs as a plain function", async () => {
  assert.equal(await double(3), 6);
  assert.equal(square(3), 16);
  assert.equal(await square.aio(3), 16);
  assert.deepEqual(await gather(3), [0, 2, 4]);
  assert.equal(syncParent(3), 17);
  assert.deepEqual([...map(square, [1, 2])], [4, 9]);
  const out: unknown[] = [];
  for await (const r of map.aio(double, [1, 2, 3], { concurrency: 2 })) out.push(r);
  assert.deepEqual(out, [2, 4, 6]);
});

await test("registering a duplicate task name throws", () => {
  assert.throws(() => env.task(async function double() {}), {
    name: "ConfigurationError",
    message: /duplicate task name "replay_test\.double"/,
  });
});

const sleepy = env.task(async function sleepy() {
  // Long enough to be pending after the engine's first idle turn even on a loaded machine.
  await sleep(200);
  return 7;
});
const sleepyParent = env.task(async function sleepyParent() {
  // Long enough to be pending after the engine's first idle turn even on a loaded machine.
  await sleep(200);
  return double(3);
});

await test("a body awaiting a plain timer gets a warning naming the task", async () => {
  const d = await replayWith(sleepy.def, [], emptyHistory());
  assert.equal(completedValue(d), 7);
  assert.equal(d.warnings.length, 1);
  assert.match(
    d.warnings[0]!,
    /^task replay_test\.sleepy awaits something that is neither a child task nor a trace\(\.\.\.\) call/,
  );
  const { final, decisions } = await drive(sleepyParent.def, [], children());
  assert.equal(completedValue(final), 6);
  for (const x of decisions)
    assert.match(x.warnings.join("\n"), /task replay_test\.sleepyParent awaits something/);
});

const careless = env.task(async function careless() {
  void double(1);
  return 5;
});

await test("a child call never awaited is not dispatched, and the engine says so", async () => {
  const d = await replayWith(careless.def, [], emptyHistory());
  assert.equal(completedValue(d), 5);
  assert.deepEqual(d.calls, []);
  assert.match(d.warnings.join("\n"), /never awaited \(first: replay_test\.double\(1\) #0\)/);
});

await test("replay is a function of its history: the same history gives the same decision", async () => {
  const history = new Recorder();
  const first = await replayWith(gatherIdiom.def, [4], history);
  assert.deepEqual(await replayWith(gatherIdiom.def, [4], history), first);
  history.record(first);
  history.outcomes.set(first.calls[1]!.id, ok(2));
  const again = await replayWith(gatherIdiom.def, [4], history);
  assert.deepEqual(await replayWith(gatherIdiom.def, [4], history), again);
  assert.deepEqual(suspended(again).calls, []);
  assert.equal(serialize(again.warnings), "[]");
});

// ---- the deciding member of a combinator ---------------------------------------------------------

const allOf = env.task(async function allOf(xs: number[]) {
  return Promise.all(xs.map((x) => double(x)));
});

/**
 * The member that decided a race (or an all's rejection) on the replay that saw it settle first is
 * recorded, and a later replay that knows more outcomes follows it instead of the first in list order.
 */
await test("a combinator's deciding child is recorded and followed when more outcomes are known", async () => {
  for (const [task, kind, outcomes, expect] of [
    [raceTask, "race", (x: number) => ok(x * 2), { value: 12 }],
    [allOf, "all", (x: number) => fail(new RangeError(`bad ${x}`), 1), { message: /bad 6/ }],
  ] as const) {
    const h = new Recorder();
    const first = suspended(await replayWith(task.def, [[5, 6]], h));
    h.record(first);
    // The second child settles first: the combinator is decided by it.
    const [c5, c6] = first.calls;
    h.outcomes.set(c6!.id, outcomes(6));
    const second = await replayWith(task.def, [[5, 6]], h);
    const decider = second.traces.find((t) => t.key.startsWith(`combinator:${kind}|`));
    assert.ok(decider, `${kind}: the deciding member is recorded`);
    assert.deepEqual(decider.outcome, ok(1));
    h.record(second);
    // A later replay knows both outcomes: it follows the record, not list order.
    h.outcomes.set(c5!.id, outcomes(5));
    const third = await replayWith(task.def, [[5, 6]], h);
    if ("value" in expect) assert.equal(completedValue(third), expect.value);
    else assert.match(failedError(third).message, expect.message);
  }
});

// ---- a gather tallied from its members' deliveries -------------------------------------------------

const boxed = env.task(async function boxed(x: number) {
  return { x };
});
const gatherBesideMember = env.task(async function gatherBesideMember() {
  const log: string[] = [];
  const fs = [double(1), double(2)];
  const all = Promise.all(fs);
  void fs[1]!
    .then(() => log.push("m1"))
    .then(() => log.push("m2"))
    .then(() => log.push("m3"))
    .then(() => log.push("m4"));
  await all.then(() => log.push("all"));
  return log;
});
const gatherThenMembers = env.task(async function gatherThenMembers() {
  const fs = [boxed(1), boxed(2)];
  const values = await Promise.all(fs);
  const same = (await fs[1]) === values[1];
  values[0] = { x: -1 };
  return { same, first: await fs[0] };
});
const failedGatherThenMember = env.task(async function failedGatherThenMember() {
  const fs = [double(1), double(2), double(3)];
  let gathered: unknown;
  try {
    await Promise.all(fs);
  } catch (e) {
    gathered = e;
  }
  let own: unknown;
  try {
    await fs[1];
  } catch (e) {
    own = e;
  }
  return { same: gathered === own, message: (own as TaskError).original.message };
});

await test("a gather of fresh children settles in the microtask the native Promise.all would", async () => {
  // Native: the member's reactions run at ticks 1-4 after it settles, the gather's subscription
  // and element function at 1 and 2, the reaction settling the gather at 3, its `then` at 4.
  const { final } = await drive(gatherBesideMember.def, [], children());
  assert.deepEqual(completedValue(final), ["m1", "m2", "m3", "all", "m4"]);
});

await test("a member awaited after its gather gets the gather's value, whatever the body did to the array", async () => {
  const { final } = await drive(gatherThenMembers.def, [], (c) => ok({ x: arg0(c) as number }));
  assert.deepEqual(completedValue(final), { same: true, first: { x: 1 } });
  const failed = await drive(failedGatherThenMember.def, [], children(failArg(2, 3)));
  assert.deepEqual(completedValue(failed.final), { same: true, message: "bad 2" });
});

test("the embedded engine's replays waiting for a turn share one immediate; a turn asked for as it is delivered is the next", async () => {
  const seen: string[] = [];
  const a = sharedTurnScheduler.turn();
  assert.equal(sharedTurnScheduler.turn(), a, "one immediate for every replay waiting now");
  setImmediate(() => seen.push("an immediate queued after it"));
  await a;
  seen.push("the turn");
  const next = sharedTurnScheduler.turn();
  assert.notEqual(next, a);
  await next;
  seen.push("the next turn");
  assert.deepEqual(seen, ["the turn", "an immediate queued after it", "the next turn"]);
});
