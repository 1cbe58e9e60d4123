/**
 * `aloft run` start-up in fresh processes: from the command's spawn to its first child running
 * (the child stamps the wall clock), beside `node` alone and `aloft --help` (the CLI's modules
 * loaded, nothing run), so the loader's share shows. Prints one JSON line.
 *
 *   node --import tsx bench/startup.ts
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = join(root, "bin/aloft.js");
const wall = (): number => performance.timeOrigin + performance.now();

function timed(args: string[], env: NodeJS.ProcessEnv = process.env): number {
  const t0 = wall();
  const r = spawnSync(process.execPath, args, { cwd: root, env, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return wall() - t0;
}

const dir = mkdtempSync(join(tmpdir(), "aloft-startup-"));
const stampFile = join(dir, "stamp");
try {
  const nodeMs = timed(["-e", ""]);
  const helpMs = timed([bin, "--help"]);
  const t0 = wall();
  const runMs = timed(
    [bin, "run", "--json", "--store", join(dir, "s.db"), "bench/startup-tasks.ts", "startup"],
    { ...process.env, ALOFT_BENCH_STAMP: stampFile },
  );
  const firstChildMs = Number(readFileSync(stampFile, "utf8").trim().split("\n")[0]) - t0;
  console.log(JSON.stringify({ nodeMs, helpMs, firstChildMs, runMs }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
