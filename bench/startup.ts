/**
 * `aloft run` start-up in fresh processes: from the command's spawn to its first child running
 * (the child stamps the wall clock), beside `node` alone and `aloft --help` (the CLI's modules
 * loaded, nothing run), so the loader's share shows. Two ways of running the command:
 *
 * - repo: this checkout's `bin/aloft.js`, which runs the TypeScript sources through tsx;
 * - built: the built package (`npm run build`) as a user's project has it, `node_modules/aloft`
 *   holding package.json, bin/ and dist/ (what `npm pack` ships) and its dependencies beside it
 *   (this checkout's, linked), the task module a TypeScript file of the project.
 *
 * Prints one JSON line: nodeMs, helpMs, firstChildMs, runMs (repo), builtHelpMs, builtFirstChildMs,
 * builtRunMs.
 *
 *   npm run build && node --import tsx bench/startup.ts
 */
import { spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const wall = (): number => performance.timeOrigin + performance.now();

function timed(args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): number {
  const t0 = wall();
  const r = spawnSync(process.execPath, args, { cwd, env, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return wall() - t0;
}

/** A user's project with the built package installed: node_modules/aloft as `npm pack` ships it. */
function installBuilt(dir: string): string {
  if (!existsSync(join(root, "dist/sdk/cli/main.js")))
    throw new Error("bench/startup.ts measures the built package too: run `npm run build` first");
  const app = join(dir, "app");
  const pkg = join(app, "node_modules/aloft");
  mkdirSync(pkg, { recursive: true });
  for (const f of ["package.json", "bin", "dist"]) cpSync(join(root, f), join(pkg, f), { recursive: true });
  for (const dep of readdirSync(join(root, "node_modules")))
    if (dep !== "aloft" && !dep.startsWith("."))
      symlinkSync(join(root, "node_modules", dep), join(app, "node_modules", dep));
  writeFileSync(
    join(app, "package.json"),
    `${JSON.stringify({ name: "app", private: true, type: "module" })}\n`,
  );
  cpSync(join(root, "bench/startup-tasks.ts"), join(app, "startup-tasks.ts"));
  return app;
}

/** `--help`, then a run of the start-up task: how long each took, and when its child ran. */
function measure(
  bin: string,
  cwd: string,
  tasks: string,
  dir: string,
): { help: number; first: number; run: number } {
  const help = timed([bin, "--help"], cwd);
  const stampFile = join(dir, `stamp-${Math.random().toString(36).slice(2)}`);
  const t0 = wall();
  const run = timed(
    [bin, "run", "--json", "--store", join(dir, `${Math.random()}.db`), tasks, "startup"],
    cwd,
    {
      ...process.env,
      ALOFT_BENCH_STAMP: stampFile,
    },
  );
  const first = Number(readFileSync(stampFile, "utf8").trim().split("\n")[0]) - t0;
  return { help, first, run };
}

const dir = mkdtempSync(join(tmpdir(), "aloft-startup-"));
try {
  const app = installBuilt(dir);
  const nodeMs = timed(["-e", ""], root);
  const repo = measure(join(root, "bin/aloft.js"), root, "bench/startup-tasks.ts", dir);
  const built = measure(join(app, "node_modules/aloft/bin/aloft.js"), app, "startup-tasks.ts", dir);
  console.log(
    JSON.stringify({
      nodeMs,
      helpMs: repo.help,
      firstChildMs: repo.first,
      runMs: repo.run,
      builtHelpMs: built.help,
      builtFirstChildMs: built.first,
      builtRunMs: built.run,
    }),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
