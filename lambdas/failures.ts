/**
 * The last error of a failed delivery. SQS does not keep why a message failed, so when a handler
 * reports a batch item failure it records the error here, keyed by the SQS message id (which SQS
 * keeps across redeliveries and when it moves the message to the dead-letter queue): the DLQ
 * consumer (dead-letter.ts) then names it (store/failures.ts). One write per failed delivery.
 */
import type { SQSBatchResponse } from "aws-lambda";
import type { Runtime } from "../sdk/aws/runtime.ts";
import { recordFailure } from "../sdk/aws/store/failures.ts";

/** A batch item failure with the reason it failed. */
export interface Failure {
  itemIdentifier: string;
  why?: string | undefined;
}

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
