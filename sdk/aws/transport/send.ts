/** SQS sends: message bodies packed into SendMessageBatch requests, failed entries resent. */
import { setTimeout as sleep } from "node:timers/promises";
import { SendMessageBatchCommand } from "@aws-sdk/client-sqs";
import type { Runtime } from "../runtime.ts";

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
