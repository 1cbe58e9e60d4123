/**
 * Where an Aloft child's time goes: runs one bench/fanout.ts scenario under the V8 CPU profiler and
 * sums the engine thread's samples inside the measured window by what they were doing.
 *
 *   npm run bench:profile -- gather 10000 [workers=0]
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

const args = process.argv.slice(2);
const dir = mkdtempSync(join(tmpdir(), "aloft-profile-"));
try {
  const out = execFileSync(
    process.execPath,
    [
      "--cpu-prof",
      "--cpu-prof-dir",
      dir,
      "--import",
      "tsx",
      fileURLToPath(new URL("./fanout.ts", import.meta.url)),
      ...args,
    ],
    { encoding: "utf8" },
  );
  const result = JSON.parse(out.trim().split("\n").pop()!) as {
    n: number;
    ms: number;
    cpuMs: number;
    window: { from: number; to: number };
  };
  // The main thread's profile is the first written by this process (thread index 0).
  const main = readdirSync(dir).filter((f) => f.endsWith(".0.001.cpuprofile"))[0]!;
  const p = JSON.parse(readFileSync(join(dir, main), "utf8")) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n.callFrame]));
  const totals = new Map<string, number>();
  let t = p.startTime;
  let all = 0;
  p.samples.forEach((id, i) => {
    t += p.timeDeltas[i]!;
    if (t < result.window.from || t > result.window.to) return;
    const what = classify(byId.get(id)!);
    totals.set(what, (totals.get(what) ?? 0) + p.timeDeltas[i]!);
    all += p.timeDeltas[i]!;
  });
  console.log(
    `${args.join(" ")}: ${result.ms.toFixed(0)} ms wall, ${result.cpuMs.toFixed(0)} ms CPU (all threads); ` +
      `engine thread by sample, µs per child:`,
  );
  for (const [what, us] of [...totals].sort((a, b) => b[1] - a[1]))
    console.log(
      `  ${what.padEnd(44)} ${(us / result.n).toFixed(1).padStart(7)}  ${((us / all) * 100).toFixed(1).padStart(5)}%`,
    );
} finally {
  rmSync(dir, { recursive: true, force: true });
}

function classify(f: { functionName: string; url: string }): string {
  const { functionName: fn, url } = f;
  if (fn === "(idle)") return "idle (waiting for work)";
  if (fn === "(garbage collector)") return "garbage collection";
  if (/better-sqlite3|\/sdk\/local\/store\.ts/.test(url)) return "SQLite store (statements, transactions)";
  if (/\/sdk\/local\//.test(url)) return "engine bookkeeping (sdk/local)";
  if (/\/sdk\/core\/|\/sdk\/serde\.ts|\/sdk\/(task|map|group|trace)\.ts|\/bench\/tasks\.ts/.test(url))
    return "replay core and task bodies";
  if (/async_hooks/.test(url)) return "async hooks (AsyncLocalStorage)";
  if (url.startsWith("node:") || url === "") return "Node runtime (promises, timers, natives)";
  return "other (loader, libraries)";
}
