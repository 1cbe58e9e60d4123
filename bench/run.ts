/**
 * The embedded engine's benchmarks, each Aloft scenario beside the same N on the AWS Lambda durable
 * functions SDK's local test runner (the peer, bench/peer.ts). Every cell runs in fresh processes,
 * BENCH_RUNS times (default 3), and shows the median; ratios are Aloft's time over the peer's, both
 * taken in this run, their processes taking turns, so a loaded machine moves both sides alike.
 *
 *   npm run bench                          # everything (about 15 minutes on 2 cores)
 *   BENCH_RUNS=5 BENCH_RUNS_1M=3 npm run bench   # more processes per cell (the million: 1 by default)
 *   npm run bench -- --quick               # N = 1,000 / 10,000 only, no CPU or start-up cells
 *   npm run bench -- --cells gather-10k,map50-10k   # chosen cells
 *   npm run bench -- --json out.json       # also write every sample
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, totalmem } from "node:os";
import { fileURLToPath } from "node:url";

interface Sample {
  ms: number;
  /** CPU time of all the process's threads over the measured part. */
  cpuMs: number;
  rssMB: number;
  replays?: number;
  ok?: boolean;
}
interface Cell {
  id: string;
  label: string;
  n: number;
  aloft: string[];
  /** The peer's scenario beside it, if any (bench/peer.ts), and its flags. */
  peer?: string;
  peerArgs?: string[];
  /** Fresh processes for this cell, when not BENCH_RUNS. */
  runs?: number;
}

const argv = process.argv.slice(2);
const arg = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const quick = argv.includes("--quick");
const only = arg("--cells")?.split(",");
const jsonOut = arg("--json");
const runs = Number(process.env["BENCH_RUNS"] ?? 3);
/** A million-child gather takes minutes: one process unless asked for more. */
const millionRuns = Number(process.env["BENCH_RUNS_1M"] ?? 1);
const here = (f: string): string => fileURLToPath(new URL(f, import.meta.url));

const CELLS: Cell[] = [
  { id: "gather-1k", label: "gather (Promise.all)", n: 1_000, aloft: ["gather"], peer: "steps" },
  { id: "gather-1k-invokes", label: "gather vs child invokes", n: 1_000, aloft: ["gather"], peer: "invokes" },
  { id: "gather-10k", label: "gather (Promise.all)", n: 10_000, aloft: ["gather"], peer: "steps" },
  {
    id: "gather-10k-warm",
    label: "gather, 4th in a process",
    n: 10_000,
    aloft: ["gather", "warm=4"],
    peer: "steps",
    peerArgs: ["warm=4"],
  },
  {
    id: "map50-1k-invokes",
    label: "map c=50 vs child invokes",
    n: 1_000,
    aloft: ["map", "concurrency=50"],
    peer: "invoke-map",
  },
  { id: "map50-10k", label: "map, concurrency 50", n: 10_000, aloft: ["map", "concurrency=50"], peer: "map" },
  {
    id: "sequential-1k",
    label: "one after another",
    n: 1_000,
    aloft: ["sequential"],
    peer: "sequential",
  },
  { id: "gather-100k", label: "gather (Promise.all)", n: 100_000, aloft: ["gather"] },
  { id: "gather-1m", label: "gather (Promise.all)", n: 1_000_000, aloft: ["gather"], runs: millionRuns },
];

function once(script: string, args: string[]): Sample {
  const out = execFileSync(process.execPath, ["--import", "tsx", here(script), ...args], {
    encoding: "utf8",
    maxBuffer: 1 << 24,
  });
  return JSON.parse(out.trim().split("\n").pop()!) as Sample;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const record: Record<string, unknown> = {};
interface Spec {
  key: string;
  script: string;
  args: string[];
}
/**
 * Runs each spec `times` times, taking turns (a, b, a, b, ...): on a shared machine whose speed
 * drifts over minutes, both sides of a ratio then sample the same minutes. Returns their medians.
 */
function interleaved(specs: Spec[], times = runs): Sample[] {
  const samples: Sample[][] = specs.map(() => []);
  // Progress on a terminal only, cleared before the cell's row: in a file it was glued to the rows.
  const tty = process.stderr.isTTY;
  for (let i = 0; i < times; i++)
    specs.forEach((sp, j) => {
      if (tty) process.stderr.write(`\r\x1b[K  ${sp.key} ${i + 1}/${times}`);
      samples[j]!.push(once(sp.script, sp.args));
    });
  if (tty) process.stderr.write("\r\x1b[K");
  return specs.map((sp, j) => {
    const got = samples[j]!;
    record[sp.key] = got;
    if (got.some((s) => s.ok === false)) throw new Error(`${sp.key}: the peer's run did not succeed`);
    return {
      ms: median(got.map((s) => s.ms)),
      cpuMs: median(got.map((s) => s.cpuMs)),
      rssMB: median(got.map((s) => s.rssMB)),
      replays: median(got.map((s) => s.replays ?? 0)),
    };
  });
}

const fmt = (x: number, d = 0): string =>
  x.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
const time = (ms: number): string => (ms >= 10_000 ? `${fmt(ms / 1000, 1)} s` : `${fmt(ms)} ms`);
const wanted = (id: string): boolean =>
  only ? only.includes(id) : !quick || !["gather-100k", "gather-1m", "cpu", "startup"].includes(id);

const cpu = cpus()[0]?.model ?? "unknown CPU";
console.log(
  `Aloft embedded engine (SQLite store, ${availableParallelism()} worker threads) beside the AWS durable ` +
    `execution SDK 2.4 on its local test runner 1.1.4\n` +
    `machine: ${availableParallelism()} cores (${cpu}), ${fmt(totalmem() / 2 ** 30)} GiB, Node ${process.version}; ` +
    `load average at start ${loadavg()
      .map((l) => fmt(l, 1))
      .join(" ")}; median of ${runs} fresh processes per cell\n`,
);
console.log(
  "scenario                        N       Aloft        peer   Aloft/peer   CPU Aloft/peer    Aloft CPU     peer CPU   Aloft µs/child   Aloft CPU µs/child   Aloft RSS   peer RSS   replays",
);
const results = new Map<string, Sample>();
for (const c of CELLS) {
  if (!wanted(c.id)) continue;
  const specs: Spec[] = [
    { key: `${c.id} aloft`, script: "fanout.ts", args: [c.aloft[0]!, String(c.n), ...c.aloft.slice(1)] },
  ];
  if (c.peer)
    specs.push({
      key: `${c.id} peer`,
      script: "peer.ts",
      args: [c.peer, String(c.n), ...(c.peerArgs ?? [])],
    });
  const [a, p] = interleaved(specs, c.runs) as [Sample, Sample | undefined];
  results.set(c.id, a);
  const ratio = p ? `${fmt(a.ms / p.ms, 2)} (${fmt(p.ms / a.ms, 1)}x)` : "—";
  const cpuRatio = p ? fmt(a.cpuMs / p.cpuMs, 2) : "—";
  console.log(
    `${c.label.padEnd(26)} ${fmt(c.n).padStart(9)} ${time(a.ms).padStart(11)} ${(p ? time(p.ms) : "—").padStart(11)}` +
      `  ${ratio.padStart(11)} ${cpuRatio.padStart(16)} ${time(a.cpuMs).padStart(12)} ${(p ? time(p.cpuMs) : "—").padStart(12)}` +
      ` ${fmt((a.ms * 1000) / c.n).padStart(16)} ${fmt((a.cpuMs * 1000) / c.n).padStart(20)} ${`${fmt(a.rssMB)} MB`.padStart(11)}` +
      ` ${(p ? `${fmt(p.rssMB)} MB` : "—").padStart(10)} ${fmt(a.replays ?? 0).padStart(9)}`,
  );
}

const g1k = results.get("gather-1k");
const g10k = results.get("gather-10k");
const m10k = results.get("map50-10k");
const g100k = results.get("gather-100k");
const g1m = results.get("gather-1m");
console.log("");
if (g10k && m10k) console.log(`map c=50 / gather at 10,000: ${fmt(m10k.ms / g10k.ms, 2)} (target <= 1.3)`);
if (g1k && g100k)
  console.log(
    `peak RSS growth from 1,000 to 100,000 children: ${fmt(g100k.rssMB - g1k.rssMB)} MB ` +
      `(${fmt(((g100k.rssMB - g1k.rssMB) * 1024) / 99_000, 2)} KB per child; target < 150 MB)`,
  );
if (g100k && g1m)
  console.log(
    `1,000,000 children (${millionRuns} run${millionRuns > 1 ? "s" : ""}): ${time(g1m.ms)}, peak RSS ${fmt(g1m.rssMB)} MB (target < 1,536); ` +
      `time per child ${fmt((g1m.ms * 1000) / 1e6)} µs vs ${fmt((g100k.ms * 1000) / 1e5)} µs at 100,000 ` +
      `(ratio ${fmt(g1m.ms / 10 / g100k.ms, 2)}; 1.00 is linear)`,
  );

if (wanted("cpu")) {
  const cpuN = availableParallelism() * 4;
  const [serial, parallel] = interleaved([
    { key: "cpu serial", script: "fanout.ts", args: ["cpu-serial", String(cpuN)] },
    { key: "cpu pool", script: "fanout.ts", args: ["cpu", String(cpuN)] },
  ]) as [Sample, Sample];
  const speedup = serial.ms / parallel.ms;
  console.log(
    `CPU-bound fan-out of ${cpuN} children: one after another ${time(serial.ms)}, Promise.all on the pool ` +
      `${time(parallel.ms)}: ${fmt(speedup, 2)}x = ${fmt(speedup / availableParallelism(), 2)} x cores (target >= 0.9)`,
  );
}

if (wanted("startup")) {
  // The built path (bench/startup.ts) runs the checkout's dist/: build it from this tree first.
  execFileSync("npm", ["run", "build"], { cwd: here(".."), stdio: "ignore" });
  const samples = Array.from(
    { length: runs },
    () => once("startup.ts", []) as unknown as Record<string, number>,
  );
  record["startup"] = samples;
  const m = (k: string): number => median(samples.map((s) => s[k]!));
  console.log(
    `aloft run start-up (node alone ${time(m("nodeMs"))}): first child running ${time(m("firstChildMs"))} ` +
      `after the command from this checkout's sources through tsx (aloft --help ${time(m("helpMs"))}; whole run ` +
      `${time(m("runMs"))}), ${time(m("builtFirstChildMs"))} from the built package installed in a project ` +
      `(aloft --help ${time(m("builtHelpMs"))}; whole run ${time(m("builtRunMs"))})`,
  );
}
console.log(
  `\nload average at end ${loadavg()
    .map((l) => fmt(l, 1))
    .join(" ")}`,
);
if (jsonOut) writeFileSync(jsonOut, JSON.stringify(record, null, 1));
