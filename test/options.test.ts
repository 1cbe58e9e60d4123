/** Every options object rejects unknown keys (naming the valid ones) and wrong durations (issue 19 §4). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { TaskEnvironment } from "../sdk/task.ts";
import { map } from "../sdk/map.ts";
import { init } from "../sdk/run.ts";
import { retryDelayMs } from "../sdk/core/task-def.ts";
import { parseDuration } from "../sdk/options.ts";

const env = new TaskEnvironment({ name: "options_test" });
const bad = (fn: () => unknown, ...patterns: RegExp[]): void =>
  assert.throws(fn, (e: Error) => {
    assert.equal(e.name, "ConfigurationError");
    for (const p of patterns) assert.match(e.message, p);
    return true;
  });

await test("TaskEnvironment: an unknown key is named with the valid ones; durations in every form", () => {
  bad(
    () => new TaskEnvironment({ name: "opt_env1", memory: 512 } as never),
    /TaskEnvironment opt_env1: unknown option "memory"/,
    /valid options are name, retries, timeout, cache, memoryMiB, concurrency, env/,
  );
  bad(() => new TaskEnvironment({ name: "opt_env2", timeout: "5 minutes" } as never), /timeout/, /"10ms"/);
  assert.doesNotThrow(() => new TaskEnvironment({ name: "opt_env3", timeout: "7d", retries: 2 }));
});

await test("task options, retries and cache: unknown keys named, with the valid ones", () => {
  bad(
    () => env.task(async function t1() {}, { retry: 2 } as never),
    /task options_test.t1: unknown option "retry"/,
  );
  bad(
    () =>
      env.task(async function t2() {}, {
        retries: { count: 2, backoff: { base: "10ms", cap: "30ms" } },
      } as never),
    /unknown option "retries.backoff.cap"/,
    /valid options of retries.backoff are base, factor, max, jitter, baseMs, capMs/,
  );
  bad(
    () => env.task(async function t3() {}, { retries: { count: 2, delay: 5 } } as never),
    /"retries.delay"/,
  );
  bad(() => env.task(async function t4() {}, { cache: { version: "1", ttl: 5 } } as never), /"cache.ttl"/);
  bad(
    () => env.task(async function t5() {}, { retries: { count: 1, backoff: { base: "10 ms" } } } as never),
    /10ms/,
  );
});

await test("retries: { count, backoff: { base, factor, max, jitter } } in duration forms; baseMs/capMs still read", () => {
  const t = env.task(async function t6() {}, {
    retries: { count: 3, backoff: { base: "10ms", factor: 3, max: "50ms" } },
  });
  assert.deepEqual(t.def.retries, { count: 3, backoff: { baseMs: 10, factor: 3, capMs: 50 } });
  assert.deepEqual(
    [1, 2, 3].map((a) => retryDelayMs(t.def.retries, a)),
    [10, 30, 50],
  );
  const old = env.task(async function t7() {}, { retries: { count: 1, backoff: { baseMs: 5, capMs: 9 } } });
  assert.deepEqual(old.def.retries.backoff, { baseMs: 5, factor: 2, capMs: 9 });
  const j = env.task(async function t8() {}, { retries: { count: 1, backoff: { base: "1s", jitter: 0.5 } } });
  assert.equal(
    retryDelayMs(j.def.retries, 1, () => 1),
    500,
  );
  assert.equal(
    retryDelayMs(j.def.retries, 1, () => 0),
    1000,
  );
});

await test("map options: an unknown key is named with the valid ones", () => {
  const c = env.task(async function c(x: number) {
    return x;
  });
  bad(
    () => map(c, [1], { concurency: 2 } as never),
    /map\(options_test.c\) options: unknown option "concurency"/,
    /valid options are concurrency, returnExceptions, group/,
  );
});

await test("init: an unknown key is named with the valid ones", async () => {
  await assert.rejects(
    init({ stor: ":memory:" } as never),
    /init: unknown option "stor"; valid options are mode, store, workers, aws, outputsFile/,
  );
});

await test("durations: the same forms everywhere", () => {
  assert.deepEqual(
    ["10ms", "90s", "5m", "2h", "7d", 250].map((d) => parseDuration(d as never, "x")),
    [10, 90_000, 300_000, 7_200_000, 604_800_000, 250],
  );
  assert.throws(() => parseDuration("5 min" as never, "x"), /is not a duration/);
});

await test("AloftClient config and options: an unknown key is named with the valid ones", async () => {
  const { resolveClientConfig } = await import("../sdk/aws/client.ts");
  const cfg = { table: "t", coordinatorQueue: "q", executorQueues: { e: "u" } };
  assert.equal(resolveClientConfig(cfg), cfg);
  bad(
    () => resolveClientConfig({ ...cfg, tableName: "t" } as never),
    /AloftClient config: unknown option "tableName"/,
    /valid options are table, bucket, coordinatorQueue, executorQueues, region, retentionDays/,
  );
  bad(() => resolveClientConfig(cfg, { outputFile: "x" } as never), /unknown option "outputFile"/);
});
