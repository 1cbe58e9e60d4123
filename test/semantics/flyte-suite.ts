/**
 * Scenarios of Flyte 2's async model beyond the basics (issue 19), run by the semantic suite on
 * every backend: per-call overrides, traced generators, cancelling one future, maps over bound
 * tasks and with completion rules.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import type { Backend } from "./backend.ts";
import { count } from "./tasks.ts";
import * as f from "./tasks-flyte.ts";

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
