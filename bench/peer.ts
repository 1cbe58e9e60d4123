/**
 * The peer's side of one benchmark cell, in a fresh process: the AWS Lambda durable functions SDK
 * (`@aws/durable-execution-sdk-js`) on its local test runner (`@aws/durable-execution-sdk-js-testing`),
 * running the same fan-out as the Aloft scenario beside it. Prints one JSON line.
 *
 *   node --import tsx bench/peer.ts <steps|sequential|map|invokes|invoke-map> <n> [warm=R]
 *
 * steps       Promise.all of n no-op `ctx.step`s (in-process, checkpointed)
 * sequential  n no-op `ctx.step`s, each awaited before the next
 * map         `ctx.map` of n items, maxConcurrency 50, each a no-op step
 * invokes     Promise.all of n `ctx.invoke`s of a registered no-op function (a child execution each)
 * invoke-map  `ctx.map` of n items, maxConcurrency 50, each a child invoke
 *
 * warm=R runs it R times on one runner and measures the last (as bench/fanout.ts does).
 */
import { withDurableExecution } from "@aws/durable-execution-sdk-js";
import type { DurableContext } from "@aws/durable-execution-sdk-js";
import { LocalDurableTestRunner } from "@aws/durable-execution-sdk-js-testing";

const [kind = "steps", nArg = "1000", ...rest] = process.argv.slice(2);
const warm = Number(rest.find((r) => r.startsWith("warm="))?.slice(5) ?? 1);
const n = Number(nArg);
const items = (k: number): number[] => Array.from({ length: k }, (_, i) => i);

const handler = withDurableExecution(async (event: { n: number }, ctx: DurableContext) => {
  switch (kind) {
    case "steps":
      return (await Promise.all(items(event.n).map((i) => ctx.step(async () => i)))).length;
    case "sequential": {
      let count = 0;
      for (const i of items(event.n)) if ((await ctx.step(async () => i)) === i) count++;
      return count;
    }
    case "map":
      return (
        await ctx.map("items", items(event.n), async (c, i) => c.step(async () => i), { maxConcurrency: 50 })
      ).successCount;
    case "invokes":
      return (await Promise.all(items(event.n).map((i) => ctx.invoke("noop", i)))).length;
    case "invoke-map":
      return (
        await ctx.map("items", items(event.n), async (c, i) => c.invoke("noop", i), { maxConcurrency: 50 })
      ).successCount;
    default:
      throw new Error(`unknown peer scenario ${kind}`);
  }
});

// Without `skipTime`: it installs @sinonjs/fake-timers (no scenario here waits, so it skips nothing),
// whose `performance.now()` advances 20 ms at a time on a real interval timer that is late while the
// runner keeps the event loop busy. Timed with that clock, a 10,000-step run that took 3.7 s read
// 2.1 s; and the runner's own timers, on it, cost a step awaited in turn about 23 ms instead of 5
// (docs/performance.md, "The peer").
await LocalDurableTestRunner.setupTestEnvironment({ skipTime: false });
const runner = new LocalDurableTestRunner({ handlerFunction: handler });
runner.registerFunction("noop", async (e: unknown) => e);
for (let i = 1; i < warm; i++) {
  const e = await runner.run({ payload: { n } });
  if (e.getStatus() !== "SUCCEEDED") throw new Error(`warm-up run ${i} ended ${e.getStatus()}`);
}
const t0 = performance.now();
const cpu0 = process.cpuUsage();
const execution = await runner.run({ payload: { n } });
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
// CPU time of every thread: steadier than wall time on a machine shared with other work.
const cpuMs = (cpu.user + cpu.system) / 1000;
const ok = execution.getStatus() === "SUCCEEDED" && execution.getResult() === n;
const rssMB = process.resourceUsage().maxRSS / 1024;
await LocalDurableTestRunner.teardownTestEnvironment();
console.log(JSON.stringify({ kind, n, ms, cpuMs, rssMB, ok }));
// The runner's checkpoint server can hold the event loop after teardown.
process.exit(0);
