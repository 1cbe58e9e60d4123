/**
 * What the handlers and the client share: configuration from the environment (names in config.ts),
 * AWS clients and the logger. Table I/O lives in store/, sends in transport/.
 *
 * Endpoints come from the standard variables (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB, ...),
 * which SDK v3 reads itself; the SQS client ignores the host in queue URLs (emulators name hosts
 * that do not resolve), and S3 uses path-style addressing when an endpoint is set.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { Logger } from "@aws-lambda-powertools/logger";
import type { LogLevel } from "@aws-lambda-powertools/logger/types";
import { ConfigurationError } from "../errors.ts";
import { ENV } from "./config.ts";
import { S3PayloadStore } from "./payloads.ts";
import type { PayloadStore } from "./payloads.ts";

export interface AloftConfig {
  table: string;
  bucket: string | undefined;
  coordinatorQueue: string;
  /** TaskEnvironment name -> executor queue URL. */
  executorQueues: Record<string, string>;
  retentionDays: number;
}

export interface Runtime {
  config: AloftConfig;
  ddb: DynamoDBClient;
  doc: DynamoDBDocumentClient;
  sqs: SQSClient;
  s3: S3Client;
  payloads: PayloadStore;
  log: Logger;
  now: () => number;
}

/** Reads the stack's names from the environment, naming every missing or malformed one at once. */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): AloftConfig {
  const problems: string[] = [];
  const need = (name: string): string => {
    const v = env[name];
    if (!v) problems.push(`${name} is not set`);
    return v ?? "";
  };
  const table = need(ENV.table);
  const coordinatorQueue = need(ENV.coordinatorQueue);
  let executorQueues: Record<string, string> = {};
  const rawQueues = need(ENV.executorQueues);
  if (rawQueues) {
    try {
      executorQueues = JSON.parse(rawQueues) as Record<string, string>;
    } catch {
      problems.push(`${ENV.executorQueues} is not a JSON object of environment -> queue URL`);
    }
  }
  const retentionDays = env[ENV.retentionDays] === undefined ? 30 : Number(env[ENV.retentionDays]);
  if (!Number.isFinite(retentionDays) || retentionDays <= 0)
    problems.push(`${ENV.retentionDays} must be a positive number`);
  if (problems.length) throw new ConfigurationError(`Aloft handler configuration: ${problems.join("; ")}`);
  return { table, bucket: env[ENV.bucket] || undefined, coordinatorQueue, executorQueues, retentionDays };
}

export function makeClients(region?: string): Pick<Runtime, "ddb" | "doc" | "sqs" | "s3"> {
  const r = region ? { region } : {};
  const ddb = new DynamoDBClient({ ...r });
  const doc = DynamoDBDocumentClient.from(ddb, { marshallOptions: { removeUndefinedValues: true } });
  const sqs = new SQSClient({ ...r, useQueueUrlAsEndpoint: false });
  const s3Endpoint = process.env["AWS_ENDPOINT_URL_S3"] ?? process.env["AWS_ENDPOINT_URL"];
  const s3 = new S3Client({ ...r, ...(s3Endpoint ? { forcePathStyle: true } : {}) });
  return { ddb, doc, sqs, s3 };
}

let current: Runtime | undefined;

/** A runtime over given configuration and clients (the client SDK builds one from stack outputs). */
export function buildRuntime(
  config: AloftConfig,
  clients: Pick<Runtime, "ddb" | "doc" | "sqs" | "s3">,
): Runtime {
  return {
    config,
    ...clients,
    payloads: new S3PayloadStore(clients.s3, config.bucket),
    log: new Logger({
      serviceName: "aloft",
      logLevel: (process.env["POWERTOOLS_LOG_LEVEL"] ?? "INFO").toUpperCase() as LogLevel,
    }),
    now: Date.now,
  };
}

/** The handlers' runtime, built on first use from the environment. */
export function runtime(): Runtime {
  current ??= buildRuntime(configFromEnv(), makeClients());
  return current;
}

/** Drops the cached runtime (tests and `aloft dev` change the environment between stacks). */
export function resetRuntime(): void {
  if (!current) return;
  current.doc.destroy();
  current.ddb.destroy();
  current.sqs.destroy();
  current.s3.destroy();
  current = undefined;
}
