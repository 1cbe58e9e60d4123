/**
 * What both handlers share: configuration from the environment (names in config.ts), AWS clients,
 * the logger, and batched I/O helpers that retry the entries AWS reports as unprocessed.
 *
 * Endpoints come from the standard variables (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB, ...),
 * which SDK v3 reads itself; the SQS client ignores the host in queue URLs (emulators name hosts
 * that do not resolve), and S3 uses path-style addressing when an endpoint is set.
 */
import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { setTimeout as sleep } from "node:timers/promises";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { SendMessageBatchCommand, SQSClient } from "@aws-sdk/client-sqs";
import {
  BatchGetCommand,
  BatchWriteCommand,
  DynamoDBDocumentClient,
  QueryCommand,
} from "@aws-sdk/lib-dynamodb";
import type { QueryCommandInput } from "@aws-sdk/lib-dynamodb";
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

export function isConditionFailed(e: unknown): e is Error & { Item?: Record<string, unknown> } {
  return (e as { name?: string })?.name === "ConditionalCheckFailedException";
}

/**
 * The item as it was, from a ConditionalCheckFailedException raised with
 * `ReturnValuesOnConditionCheckFailure: ALL_OLD`. The document client does not unmarshall errors,
 * so the item arrives in DynamoDB's wire form ({ S: "..." }); this returns plain values.
 */
export function oldItem(e: unknown): Record<string, unknown> | undefined {
  const raw = (e as { Item?: Record<string, AttributeValue> })?.Item;
  return raw ? unmarshall(raw) : undefined;
}

export interface OutMessage {
  body: string;
  delaySeconds?: number;
}

/**
 * Bytes of message bodies per SendMessageBatch request (and so per message). SQS counts UTF-8
 * bytes, over the whole batch; 256 KiB is its limit before 2025 and LocalStack's, under the 1 MiB
 * AWS accepts now.
 */
export const SQS_BATCH_BYTES = 256 * 1024;

/** Messages in requests of at most 10 entries and SQS_BATCH_BYTES bytes of bodies, in order. */
export function batchesOf(messages: readonly OutMessage[]): OutMessage[][] {
  const out: OutMessage[][] = [];
  let cur: OutMessage[] = [];
  let bytes = 0;
  for (const m of messages) {
    const size = Buffer.byteLength(m.body);
    if (size > SQS_BATCH_BYTES)
      throw new Error(`an SQS message of ${size} bytes is over the ${SQS_BATCH_BYTES} bytes it may have`);
    if (cur.length === 10 || bytes + size > SQS_BATCH_BYTES) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(m);
    bytes += size;
  }
  if (cur.length) out.push(cur);
  return out;
}

/** SendMessageBatch (batchesOf), resending entries SQS reports as failed; throws if any still fail. */
export async function sendMessages(
  rt: Runtime,
  queueUrl: string,
  messages: readonly OutMessage[],
): Promise<void> {
  for (const batch of batchesOf(messages)) {
    let entries = batch.map((m, j) => ({
      Id: `m${j}`,
      MessageBody: m.body,
      ...(m.delaySeconds ? { DelaySeconds: Math.min(900, Math.max(0, Math.ceil(m.delaySeconds))) } : {}),
    }));
    for (let attempt = 0; entries.length > 0; attempt++) {
      const out = await rt.sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
      const failed = new Set((out.Failed ?? []).map((f) => f.Id));
      entries = entries.filter((e) => failed.has(e.Id));
      if (entries.length && attempt >= 4) {
        throw new Error(`SendMessageBatch to ${queueUrl}: ${entries.length} message(s) still failing`);
      }
      if (entries.length) await sleep(50 << attempt);
    }
  }
}

/** BatchWriteItem (puts) in 25s, retrying UnprocessedItems with backoff. */
export async function batchPut(rt: Runtime, items: readonly Record<string, unknown>[]): Promise<void> {
  const table = rt.config.table;
  for (let i = 0; i < items.length; i += 25) {
    let req: { PutRequest: { Item: Record<string, unknown> } }[] = items
      .slice(i, i + 25)
      .map((Item) => ({ PutRequest: { Item } }));
    for (let attempt = 0; req.length > 0; attempt++) {
      const out = await rt.doc.send(new BatchWriteCommand({ RequestItems: { [table]: req } }));
      req = (out.UnprocessedItems?.[table] ?? []) as typeof req;
      if (req.length && attempt >= 6)
        throw new Error(`BatchWriteItem: ${req.length} item(s) still unprocessed`);
      if (req.length) await sleep(50 << attempt);
    }
  }
}

/** BatchGetItem in 100s, retrying UnprocessedKeys; returns the items found, keyed by `pk|sk`. */
export async function batchGet(
  rt: Runtime,
  keys: readonly { pk: string; sk: string }[],
  consistent = false,
): Promise<Map<string, Record<string, unknown>>> {
  const table = rt.config.table;
  const found = new Map<string, Record<string, unknown>>();
  const unique = [...new Map(keys.map((k) => [keyId(k), k])).values()];
  for (let i = 0; i < unique.length; i += 100) {
    let want: Record<string, unknown>[] = unique.slice(i, i + 100).map((k) => ({ pk: k.pk, sk: k.sk }));
    for (let attempt = 0; want.length > 0; attempt++) {
      const out = await rt.doc.send(
        new BatchGetCommand({ RequestItems: { [table]: { Keys: want, ConsistentRead: consistent } } }),
      );
      for (const item of out.Responses?.[table] ?? [])
        found.set(keyId(item as { pk: string; sk: string }), item);
      want = out.UnprocessedKeys?.[table]?.Keys ?? [];
      if (want.length && attempt >= 6)
        throw new Error(`BatchGetItem: ${want.length} key(s) still unprocessed`);
      if (want.length) await sleep(50 << attempt);
    }
  }
  return found;
}

/** Every item of a Query, page by page. */
export async function queryAll(
  rt: Runtime,
  input: Omit<QueryCommandInput, "TableName">,
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await rt.doc.send(
      new QueryCommand({
        TableName: rt.config.table,
        ...input,
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    items.push(...(out.Items ?? []));
    start = out.LastEvaluatedKey;
  } while (start);
  return items;
}

export const keyId = (k: { pk: string; sk: string }): string => `${k.pk}|${k.sk}`;
