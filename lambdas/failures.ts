/**
 * The last error of a failed delivery. SQS does not keep why a message failed, so when a handler
 * reports a batch item failure it records the error here, keyed by the SQS message id (which SQS
 * keeps across redeliveries and when it moves the message to the dead-letter queue): the DLQ
 * consumer (dead-letter.ts) then names it. One write per failed delivery; failures are rare.
 */
import type { SQSBatchResponse } from "aws-lambda";
import { GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { Runtime } from "../sdk/aws/runtime.ts";
import { expiry, failureKey } from "../sdk/aws/store/table.ts";

/** A batch item failure with the reason it failed. */
export interface Failure {
  itemIdentifier: string;
  why?: string | undefined;
}

/** What a recorded failure holds: deliveries that failed, the last error, when. */
export interface FailureRecord {
  n: number;
  err: string;
  at: number;
}

/** Kept past the dead-letter queues' 14-day retention. */
const KEEP_DAYS = 15;
const MAX_ERROR_CHARS = 2_000;

/** The text recorded for an error: its name and message, not its stack. */
export function errorText(e: unknown): string {
  const err = e as Error | undefined;
  return err?.message === undefined ? String(e) : `${err.name}: ${err.message}`;
}

/**
 * Records each failure's error, then returns the partial batch response (without the reasons).
 * A recording that fails is logged: the message is retried either way.
 */
export async function reportFailures(rt: Runtime, failures: readonly Failure[]): Promise<SQSBatchResponse> {
  const unique = new Map(failures.map((f) => [f.itemIdentifier, f.why ?? "(no error recorded)"]));
  await Promise.all(
    [...unique].map(([id, why]) =>
      recordFailure(rt, id, why).catch((e: unknown) =>
        rt.log.warn("could not record why a message failed", { messageId: id, error: String(e) }),
      ),
    ),
  );
  return { batchItemFailures: [...unique.keys()].map((itemIdentifier) => ({ itemIdentifier })) };
}

async function recordFailure(rt: Runtime, messageId: string, why: string): Promise<void> {
  const now = rt.now();
  await rt.doc.send(
    new UpdateCommand({
      TableName: rt.config.table,
      Key: failureKey(messageId),
      UpdateExpression: "SET err = :e, #at = :now, expiresAt = :x ADD n :one",
      ExpressionAttributeNames: { "#at": "at" },
      ExpressionAttributeValues: {
        ":e": why.slice(0, MAX_ERROR_CHARS),
        ":now": now,
        ":x": expiry(now, KEEP_DAYS),
        ":one": 1,
      },
    }),
  );
}

/** The recorded failure of a message, if any delivery of it recorded one. */
export async function readFailure(rt: Runtime, messageId: string): Promise<FailureRecord | undefined> {
  const out = await rt.doc.send(
    new GetCommand({ TableName: rt.config.table, Key: failureKey(messageId), ConsistentRead: true }),
  );
  return out.Item as FailureRecord | undefined;
}
