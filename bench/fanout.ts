/**
 * One benchmark scenario in a fresh process (so peak RSS is its own). Prints one JSON line.
 *   node --import tsx bench/fanout.ts <gather|map|cpu|cpu-serial> <n> [workers]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { init, run, getEngine } from "aloft";
import { shutdown } from "../sdk/run.ts";
import { burn, cpuFanOut, gather, mapped } from "./tasks.ts";

const [kind = "gather", nArg = "1000", workersArg] = process.argv.slice(2);
const n = Number(nArg);
const dir = mkdtempSync(join(tmpdir(), "aloft-bench-"));
await init({
  store: join(dir, "bench.db"),
  ...(workersArg === undefined ? {} : { workers: Number(workersArg) }),
});
await getEngine(); // start workers before the clock
const t0 = performance.now();
let replays = 0;
if (kind === "cpu-serial") {
  for (let i = 0; i < n; i++) burn(i);
} else {
  const r =
    kind === "gather"
      ? await run(gather, n)
      : kind === "map"
        ? await run(mapped, n)
        : await run(cpuFanOut, n);
  await r.result();
  replays = (await getEngine()).replays.get(r.id) ?? 0;
}
const ms = performance.now() - t0;
const rssMB = process.resourceUsage().maxRSS / 1024;
await shutdown();
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({ kind, n, ms, perSecond: (n / ms) * 1000, rssMB, replays }));
