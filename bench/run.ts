/**
 * Embedded-engine benchmarks (SQLite store, default worker pool). Each scenario runs in a fresh
 * process, several times; the figures are medians.
 *
 *   npm run bench              # N = 1,000 / 10,000 / 100,000, 3 runs each
 *   npm run bench -- --quick   # N = 1,000 / 10,000 only
 */
import { execFileSync } from "node:child_process";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";

interface Sample {
  kind: string;
  n: number;
  ms: number;
  perSecond: number;
  rssMB: number;
  replays: number;
}

const quick = process.argv.includes("--quick");
const runs = Number(process.env["BENCH_RUNS"] ?? 3);
const script = fileURLToPath(new URL("./fanout.ts", import.meta.url));

function once(kind: string, n: number): Sample {
  const out = execFileSync(process.execPath, ["--import", "tsx", script, kind, String(n)], {
    encoding: "utf8",
  });
  return JSON.parse(out.trim().split("\n").pop()!) as Sample;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

function measure(kind: string, n: number): Sample {
  const samples = Array.from({ length: runs }, () => once(kind, n));
  return {
    kind,
    n,
    ms: median(samples.map((s) => s.ms)),
    perSecond: median(samples.map((s) => s.perSecond)),
    rssMB: median(samples.map((s) => s.rssMB)),
    replays: median(samples.map((s) => s.replays)),
  };
}

const fmt = (x: number, d = 0): string =>
  x.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });

console.log(
  `Aloft embedded engine, ${availableParallelism()} cores, Node ${process.version}, median of ${runs} runs\n`,
);
console.log("scenario            N   wall ms  children/s  peak RSS MB  parent replays");
for (const kind of ["gather", "map"]) {
  for (const n of quick ? [1_000, 10_000] : [1_000, 10_000, 100_000]) {
    const s = measure(kind, n);
    const label = kind === "gather" ? "Promise.all" : "map.aio";
    console.log(
      `${label.padEnd(12)} ${fmt(n).padStart(8)}  ${fmt(s.ms).padStart(8)}  ${fmt(s.perSecond).padStart(10)}  ${fmt(s.rssMB).padStart(11)}  ${fmt(s.replays).padStart(14)}`,
    );
  }
}

const cpuN = availableParallelism() * 4;
const serial = measure("cpu-serial", cpuN);
const parallel = measure("cpu", cpuN);
const speedup = serial.ms / parallel.ms;
console.log(
  `\nCPU-bound fan-out of ${cpuN} children: one after another ${fmt(serial.ms)} ms, ` +
    `Promise.all on the pool ${fmt(parallel.ms)} ms: speed-up ${fmt(speedup, 2)}x ` +
    `(${fmt(speedup / availableParallelism(), 2)} x cores; target >= 0.8 x cores)`,
);
console.log(
  "\nTargets (2 cores): 10,000 children <= 1 s; 100,000 <= 10 s with peak RSS <= 500 MB; a gather resumes its parent once.",
);
