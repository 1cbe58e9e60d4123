/**
 * `npm run soak:cold-start -- [--cdk-out DIR] [--runs N]`: the cold start of each function of a
 * synthesized stack (default: the soak stack, synthesized into a temp folder) in fresh deployed-
 * shape sandboxes (dev/deployed/sandbox.mjs, the runtime's SDK beside the bundle), with the
 * template's NODE_OPTIONS (`--enable-source-maps`) and without: the median wall time of the
 * bundle's import and the median CPU time of the whole start (Node's boot included). On a loaded
 * machine the wall time measures the load; the CPU time is what each cold start costs it. Also
 * prints each bundle's size and its source map's.
 */
import { fork } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { assetDir, readStack, resourcesOf } from "../../dev/deployed/assembly.ts";
import { functionRoot, sdkRuntime } from "../../dev/deployed/sdk-runtime.ts";
import { synth } from "../../dev/deployed/synth.ts";

const RUNNER = fileURLToPath(new URL("../../dev/deployed/sandbox.mjs", import.meta.url));

interface Start {
  initMs: number;
  cpuMs: number;
}

function coldStart(taskDir: string, handler: string, env: Record<string, string>): Promise<Start> {
  return new Promise((ok, fail) => {
    const child = fork(RUNNER, [taskDir, handler], {
      cwd: taskDir,
      env,
      execArgv: [],
      stdio: ["ignore", "ignore", "pipe", "ipc"],
    });
    let err = "";
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    child.on("message", (m: { t: string; initMs: number; cpuMs: number; error?: { message: string } }) => {
      if (m.t === "ready") ok({ initMs: m.initMs, cpuMs: m.cpuMs });
      else fail(new Error(`init failed: ${m.error?.message}`));
      child.removeAllListeners("exit");
      child.kill("SIGKILL");
    });
    child.on("exit", (code) => fail(new Error(`sandbox exited (${code}) before it was ready: ${err}`)));
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const { values } = parseArgs({
  options: { "cdk-out": { type: "string" }, runs: { type: "string", default: "5" } },
});
const runs = Number(values.runs);
const synthDir = values["cdk-out"] ? undefined : mkdtempSync(join(tmpdir(), "aloft-cold-synth-"));
const root = mkdtempSync(join(tmpdir(), "aloft-cold-"));
try {
  if (synthDir) await synth("scripts/soak/tasks.ts", "AloftSoak", synthDir, "npx tsx scripts/soak/app.ts");
  const stack = readStack(values["cdk-out"] ?? synthDir!);
  const modules = sdkRuntime();
  process.stdout.write(
    `function                                   with source maps (wall/CPU)  without (wall/CPU)  bundle\n`,
  );
  for (const id of resourcesOf(stack.template, "AWS::Lambda::Function")) {
    const p = stack.template.Resources[id]!.Properties ?? {};
    const vars = ((p["Environment"] as { Variables?: Record<string, unknown> })?.Variables ?? {}) as Record<
      string,
      unknown
    >;
    const taskDir = functionRoot(root, id, assetDir(stack, id), modules);
    const base = {
      PATH: process.env["PATH"] ?? "/usr/bin:/bin",
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "x",
      AWS_SECRET_ACCESS_KEY: "x",
      AWS_LAMBDA_FUNCTION_NAME: id,
    };
    const row: string[] = [];
    for (const nodeOptions of [String(vars["NODE_OPTIONS"] ?? ""), ""]) {
      const starts: Start[] = [];
      for (let i = 0; i < runs; i++)
        starts.push(await coldStart(taskDir, String(p["Handler"]), { ...base, NODE_OPTIONS: nodeOptions }));
      row.push(`${median(starts.map((s) => s.initMs))} ms / ${median(starts.map((s) => s.cpuMs))} ms`);
    }
    const asset = assetDir(stack, id);
    const kib = (f: string) => (existsSync(f) ? `${Math.round(statSync(f).size / 1024)} KiB` : "-");
    const bundle = readdirSync(asset).find((f) => /^index\.(m?js|cjs)$/.test(f)) ?? "index.mjs";
    row.push(`${kib(join(asset, bundle))} (+${kib(join(asset, `${bundle}.map`))} map)`);
    process.stdout.write(`${id.padEnd(42)} ${row[0]!.padEnd(28)} ${row[1]!.padEnd(20)} ${row[2]}\n`);
  }
  process.stdout.write(`(medians of ${runs} fresh sandboxes each; node ${process.version})\n`);
} finally {
  rmSync(root, { recursive: true, force: true });
  if (synthDir) rmSync(synthDir, { recursive: true, force: true });
}
