/**
 * The last error of a failed delivery (M#<message id>). SQS does not keep why a message failed, so
 * a handler that reports a batch item failure records it here, keyed by the SQS message id (which
 * SQS keeps across redeliveries and into the dead-letter queue): the DLQ consumer then names it.
 */
import { GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { Runtime } from "../runtime.ts";
import { expiry, failureKey } from "./table.ts";

/** What a recorded failure holds: deliveries that failed, the last error, when. */
export interface FailureRecord {
  n: number;
  err: string;
  at: number;
}

/** Kept past the dead-letter queues' 14-day retention. */
const KEEP_DAYS = 15;
const MAX_ERROR_CHARS = 2_000;

/** Counts one failed delivery and keeps its error (unconditional: the last one wins). */
export async function recordFailure(rt: Runtime, messageId: string, why: string): Promise<void> {
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
