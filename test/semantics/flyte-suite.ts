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
