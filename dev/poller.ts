/**
 * A local stand-in for Lambda's SQS event source mapping: long-polls one queue and invokes a
 * handler module's function with real SQSEvents, with Lambda's rules for batches, visibility,
 * partial batch responses and concurrency. Redrive to the DLQ is left to the queue itself, as on
 * AWS: a message that keeps failing reappears until its receive count passes maxReceiveCount.
 */
import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
} from "@aws-sdk/client-sqs";
import type { Message, SQSClient } from "@aws-sdk/client-sqs";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { setTimeout as sleep } from "node:timers/promises";
import { queueArn } from "./resources.ts";
import { lambdaContext, parseQueueArn, readBatchResponse, toSqsRecord } from "./sqs-event.ts";
import type { EventSource } from "./sqs-event.ts";

export type SqsBatchHandler = (
  event: SQSEvent,
  context: Context,
) => Promise<SQSBatchResponse | void> | SQSBatchResponse | void;

export interface SqsEventSourcePollerOptions {
  /**
   * Most messages per invocation; default 10. Without a batching window a batch is one
   * ReceiveMessage (1–10); with one, up to 10,000, gathered over several receives.
   */
  batchSize?: number;
  /**
   * MaximumBatchingWindowInSeconds, in ms: once a receive returns messages, keep receiving until
   * the batch holds `batchSize` messages or the window has passed since its first one, as Lambda's
   * poller does; default 0 (each receive is a batch).
   */
  maxBatchingWindowMs?: number;
  /** Sent with each ReceiveMessage; default: the queue's own visibility timeout, as Lambda does. */
  visibilityTimeoutSeconds?: number;
  /** Batches handled at once (Lambda's MaximumConcurrency); default 5. */
  maxConcurrency?: number;
  /** For the Lambda context; default derived from the queue name. */
  functionName?: string;
  /** Where failures go (handler errors, rejected responses, SQS errors); default console.error. */
  onError?: (error: unknown, info: PollerErrorInfo) => void;
}

export interface PollerErrorInfo {
  queueUrl: string;
  phase: "handler" | "response" | "receive" | "delete";
  /** The batch concerned, for handler, response and delete failures. */
  event?: SQSEvent;
}

export interface PollerStats {
  /** Messages received (a redelivery counts again). */
  received: number;
  /** Messages deleted after a successful invocation. */
  deleted: number;
  /** Messages left on the queue by a failed invocation or a batchItemFailures entry. */
  failed: number;
  invocations: number;
  inFlight: number;
}

interface IdleOptions {
  /** How long the queue must stay empty with nothing in flight; default 200 ms. */
  quietMs?: number;
  /** Reject if not idle by then; default 30 s. */
  timeoutMs?: number;
}

/** Long-poll wait in seconds; also bounds how long stop() waits for a poll. */
const WAIT_TIME_SECONDS = 1;
/** Between two short polls of a batching window's last second. */
const GATHER_PAUSE_MS = 100;
/** For context.getRemainingTimeInMillis() (Lambda's maximum); not enforced. */
const FUNCTION_TIMEOUT_SECONDS = 900;

/**
 * Partial batch responses are honoured (FunctionResponseTypes: ReportBatchItemFailures), as the
 * stack's event sources do.
 */
export class SqsEventSourcePoller {
  readonly queueUrl: string;
  private readonly sqs: SQSClient;
  private readonly handler: SqsBatchHandler;
  private readonly batchSize: number;
  private readonly maxBatchingWindowMs: number;
  private readonly visibilityTimeoutSeconds: number | undefined;
  private readonly maxConcurrency: number;
  private readonly functionName: string;
  private readonly onError: (error: unknown, info: PollerErrorInfo) => void;

  private source: EventSource | undefined;
  private running = false;
  private loop: Promise<void> | undefined;
  private starting: Promise<void> | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private slotFreed: (() => void) | undefined;
  private readonly counters = { received: 0, deleted: 0, failed: 0, invocations: 0 };
  private lastActivity = Date.now();

  constructor(
    sqs: SQSClient,
    queueUrl: string,
    handler: SqsBatchHandler,
    options: SqsEventSourcePollerOptions = {},
  ) {
    this.sqs = sqs;
    this.queueUrl = queueUrl;
    this.handler = handler;
    this.maxBatchingWindowMs = integerIn("maxBatchingWindowMs", options.maxBatchingWindowMs ?? 0, 0, 300_000);
    // Lambda's limits: 10 per batch without a window, 10,000 with one.
    this.batchSize = integerIn(
      "batchSize",
      options.batchSize ?? 10,
      1,
      this.maxBatchingWindowMs ? 10_000 : 10,
    );
    this.visibilityTimeoutSeconds =
      options.visibilityTimeoutSeconds === undefined
        ? undefined
        : integerIn("visibilityTimeoutSeconds", options.visibilityTimeoutSeconds, 0, 43_200);
    this.maxConcurrency = integerIn("maxConcurrency", options.maxConcurrency ?? 5, 1, 1_000);
    this.functionName = options.functionName ?? `${queueUrl.split("/").pop() ?? "queue"}-handler`;
    this.onError =
      options.onError ??
      ((error, info) => {
        const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
        console.error(`[aloft local poller ${this.functionName}] ${info.phase} failed: ${message}`);
      });
  }

  get stats(): PollerStats {
    return { ...this.counters, inFlight: this.inFlight.size };
  }

  /** Resolves once the queue's ARN is known and polling has begun; rejects if the queue is missing. */
  start(): Promise<void> {
    this.starting ??= this.begin().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async begin(): Promise<void> {
    if (this.running) return;
    await this.loop; // a stop() still draining its last long poll
    if (!this.source) {
      const arn = await queueArn(this.sqs, this.queueUrl);
      const region = parseQueueArn(arn).region || (await this.sqs.config.region());
      this.source = { eventSourceARN: arn, awsRegion: region };
    }
    this.running = true;
    this.loop = this.receiveLoop(this.source);
  }

  /** Stops receiving, then waits for the current long poll and every batch in flight. */
  async stop(): Promise<void> {
    await this.starting?.catch(() => undefined); // else a start() in progress would resume polling
    this.running = false;
    this.slotFreed?.();
    await this.loop;
    await Promise.all(this.inFlight);
  }

  /**
   * Resolves when, for `quietMs` on end, nothing was in flight and the queue held no visible,
   * invisible or delayed message — so failed messages waiting out their visibility timeout keep
   * the poller busy until they are handled or redriven to the DLQ.
   */
  async idle(options: IdleOptions = {}): Promise<void> {
    const quietMs = options.quietMs ?? 200;
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    let quietSince: number | undefined;
    let last = "";
    for (;;) {
      const counts = await this.queueCounts();
      last = JSON.stringify({ ...counts, inFlight: this.inFlight.size });
      const empty = this.inFlight.size === 0 && counts.visible + counts.invisible + counts.delayed === 0;
      const now = Date.now();
      // A batch can come and go between two checks; its activity restarts the quiet period.
      quietSince = empty ? Math.max(quietSince ?? now, this.lastActivity) : undefined;
      if (quietSince !== undefined && now - quietSince >= quietMs) return;
      if (now > deadline)
        throw new Error(`Queue ${this.queueUrl} not idle after ${options.timeoutMs ?? 30_000} ms: ${last}`);
      await sleep(Math.min(50, quietMs));
    }
  }

  private async queueCounts() {
    const out = await this.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: this.queueUrl,
        AttributeNames: [
          "ApproximateNumberOfMessages",
          "ApproximateNumberOfMessagesNotVisible",
          "ApproximateNumberOfMessagesDelayed",
        ],
      }),
    );
    const n = (name: string) => Number(out.Attributes?.[name as keyof typeof out.Attributes] ?? 0);
    return {
      visible: n("ApproximateNumberOfMessages"),
      invisible: n("ApproximateNumberOfMessagesNotVisible"),
      delayed: n("ApproximateNumberOfMessagesDelayed"),
    };
  }

  // One receiver per queue, gated by free slots, rather than one per slot: idle long polls would
  // otherwise hold maxConcurrency sockets of the shared client's pool and starve the handlers.
  private async receiveLoop(source: EventSource): Promise<void> {
    let backoffMs = 100;
    while (this.running) {
      if (this.inFlight.size >= this.maxConcurrency) {
        await new Promise<void>((resolve) => (this.slotFreed = resolve));
        this.slotFreed = undefined;
        continue;
      }
      let messages: Message[];
      try {
        messages = await this.receive(Math.min(10, this.batchSize), WAIT_TIME_SECONDS);
        if (messages.length && this.maxBatchingWindowMs) messages = await this.gather(messages);
        backoffMs = 100;
      } catch (err) {
        if (!this.running) break;
        this.onError(err, { queueUrl: this.queueUrl, phase: "receive" });
        await sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, 5_000);
        continue;
      }
      if (messages.length === 0) continue;
      this.counters.received += messages.length;
      this.lastActivity = Date.now();
      const batch: Promise<void> = this.invoke(messages, source).finally(() => {
        this.inFlight.delete(batch);
        this.lastActivity = Date.now();
        this.slotFreed?.();
      });
      this.inFlight.add(batch);
    }
  }

  private async receive(max: number, waitSeconds: number): Promise<Message[]> {
    const out = await this.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.queueUrl,
        MaxNumberOfMessages: max,
        WaitTimeSeconds: waitSeconds,
        VisibilityTimeout: this.visibilityTimeoutSeconds,
        AttributeNames: ["All"],
        MessageSystemAttributeNames: ["All"],
        MessageAttributeNames: ["All"],
      }),
    );
    return out.Messages ?? [];
  }

  /**
   * The batching window: more receives after the first messages, until the batch is full or the
   * window has passed. A failed receive ends the gathering early with what it holds; received
   * messages are never dropped.
   */
  private async gather(first: Message[]): Promise<Message[]> {
    const batch = [...first];
    const end = Date.now() + this.maxBatchingWindowMs;
    while (this.running && batch.length < this.batchSize) {
      const left = end - Date.now();
      if (left <= 0) break;
      let more: Message[];
      try {
        // Long polls only while a whole second of the window is left, so the window is not overrun.
        more = await this.receive(Math.min(10, this.batchSize - batch.length), left >= 1_000 ? 1 : 0);
      } catch (err) {
        this.onError(err, { queueUrl: this.queueUrl, phase: "receive" });
        break;
      }
      batch.push(...more);
      if (!more.length && left < 1_000) await sleep(Math.min(GATHER_PAUSE_MS, left));
    }
    return batch;
  }

  /** Never rejects: every failure is reported through onError and leaves messages on the queue. */
  private async invoke(messages: Message[], source: EventSource): Promise<void> {
    const records = messages.map((m) => toSqsRecord(m, source));
    const event: SQSEvent = { Records: records };
    const context = lambdaContext({
      functionName: this.functionName,
      region: source.awsRegion,
      timeoutSeconds: FUNCTION_TIMEOUT_SECONDS,
    });
    this.counters.invocations++;
    let succeeded: SQSRecord[];
    try {
      const response = await this.handler(event, context);
      const verdict = readBatchResponse(response, records);
      if ("wholeBatchFailed" in verdict) {
        this.onError(new Error(`Batch failed: ${verdict.wholeBatchFailed}`), {
          queueUrl: this.queueUrl,
          phase: "response",
          event,
        });
        succeeded = [];
      } else {
        succeeded = records.filter((r) => !verdict.failed.has(r.messageId));
      }
    } catch (err) {
      this.onError(err, { queueUrl: this.queueUrl, phase: "handler", event });
      succeeded = [];
    }
    this.counters.failed += records.length - succeeded.length;
    await this.deleteRecords(succeeded, event);
  }

  /** DeleteMessageBatch takes ten entries: a batch gathered over a window is deleted in tens. */
  private async deleteRecords(records: SQSRecord[], event: SQSEvent): Promise<void> {
    for (let i = 0; i < records.length; i += 10) await this.deleteTen(records.slice(i, i + 10), event);
  }

  private async deleteTen(records: SQSRecord[], event: SQSEvent): Promise<void> {
    if (records.length === 0) return;
    try {
      const out = await this.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: this.queueUrl,
          Entries: records.map((r, i) => ({ Id: `m${i}`, ReceiptHandle: r.receiptHandle })),
        }),
      );
      this.counters.deleted += out.Successful?.length ?? 0;
      if (out.Failed && out.Failed.length > 0) {
        // The messages will be delivered again: at-least-once, as on AWS.
        const detail = out.Failed.map((f) => `${f.Id}: ${f.Code ?? ""} ${f.Message ?? ""}`).join("; ");
        this.onError(new Error(`DeleteMessageBatch failed for ${detail}`), {
          queueUrl: this.queueUrl,
          phase: "delete",
          event,
        });
      }
    } catch (err) {
      this.onError(err, { queueUrl: this.queueUrl, phase: "delete", event });
    }
  }
}

/**
 * Resolves when every poller is idle at the same moment: a coordinator may enqueue work for an
 * executor just after the executor's queue looked empty, so the check repeats until no poller
 * received anything while the others were being checked.
 */
export async function whenAllIdle(pollers: SqsEventSourcePoller[], options: IdleOptions = {}): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    const before = pollers.map((p) => p.stats.received);
    const remaining = Math.max(1, deadline - Date.now());
    await Promise.all(pollers.map((p) => p.idle({ ...options, timeoutMs: remaining })));
    if (pollers.every((p, i) => p.stats.received === before[i])) return;
    if (Date.now() > deadline) throw new Error("Pollers did not become idle together");
  }
}

function integerIn(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
  return value;
}
