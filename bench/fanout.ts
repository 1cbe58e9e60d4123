/**
 * One Aloft benchmark scenario in a fresh process (so peak RSS is its own). Prints one JSON line.
 *   node --import tsx bench/fanout.ts <gather|sequential|map|cpu|cpu-serial> <n> [concurrency=C] [workers=W] [warm=R]
 *
 * warm=R runs the scenario R times in the one process and measures the last: the engine's steady
 * state once the JIT has compiled its hot paths (a long-lived process), beside the fresh one.
 *
 * pregrow=K, a diagnostic (docs/performance.md, twelfth pass): before the clock, makes K small
 * objects, up to 200,000 of them alive at once, so that V8's young and old generations have grown
 * and their pages have been touched, as in a process that has done other work; the JIT has not
 * seen the engine's code. `faults` is the minor page faults of the measured part (fresh memory
 * the kernel had to map), `sysMs` its system CPU time.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { init, run, getEngine } from "aloft";
import { shutdown } from "../sdk/run.ts";
import { burn, cpuFanOut, gather, mapped, sequential } from "./tasks.ts";

const [kind = "gather", nArg = "1000", ...rest] = process.argv.slice(2);
const flags = new Map(rest.map((r) => r.split("=") as [string, string]));
const n = Number(nArg);
const concurrency = flags.has("concurrency") ? Number(flags.get("concurrency")) : undefined;
const workers = flags.has("workers") ? Number(flags.get("workers")) : undefined;
const warm = Number(flags.get("warm") ?? 1);
const dir = mkdtempSync(join(tmpdir(), "aloft-bench-"));
await init({ store: join(dir, "bench.db"), ...(workers === undefined ? {} : { workers }) });
await getEngine(); // start workers before the clock
const scenario = async (): Promise<string> => {
  const r =
    kind === "gather"
      ? await run(gather, n)
      : kind === "sequential"
        ? await run(sequential, n)
        : kind === "map"
          ? await run(mapped, n, concurrency)
          : await run(cpuFanOut, n);
  const result = await r.result();
  if (kind !== "cpu" && result !== n) throw new Error(`${kind} of ${n} returned ${String(result)}`);
  return r.id;
};
for (let i = 1; i < warm; i++) await scenario();
if (flags.has("pregrow")) pregrow(Number(flags.get("pregrow")));
const faults0 = process.resourceUsage().minorPageFault;
const t0 = performance.now();
const cpu0 = process.cpuUsage();
const engine0 = engineThreadNs();
const mark0 = process.hrtime.bigint();
let replays = 0;
if (kind === "cpu-serial") {
  for (let i = 0; i < n; i++) burn(i);
} else {
  replays = (await getEngine()).replays.get(await scenario()) ?? 0;
}
const ms = performance.now() - t0;
// The measured window on the profiler's clock (bench/profile.ts), in microseconds.
const window = { from: Number(mark0 / 1000n), to: Number(process.hrtime.bigint() / 1000n) };
const cpu = process.cpuUsage(cpu0);
// CPU time of every thread: steadier than wall time on a machine shared with other work.
const cpuMs = (cpu.user + cpu.system) / 1000;
// The engine thread's alone (Linux): on a 2-core machine the collector's and compiler's helper
// threads take the other core, and this thread is the one a fan-out waits for.
const engine1 = engineThreadNs();
const engineCpuMs = engine0 === undefined || engine1 === undefined ? undefined : (engine1 - engine0) / 1e6;
const usage = process.resourceUsage();
const rssMB = usage.maxRSS / 1024;
const faults = usage.minorPageFault - faults0;
const sysMs = cpu.system / 1000;
await shutdown();
rmSync(dir, { recursive: true, force: true });
console.log(
  JSON.stringify({
    kind,
    n,
    ms,
    cpuMs,
    engineCpuMs,
    sysMs,
    faults,
    perSecond: (n / ms) * 1000,
    rssMB,
    replays,
    window,
  }),
);

/** Makes `count` short-lived objects, a sliding 200,000 of them alive (see pregrow= above). */
function pregrow(count: number): void {
  let live: { i: number; list: number[]; text: string }[] = [];
  for (let i = 0; i < count; i++) {
    live.push({ i, list: [i], text: `x${i}` });
    if (live.length >= 200_000) live = [];
  }
}

/** Nanoseconds this process's main thread has run on a CPU (Linux's schedstat), if readable. */
function engineThreadNs(): number | undefined {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, "utf8").split(" ")[0]);
  } catch {
    return undefined;
  }
}
