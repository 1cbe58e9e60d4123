/**
 * Scenarios of Flyte 2's async model beyond the basics (issue 19), run by the semantic suite on
 * every backend: per-call overrides, traced generators, cancelling one future, maps over bound
 * tasks and with completion rules.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import type { RunStatus } from "aloft";
import { TERMINAL, flatten } from "../helpers/status.ts";
import type { Backend } from "./backend.ts";
import { bump, count } from "./tasks.ts";
import * as f from "./tasks-flyte.ts";

function allTerminal(s: RunStatus): void {
  for (const n of flatten(s.root)) assert.ok(TERMINAL.has(n.status), `${n.task} ${n.id} left ${n.status}`);
}

export function flyteScenarios(backend: () => Backend, key: () => string): void {
  it("task.override: retries for one call site (the registered task has none)", async () => {
    const b = backend();
    const k = key();
    const r = await b.run(f.callsFailsTwice, k, 3);
    assert.equal(await r.result(), 3);
    const child = (await r.status()).root!.children[0]!;
    assert.equal(child.task, "flyte.failsTwice", "the call is still the task's");
    assert.equal(child.attempts, 3);
    const plain = await b.run(f.callsFailsTwice, key(), 0);
    await assert.rejects(plain.result(), /attempt 1 fails/);
    assert.deepEqual(await (await b.run(f.mapsOverridden, key())).result(), [3, 3, 3]);
  });

  it("task.override: memoryMiB runs the call on its environment's smallest executor of at least that size", async () => {
    const b = backend();
    const before = b.executorMessages?.();
    const got = await (await b.run(f.asksForMemory)).result();
    // Only the deployed shape runs each function in a process of its own memory size (its sandboxes
    // carry the template's MemorySize); one process has one heap for every call (docs/async.md).
    assert.deepEqual(got, b.name === "aws-deployed" ? ["1024", "2048"] : ["-", "-"]);
    if (before) {
      const after = b.executorMessages!();
      assert.equal(
        (after["flyte@2048"] ?? 0) - (before["flyte@2048"] ?? 0),
        1,
        "one call went to the 2048 MiB queue",
      );
    }
    await assert.rejects(
      (await b.run(f.asksForTooMuch)).result(),
      /memoryMiB 8192 is more than environment "flyte" deploys \(1024, 2048 MiB\)/,
    );
  });

  it("task.override: a timeout for one call site", async () => {
    const r = await backend().run(f.overridesTimeout);
    assert.equal(await r.result(), "TaskTimeoutError");
    assert.equal((await r.status()).root!.children[0]!.status, "TIMED_OUT");
  });

  it("task.override: cache for one call site reuses the result across runs", async () => {
    const b = backend();
    const k = key();
    assert.equal(await (await b.run(f.cachesByOverride, k)).result(), 2);
    const second = await b.run(f.cachesByOverride, k);
    assert.equal(await second.result(), 2);
    assert.equal(count(`counted-${k}`), 1, "the second run reused the first one's result");
    assert.ok((await second.status()).root!.children[0]!.cached);
  });

  it("trace of a generator (sync and async) records what it yields; replays read it back", async () => {
    const k = key();
    const r = await backend().run(f.tracesGenerators, k);
    assert.deepEqual(await r.result(), { lines: ["a", "b"], nums: [1, 2, 3], doubled: 6 });
    assert.equal(count(`gen-${k}`), 1);
    assert.equal(count(`agen-${k}`), 1);
  });
}

export function boundMapScenarios(backend: () => Backend): void {
  it("map and map.aio over a function of the item that calls one task: that task's group, results and errors", async () => {
    const b = backend();
    const r = await b.run(f.mapsBound, 5);
    assert.deepEqual(await r.result(), ["s:0", "s:10", "s:20", "TaskError:flyte.score", "s:40"]);
    const s = await r.status();
    assert.ok(s.groups.some((g) => g.group === "score" && g.total === 5));
    assert.ok(s.root!.children.every((c) => c.task === "flyte.score"));
    const sync = await b.run(f.mapsBoundSync, 4);
    assert.deepEqual(await sync.result(), ["t:0", "t:1", "t:2", "TaskError:flyte.score"]);
  });

  it("map over a function that calls several tasks, or none, fails saying what to pass", async () => {
    const b = backend();
    await assert.rejects(
      (await b.run(f.mapsTwoTasks)).result(),
      (e: Error) =>
        /called 2 tasks \(sem\.double, sem\.double\) for item 0/.test(e.message) &&
        /map\(\(id\) => score\.aio\(id, name, config\), ids\)/.test(e.message),
    );
    await assert.rejects((await b.run(f.mapsNoTask)).result(), /called no task for item 0/);
  });
}

/**
 * The run's descendants as `task:STATUS`, sorted, once every one has ended: on AWS the children of
 * a cancelled child are swept by the coordinator after the parent has moved on (docs/aws.md).
 */
async function childStates(r: { status(): Promise<RunStatus> }): Promise<string[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const nodes = flatten((await r.status()).root).slice(1);
    if (nodes.every((n) => TERMINAL.has(n.status)) || Date.now() > deadline)
      return nodes.map((n) => `${n.task.slice(n.task.indexOf(".") + 1)}:${n.status}`).sort();
    await new Promise((res) => setTimeout(res, 100));
  }
}

export function cancelScenarios(backend: () => Backend, key: () => string): void {
  it("future.cancel() of a call never sent: it never starts, and await rejects with CancelledError", async () => {
    const k = key();
    const r = await backend().run(f.cancelsQueued, k);
    assert.deepEqual(await r.result(), ["CancelledError", 2]);
    assert.deepEqual(await childStates(r), ["double:SUCCEEDED", "longRunning:CANCELLED"]);
    assert.equal(count(`started-${k}`), 0, "the cancelled child never started");
  });

  it("future.cancel() of a running child: it is cancelled as a run cancel does", async () => {
    const k = key();
    const r = await backend().run(f.cancelsRunning, k);
    assert.equal(await r.result(), "CancelledError");
    assert.deepEqual(await childStates(r), ["longRunning:CANCELLED", "started:SUCCEEDED"]);
    assert.equal(count(`finished-${k}`), 0, "the parent did not wait for the child");
  });

  it("future.cancel() of a child with children: its descendants stop too", async () => {
    const k = key();
    const r = await backend().run(f.cancelsParent, k);
    assert.equal(await r.result(), "CancelledError");
    assert.deepEqual(await childStates(r), [
      "longParent:CANCELLED",
      "longRunning:CANCELLED",
      "longRunning:CANCELLED",
      "started:SUCCEEDED",
    ]);
  });

  it("future.cancel() of a future the body has seen settle is a no-op", async () => {
    const r = await backend().run(f.cancelsDone);
    assert.deepEqual(await r.result(), [4, "value:4"]);
    assert.deepEqual(await childStates(r), ["double:SUCCEEDED"]);
  });

  it("a circuit breaker: when a sibling fails, the body cancels the rest", async () => {
    const k = key();
    const r = await backend().run(f.circuitBreaker, k);
    assert.deepEqual(await r.result(), ["CancelledError", "CancelledError"]);
    assert.deepEqual(await childStates(r), [
      "boomSoon:FAILED",
      "longRunning:CANCELLED",
      "longRunning:CANCELLED",
    ]);
  });

  it("leaving a map.aio loop early cancels the map's children still queued or running", async () => {
    const k = key();
    const r = await backend().run(f.leavesMapEarly, k, 8);
    try {
      assert.equal(await r.result(), 0);
      // Item 0 ended; items 1 and 2 (the window of 2 after item 0) were running; none after started.
      assert.deepEqual(await childStates(r), [...Array<string>(7).fill("tick:CANCELLED"), "tick:SUCCEEDED"]);
      for (const i of [3, 4, 5, 6, 7]) assert.equal(count(`tick-${k}-${i}`), 0, `item ${i} never started`);
      allTerminal(await r.status());
    } finally {
      bump(`stop-${k}`); // lets the cancelled items' bodies (still running, on some backends) end
    }
  });
}

export function ruleScenarios(backend: () => Backend): void {
  const run = async (c: f.RuleCase) => (await backend().run(f.mapsWithRules, c)).result();
  for (const aio of [false, true]) {
    const kind = aio ? "map.aio" : "map";
    it(`${kind} minSuccessful: ends once that many succeeded, the rest cancelled in place`, async () => {
      const b = backend();
      const r = await b.run(f.mapsWithRules, { n: 6, fails: [], slow: [2, 3, 4, 5], minSuccessful: 2, aio });
      assert.deepEqual(await r.result(), [
        0,
        1,
        "CancelledError",
        "CancelledError",
        "CancelledError",
        "CancelledError",
      ]);
      assert.deepEqual((await childStates(r)).filter((s) => s.endsWith("CANCELLED")).length, 4);
      // 0: nothing needed, every item cancelled before it starts; all: as a plain map.
      assert.deepEqual(await run({ n: 3, fails: [], slow: [0, 1, 2], minSuccessful: 0, aio }), [
        "CancelledError",
        "CancelledError",
        "CancelledError",
      ]);
      assert.deepEqual(await run({ n: 3, fails: [1], slow: [], minSuccessful: 3, aio }), [0, "TaskError", 2]);
      assert.deepEqual(await run({ n: 3, fails: [], slow: [], minSuccessful: 9, aio }), [0, 1, 2]);
    });

    it(`${kind} toleratedFailures: fails with the counts once more failed, the rest cancelled`, async () => {
      const b = backend();
      const r = await b.run(f.mapsWithRules, {
        n: 6,
        fails: [0, 1],
        slow: [2, 3, 4, 5],
        toleratedFailures: 1,
        aio,
      });
      await assert.rejects(r.result(), (e: Error) => {
        assert.match(e.message, /MapFailedError/);
        assert.match(
          e.message,
          /2 of 6 items failed, more than the 1 tolerated \(0 succeeded, 4 cancelled\)/,
        );
        return true;
      });
      assert.equal((await childStates(r)).filter((s) => s.endsWith("CANCELLED")).length, 4);
      // 0 tolerated: the first failure fails it.
      await assert.rejects(
        run({ n: 2, fails: [0], slow: [1], toleratedFailures: 0, aio }),
        /1 of 2 items failed/,
      );
      // Percentages round down: 10% of 7 items tolerates none; 50% of 5 tolerates 2.
      await assert.rejects(
        run({ n: 7, fails: [3], slow: [], toleratedFailures: "10%", aio }),
        /more than the 0/,
      );
      assert.deepEqual(await run({ n: 5, fails: [0, 1], slow: [], toleratedFailures: "50%", aio }), [
        "TaskError",
        "TaskError",
        2,
        3,
        4,
      ]);
      await assert.rejects(
        run({ n: 5, fails: [0, 1, 2], slow: [], toleratedFailures: "50%", aio }),
        /3 of 5 items failed, more than the 2 tolerated/,
      );
      // Everything tolerated: a map that ends normally.
      assert.deepEqual(await run({ n: 2, fails: [0, 1], slow: [], toleratedFailures: "100%", aio }), [
        "TaskError",
        "TaskError",
      ]);
    });
  }

  it("bad completion rules are rejected with a clear error", async () => {
    const b = backend();
    await assert.rejects(
      (await b.run(f.badRules, { minSuccessful: -1 })).result(),
      /minSuccessful: must be a whole number >= 0/,
    );
    await assert.rejects(
      (await b.run(f.badRules, { toleratedFailures: "ten%" })).result(),
      /toleratedFailures: must be a count of failures/,
    );
    await assert.rejects(
      (await b.run(f.badRules, { toleratedFailures: "150%" })).result(),
      /toleratedFailures/,
    );
    await assert.rejects(
      (await b.run(f.badRules, { minSucessful: 1 })).result(),
      /unknown option "minSucessful"/,
    );
  });
}
