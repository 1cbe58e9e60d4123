/**
 * DynamoDB I/O every store module shares: batched reads and writes that retry what AWS reports as
 * unprocessed, paged queries, the item a failed condition returns, and transactions that retry a
 * conflict.
 */
import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { setTimeout as sleep } from "node:timers/promises";
import {
  BatchGetCommand,
  BatchWriteCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import type { QueryCommandInput, TransactWriteCommandInput, UpdateCommandInput } from "@aws-sdk/lib-dynamodb";
import type { Runtime } from "../runtime.ts";

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

/** Puts `item` unless an item with its key exists; false when one did (a redelivery finds the first). */
export async function putOnce(rt: Runtime, item: Record<string, unknown>): Promise<boolean> {
  try {
    await rt.doc.send(
      new PutCommand({
        TableName: rt.config.table,
        Item: item,
        ConditionExpression: "attribute_not_exists(pk)",
      }),
    );
    return true;
  } catch (e) {
    if (!isConditionFailed(e)) throw e;
    return false;
  }
}

/**
 * A conditional update that returns the item as it is now: as written, or, when the condition
 * failed (someone got there first), as it was.
 */
export async function updateOrRead(
  rt: Runtime,
  input: Omit<UpdateCommandInput, "TableName" | "ReturnValues" | "ReturnValuesOnConditionCheckFailure">,
): Promise<Record<string, unknown> | undefined> {
  try {
    const out = await rt.doc.send(
      new UpdateCommand({
        ...input,
        TableName: rt.config.table,
        ReturnValues: "ALL_NEW",
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      }),
    );
    return out.Attributes;
  } catch (e) {
    if (!isConditionFailed(e)) throw e;
    return oldItem(e);
  }
}

/** Why DynamoDB cancelled a transaction: one code per item, in order ("None" where it was fine). */
export interface Cancelled {
  codes: string[];
  error: Error;
}

/** Attempts of a transaction that keeps meeting another one on its items. */
const TRANSACT_ATTEMPTS = 5;

/**
 * TransactWriteItems; returns nothing when it committed, else why it was cancelled. A cancellation
 * only by `TransactionConflict` (another transaction on one of its items, which real DynamoDB
 * reports where DynamoDB Local does not) is tried again after a jittered backoff; after
 * TRANSACT_ATTEMPTS the conflict is returned like any other reason.
 */
export async function transactWrite(
  rt: Runtime,
  items: NonNullable<TransactWriteCommandInput["TransactItems"]>,
): Promise<Cancelled | undefined> {
  for (let attempt = 1; ; attempt++) {
    try {
      await rt.doc.send(new TransactWriteCommand({ TransactItems: items }));
      return undefined;
    } catch (e) {
      const reasons = (e as { CancellationReasons?: { Code?: string }[] }).CancellationReasons;
      if ((e as Error).name !== "TransactionCanceledException" || !reasons) throw e;
      const codes = reasons.map((r) => r.Code ?? "None");
      const conflictOnly = codes.includes("TransactionConflict") && !codes.includes("ConditionalCheckFailed");
      if (!conflictOnly || attempt >= TRANSACT_ATTEMPTS) return { codes, error: e as Error };
      await sleep(Math.random() * (20 << attempt));
    }
  }
}

/** BatchWriteItem (puts) in 25s, retrying UnprocessedItems with backoff. */
export async function batchPut(
  rt: Runtime,
  items: readonly Record<string, unknown>[],
  /**
   * Runs before each request: each 25 items, and each retry of those left unprocessed, which comes
   * up to seconds later (a check that may throw to stop the writes).
   */
  before?: () => Promise<void>,
): Promise<void> {
  const table = rt.config.table;
  for (let i = 0; i < items.length; i += 25) {
    let req: { PutRequest: { Item: Record<string, unknown> } }[] = items
      .slice(i, i + 25)
      .map((Item) => ({ PutRequest: { Item } }));
    for (let attempt = 0; req.length > 0; attempt++) {
      await before?.();
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
  projection?: { expression: string; names: Record<string, string> },
): Promise<Map<string, Record<string, unknown>>> {
  const table = rt.config.table;
  const found = new Map<string, Record<string, unknown>>();
  const unique = [...new Map(keys.map((k) => [keyId(k), k])).values()];
  for (let i = 0; i < unique.length; i += 100) {
    let want: Record<string, unknown>[] = unique.slice(i, i + 100).map((k) => ({ pk: k.pk, sk: k.sk }));
    for (let attempt = 0; want.length > 0; attempt++) {
      const out = await rt.doc.send(
        new BatchGetCommand({
          RequestItems: {
            [table]: {
              Keys: want,
              ConsistentRead: consistent,
              ...(projection
                ? { ProjectionExpression: projection.expression, ExpressionAttributeNames: projection.names }
                : {}),
            },
          },
        }),
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
