/**
 * The visibility lease around a batch handler (both Lambdas, and the local poller's handlers).
 *
 * A message an invocation holds stays invisible only for a short lease (default 60 s) that a
 * heartbeat renews every third of it (ChangeMessageVisibilityBatch, ten per request) until the
 * invocation returns or reaches its deadline. A sandbox that dies (out of memory, killed, a runtime
 * fault) stops renewing, so its messages are delivered again about one lease later rather than
 * after the queue's own visibility timeout, which Lambda requires to be at least the function's
 * timeout (docs/aws.md, "Visibility: leases and heartbeats"). When the queue's timeout is longer
 * than the lease, the lease is taken as the invocation starts, so a sandbox that dies at once is
 * recovered as fast as one that dies later. Failed items come back after their own backoff
 * (2^receives seconds, capped), not after a whole timeout.
 */
import { ChangeMessageVisibilityBatchCommand } from "@aws-sdk/client-sqs";
import type { SQSClient } from "@aws-sdk/client-sqs";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { realClock } from "./clock.ts";
import type { Clock } from "./clock.ts";
import { DEFAULT_VISIBILITY_TIMEOUT_SECONDS, ENV } from "../sdk/aws/config.ts";
import { runtime } from "../sdk/aws/runtime.ts";

export type BatchHandler = (event: SQSEvent, context?: Context) => Promise<SQSBatchResponse>;

export interface LeaseSettings {
  /** Seconds a held message stays invisible after each heartbeat. */
  visibilityTimeoutSeconds: number;
  /** The queue's own visibility timeout, if known: above the lease, the lease is taken at once. */
  queueVisibilityTimeoutSeconds?: number | undefined;
  /** Longest wait before a failed item is delivered again; default the lease. */
  retryCapSeconds?: number | undefined;
}

export interface HeartbeatOptions {
  /** Default: from the function's variables (ENV.visibilityTimeout, ENV.queueVisibilityTimeout). */
  settings?: LeaseSettings;
  clock?: Clock;
  /** Default: the handlers' runtime client. */
  sqs?: () => SQSClient;
  /** A record's queue URL from its eventSourceARN; default: the configured queue of that name. */
  queueUrl?: (arn: string) => string | undefined;
  log?: (message: string, extra: Record<string, unknown>) => void;
}

/** Wraps `handler` so the messages of each invocation are held by a lease (see the file comment). */
export function withHeartbeat(handler: BatchHandler, options: HeartbeatOptions = {}): BatchHandler {
  return async (event, context) => {
    const lease = new Lease(event.Records ?? [], context, options);
    let response: SQSBatchResponse;
    try {
      response = await handler(event, context);
    } catch (e) {
      // Lambda retries the whole batch of an invocation that throws: each message after its backoff.
      await lease.end(undefined);
      throw e;
    }
    await lease.end(new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier)));
    return response;
  };
}

export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): LeaseSettings {
  const seconds = (name: string): number | undefined => {
    const n = Number(env[name]);
    return env[name] && Number.isFinite(n) && n > 0 ? n : undefined;
  };
  return {
    visibilityTimeoutSeconds: seconds(ENV.visibilityTimeout) ?? DEFAULT_VISIBILITY_TIMEOUT_SECONDS,
    queueVisibilityTimeoutSeconds: seconds(ENV.queueVisibilityTimeout),
  };
}

/** Seconds until a failed item that was received `receives` times is delivered again. */
export function retryDelaySeconds(receives: number, capSeconds: number): number {
  return Math.min(2 ** Math.max(1, receives), Math.max(1, Math.floor(capSeconds)));
}

interface Held {
  id: string;
  queueUrl: string;
  receiptHandle: string;
  receives: number;
}

class Lease {
  private held: Held[];
  private readonly clock: Clock;
  private readonly settings: LeaseSettings;
  private readonly deadline: number;
  private readonly beats = new Set<Promise<void>>();
  private readonly options: HeartbeatOptions;
  private timer: unknown;
  private ended = false;

  constructor(records: SQSRecord[], context: Context | undefined, options: HeartbeatOptions) {
    this.options = options;
    this.clock = options.clock ?? realClock;
    this.held = records.length ? this.hold(records) : [];
    this.settings = options.settings ?? settingsFromEnv();
    // Lambda ends the invocation at its deadline; no heartbeat is due past it.
    const remaining = context?.getRemainingTimeInMillis?.();
    this.deadline = remaining === undefined ? Infinity : this.clock.now() + remaining;
    if (!this.held.length) return;
    // A queue whose own timeout is longer than the lease (on AWS, always: it is at least the
    // function's timeout) would hide a crashed invocation's messages for all of it: shorten to the
    // lease at once. A queue at the lease already gave each message one on receipt.
    const q = this.settings.queueVisibilityTimeoutSeconds;
    if (q !== undefined && q > this.settings.visibilityTimeoutSeconds) this.beat();
    else this.schedule();
  }

  /** The records this lease can renew: those with a receipt handle from a known queue. */
  private hold(records: SQSRecord[]): Held[] {
    const urlOf = this.options.queueUrl ?? configuredQueueUrl;
    return records.flatMap((r) => {
      const queueUrl = r.receiptHandle && r.eventSourceARN ? urlOf(r.eventSourceARN) : undefined;
      if (!queueUrl) return [];
      const receives = Number(r.attributes?.ApproximateReceiveCount ?? "1") || 1;
      return [{ id: r.messageId, queueUrl, receiptHandle: r.receiptHandle, receives }];
    });
  }

  private get intervalMs(): number {
    return (this.settings.visibilityTimeoutSeconds * 1000) / 3;
  }

  private schedule(): void {
    if (this.ended || this.clock.now() + this.intervalMs >= this.deadline) return;
    this.timer = this.clock.setTimeout(() => this.beat(), this.intervalMs);
  }

  private beat(): void {
    if (this.ended) return;
    const lease = Math.ceil(this.settings.visibilityTimeoutSeconds);
    const p = this.change(this.held, () => lease, "heartbeat").finally(() => this.beats.delete(p));
    this.beats.add(p);
    this.schedule();
  }

  /**
   * Stops the heartbeat; `failed` (every message if undefined) come back after their backoff. The
   * last heartbeat is awaited first, or it could renew a lease the backoff just shortened.
   */
  async end(failed: Set<string> | undefined): Promise<void> {
    this.ended = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    await Promise.all(this.beats);
    const retry = this.held.filter((h) => !failed || failed.has(h.id));
    const cap = this.settings.retryCapSeconds ?? this.settings.visibilityTimeoutSeconds;
    if (retry.length) await this.change(retry, (h) => retryDelaySeconds(h.receives, cap), "retry backoff");
  }

  /** ChangeMessageVisibilityBatch per queue, ten at a time. Never throws: a lost call is logged. */
  private async change(held: Held[], seconds: (h: Held) => number, what: string): Promise<void> {
    const lost = new Set<Held>();
    const calls: Promise<void>[] = [];
    for (const queueUrl of new Set(held.map((h) => h.queueUrl))) {
      const mine = held.filter((h) => h.queueUrl === queueUrl);
      for (let i = 0; i < mine.length; i += 10) {
        const chunk = mine.slice(i, i + 10);
        const entries = chunk.map((h, j) => ({
          Id: `m${j}`,
          ReceiptHandle: h.receiptHandle,
          VisibilityTimeout: seconds(h),
        }));
        calls.push(
          this.sqs()
            .send(new ChangeMessageVisibilityBatchCommand({ QueueUrl: queueUrl, Entries: entries }))
            .then((out) => {
              for (const f of out.Failed ?? []) {
                // Received again elsewhere or deleted: this lease is gone and renewing it cannot succeed.
                if (f.Code === "ReceiptHandleIsInvalid" || f.Code === "MessageNotInflight")
                  lost.add(chunk[Number(f.Id?.slice(1))]!);
                else this.warn(`${what} failed for a message`, { code: f.Code, message: f.Message });
              }
            })
            .catch((e: unknown) =>
              // A throttled or failed heartbeat leaves the lease as it was; the next one renews it.
              this.warn(`${what} failed`, { queueUrl, messages: chunk.length, error: String(e) }),
            ),
        );
      }
    }
    await Promise.all(calls);
    if (lost.size) this.held = this.held.filter((h) => !lost.has(h));
  }

  private sqs(): SQSClient {
    return (this.options.sqs ?? (() => runtime().sqs))();
  }

  private warn(message: string, extra: Record<string, unknown>): void {
    if (this.options.log) this.options.log(message, extra);
    else runtime().log.warn(message, extra);
  }
}

/** The configured queue (coordinator's or an executor's) whose name the ARN ends with. */
function configuredQueueUrl(arn: string): string | undefined {
  const name = arn.split(":").at(-1);
  const { coordinatorQueue, executorQueues } = runtime().config;
  return [coordinatorQueue, ...Object.values(executorQueues)].find((u) => u.endsWith(`/${name}`));
}
