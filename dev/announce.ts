/**
 * What a local stack (`aloft dev`, and `aloft dev --cdk-out`) tells its user: the outputs file, the
 * variables another shell exports to reach it, where it listens and where its state lives.
 */
import { resolve } from "node:path";
import { writePrivateFile } from "../sdk/local/private-files.ts";
import type { LocalAws } from "./local-aws.ts";

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
