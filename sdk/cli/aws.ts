/**
 * The `--aws` side of the CLI (a deployed stack, LocalStack, or `aloft dev`) and `aloft dev`.
 * The stack is found as AloftClient finds it: --outputs <file>, else aloft-outputs.json, else the
 * ALOFT_* variables; endpoints come from AWS_ENDPOINT_URL(_DYNAMODB|_SQS|_S3).
 */
import { resolve } from "node:path";
import { OUTPUT } from "../aws/config.ts";
import { AloftClient } from "../aws/client.ts";
import type { AwsRun } from "../aws/client.ts";
import type { RunRow } from "../local/store.ts";
import { writePrivateFile } from "../local/private-files.ts";
import { renderRuns, renderStatus } from "./render.ts";
import type { LocalAws } from "../../dev/local-aws.ts";

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

/** What `aloft dev` tells another shell to export, besides ALOFT_OUTPUTS_FILE. */
const CLIENT_VARIABLES = [
  "AWS_ENDPOINT_URL_DYNAMODB",
  "AWS_ENDPOINT_URL_SQS",
  "AWS_ENDPOINT_URL_S3",
  "AWS_REGION",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
] as const;

/**
 * Writes the outputs file and prints the variables with which `aloft run --aws` (in another shell)
 * targets a local stack, then the word `ready`.
 */
export function announce(
  outputsFile: string,
  outputs: Record<string, string>,
  env: Record<string, string>,
  header: string,
): void {
  const file = resolve(outputsFile);
  writePrivateFile(file, `${JSON.stringify({ AloftDev: outputs }, null, 2)}\n`);
  // The stack's own variables for a client: its endpoints, region and (dummy) credentials.
  const vars: Record<string, string> = { ALOFT_OUTPUTS_FILE: file };
  for (const name of CLIENT_VARIABLES) {
    const value = env[name];
    if (value !== undefined) vars[name] = value;
  }
  process.stderr.write(
    `${header}\n` +
      `In another shell:\n${Object.entries(vars)
        .map(([k, v]) => `  export ${k}=${v}`)
        .join("\n")}\n  aloft run --aws <module> <task> [args...]\nCtrl-C stops it.\n`,
  );
}

/** Resolves on Ctrl-C or SIGTERM. */
export function interrupted(): Promise<void> {
  return new Promise<void>((res) => {
    process.once("SIGINT", res);
    process.once("SIGTERM", res);
  });
}

/**
 * `aloft dev <module>`: DynamoDB Local + fauxqs, the stack's table/queues/bucket, and the real
 * handlers with the local poller, until interrupted. Writes an outputs file and prints the
 * variables with which `aloft run --aws` (in another shell) targets it.
 */
export async function dev(o: { outputs: string; persist?: string }): Promise<void> {
  const { startDevStack } = await import("../../dev/stack.ts");
  // Each queue's visibility is its deployed setting (a TaskEnvironment's visibilityTimeout, else 60 s).
  const stack = await startDevStack(o.persist ? { persistDir: o.persist } : {});
  const envs = Object.keys(stack.config.executorQueues);
  const outputs = {
    [OUTPUT.table]: stack.config.table,
    [OUTPUT.bucket]: stack.config.bucket,
    [OUTPUT.coordinatorQueue]: stack.config.coordinatorQueue,
    [OUTPUT.executorQueues]: JSON.stringify(stack.config.executorQueues),
    [OUTPUT.region]: stack.config.region,
  };
  announce(
    o.outputs,
    outputs,
    stack.env,
    `aloft dev: ${stack.aws.mode === "emulators" ? "DynamoDB Local + fauxqs (SQS, S3)" : stack.aws.dynamoEndpoint} ready; ` +
      `environments: ${envs.join(", ")}\n` +
      `  DynamoDB ${stack.aws.dynamoEndpoint}  SQS/S3 ${stack.aws.sqsEndpoint}\n` +
      devNotes(stack.aws).replace(/\n$/, ""),
  );
  await interrupted();
  process.stderr.write("aloft dev: stopping\n");
  await stack.stop();
}

/** Where `aloft dev` listens and where its state lives: the two things a user must not guess. */
export function devNotes(aws: Pick<LocalAws, "mode" | "warnings" | "persistDir" | "restored">): string {
  const lines: string[] = [];
  if (aws.mode === "emulators") {
    lines.push(
      aws.warnings.length > 0
        ? aws.warnings.map((w) => `  WARNING: ${w}`).join("\n")
        : `  listening on 127.0.0.1 only (no credentials are checked: anyone on this machine can connect)`,
    );
  }
  const persist = aws.persistDir;
  if (!persist) {
    lines.push(`  state: in memory; stopping aloft dev loses every run (keep them with --persist <dir>)`);
  } else {
    const r = aws.restored;
    lines.push(
      `  state: kept in ${persist.path} (tables, queue messages, bucket objects; wipe it with rm -rf while stopped)`,
      ...(r ? [`  restored ${r.restored} queued message(s) and ${r.objects} object(s)`] : []),
      ...Object.entries(r?.dropped ?? {}).map(
        ([queue, n]) => `  WARNING: ${n} message(s) of queue ${queue} dropped: the queue no longer exists`,
      ),
    );
  }
  return `${lines.join("\n")}\n`;
}
