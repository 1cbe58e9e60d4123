/**
 * End to end against LocalStack: deploy the example stack with cdklocal, run a pipeline through
 * it, tear it down. Skips (exit 0) when no LocalStack answers, so CI can run it everywhere.
 *
 *   npx tsx scripts/localstack-e2e.ts            # deploy, run, destroy
 *   npx tsx scripts/localstack-e2e.ts --keep     # leave the stack deployed afterwards
 *
 * LocalStack runs Lambda in containers; on an x86 host set LAMBDA_IGNORE_ARCHITECTURE=1 in
 * LocalStack's environment (the functions are arm64).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { AloftClient } from "aloft/client";
import { LOCAL_ONLY_OUTPUTS, OUTPUT } from "../sdk/aws/config.ts";

const ENDPOINT = process.env.LOCALSTACK_ENDPOINT ?? "http://localhost:4566";
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const STACK = "AloftLocal";
const ENTRY = "examples/cdk-tasks.ts";
// Not aloft-outputs.json: a LocalStack deploy must not overwrite the outputs of a real one.
const OUTPUTS_FILE = path.join(ROOT, ".aloft", "localstack-outputs.json");
const keep = process.argv.includes("--keep");

async function localStackIsUp(): Promise<boolean> {
  try {
    const res = await fetch(`${ENDPOINT}/_localstack/health`, { signal: AbortSignal.timeout(2000) });
    return res.ok;
  } catch {
    return false;
  }
}

/** Runs a command in the repository, streaming its output; throws if it fails. */
function sh(command: string, args: string[]): void {
  console.log(`$ ${command} ${args.join(" ")}`);
  const r = spawnSync(command, args, {
    cwd: ROOT,
    stdio: "inherit",
    env: {
      ...process.env,
      CDK_DISABLE_CLI_TELEMETRY: "true",
      CDK_DISABLE_VERSION_CHECK: "1",
      AWS_EC2_METADATA_DISABLED: "true",
      // cdklocal points the CDK CLI at http://localhost.localstack.cloud:<EDGE_PORT> (and S3 at
      // s3.localhost.localstack.cloud) with test credentials; it drops other AWS_* variables.
      EDGE_PORT: new URL(ENDPOINT).port || "4566",
    },
  });
  if (r.status !== 0) throw new Error(`${command} ${args.join(" ")} failed (exit ${r.status ?? r.signal})`);
}

const cdklocal = (...args: string[]): void =>
  sh("npx", [
    "cdklocal",
    ...args,
    "-c",
    `aloft:stackName=${STACK}`,
    "-c",
    `aloft:entry=${ENTRY}`,
    // Retained resources: no S3 auto-delete custom resource, whose runtime LocalStack may lack.
    "-c",
    "aloft:retain=true",
  ]);

async function runPipeline(): Promise<void> {
  // The client takes its endpoints from the standard AWS variables, as against any stack.
  Object.assign(process.env, {
    AWS_ENDPOINT_URL: ENDPOINT,
    AWS_REGION: process.env.AWS_REGION ?? "us-east-1",
    AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? "test",
    AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? "test",
  });
  const { parallelPipeline } = await import(path.join(ROOT, ENTRY));
  const client = new AloftClient(undefined, { outputsFile: OUTPUTS_FILE });
  const run = await client.run(parallelPipeline, ["a", "b", "c"]);
  console.log(`run ${run.id} started`);
  const result = await Promise.race([
    run.result(),
    new Promise((_, reject) =>
      setTimeout(() => reject(new Error("no result within 180 s")), 180_000).unref(),
    ),
  ]);
  const expected = ["Processed chunk 0: a", "Processed chunk 1: b", "Processed chunk 2: c"];
  if (JSON.stringify(result) !== JSON.stringify(expected)) {
    throw new Error(`unexpected result ${JSON.stringify(result)}; expected ${JSON.stringify(expected)}`);
  }
  console.log(`run ${run.id} succeeded: ${JSON.stringify(result)}`);
}

async function main(): Promise<void> {
  if (!(await localStackIsUp())) {
    console.log(`LocalStack is not running at ${ENDPOINT}: skipped`);
    return;
  }
  fs.mkdirSync(path.dirname(OUTPUTS_FILE), { recursive: true });
  cdklocal("bootstrap");
  try {
    cdklocal("deploy", STACK, "--require-approval", "never", "--outputs-file", OUTPUTS_FILE);
    const all = JSON.parse(fs.readFileSync(OUTPUTS_FILE, "utf8")) as Record<string, Record<string, string>>;
    const outputs = all[STACK];
    const missing = Object.values(OUTPUT).filter((k) => !LOCAL_ONLY_OUTPUTS.includes(k) && !outputs?.[k]);
    if (!outputs || missing.length > 0)
      throw new Error(`stack outputs lack ${missing.join(", ")}: ${JSON.stringify(all)}`);
    console.log(`deployed ${STACK}; outputs in ${path.relative(ROOT, OUTPUTS_FILE)}`);
    await runPipeline();
  } finally {
    if (!keep) cdklocal("destroy", STACK, "--force");
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
