/**
 * The AWS path on this machine: DynamoDB Local + fauxqs (SQS and S3) (dev/local-aws.ts), the
 * stack's table, queues and bucket, and the real handler modules driven by the local event-source
 * poller. Used by `aloft dev`, the AWS tests and bench/aws.ts.
 */
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { executorSizes, listEnvironments } from "../sdk/registry.ts";
import { DEFAULT_VISIBILITY_TIMEOUT_SECONDS, ENV } from "../sdk/aws/config.ts";
import { handleBatch as coordinatorBatch } from "../lambdas/coordinator.ts";
import { handler as deadLetter } from "../lambdas/dead-letter.ts";
import { handleBatch as executorBatch } from "../lambdas/executor.ts";
import { reconcile } from "../lambdas/reconcile.ts";
import { applyEnv, LOCAL_CREDENTIALS } from "./aws-clients.ts";
import { startLocalAws } from "./local-aws.ts";
import type { LocalAws } from "./local-aws.ts";
import { PersistDir } from "./persist-dir.ts";
import { SqsEventSourcePoller } from "./poller.ts";
import type { SqsEventSourcePollerOptions } from "./poller.ts";
import { resetRuntime, runtime } from "../sdk/aws/runtime.ts";
import { withHeartbeat } from "../lambdas/visibility.ts";
import type { BatchHandler } from "../lambdas/visibility.ts";

export interface DevStackOptions {
  /** TaskEnvironment names; default every environment registered (import the task module first). */
  environments?: string[];
  /**
   * Receives before a message is dead-lettered; default 10, as deployed (failed messages come back
   * after 2, 4, 8, ... seconds, so fewer would dead-letter within seconds of a transient fault).
   */
  maxReceiveCount?: number;
  /**
   * Every queue's visibility timeout, which is also the handlers' lease (lambdas/visibility.ts: a
   * crashed handler's messages come back after it; no function timeout constrains it locally).
   * Default: each queue's own setting, as deployed — a TaskEnvironment's `visibilityTimeout`, the
   * coordinator's below — else 60 s.
   */
  visibilityTimeoutSeconds?: number;
  /** The coordinator queue's, when `visibilityTimeoutSeconds` is not given; default 60 s. */
  coordinatorVisibilityTimeoutSeconds?: number;
  /** Executor batches in flight per environment; default 4. */
  executorConcurrency?: number;
  coordinatorConcurrency?: number;
  /**
   * How often the reconciler runs (lambdas/reconcile.ts; its bounds come from ALOFT_STALL_SECONDS
   * and ALOFT_STALL_FAIL_SECONDS); default 60 s, as the CDK stack's schedule. 0: never.
   */
  reconcileIntervalMs?: number;
  /**
   * A file the handlers also append task bodies' log lines to, as JSON (there is no CloudWatch
   * here); `aloft logs --aws` reads it when the outputs name it (AloftTaskLogFile). Default: none.
   */
  taskLogFile?: string;
  /** Poller options (e.g. onError) applied to every poller. */
  poller?: SqsEventSourcePollerOptions;
  /**
   * Keep the table, queues and bucket in this directory across restarts (`aloft dev --persist`):
   * the resource names stay the same, so runs started before a restart keep their status and
   * result, and runs in flight continue. Default: in memory, gone when the stack stops.
   */
  persistDir?: string;
}

export interface DevStack {
  aws: LocalAws;
  /** The client configuration (what a deployed stack's outputs file would hold). */
  config: {
    table: string;
    bucket: string;
    coordinatorQueue: string;
    executorQueues: Record<string, string>;
    region: string;
  };
  /** Variables that point `aloft ... --aws` and the handlers at this stack. */
  env: Record<string, string>;
  /** Every poller: the coordinator's, each executor's, and the dead-letter consumer's on every DLQ. */
  pollers: SqsEventSourcePoller[];
  /** The dead-letter consumer's pollers (one per DLQ), also in `pollers`. */
  deadLetterPollers: SqsEventSourcePoller[];
  /** Each queue's lease in seconds (also its visibility timeout): what the handlers hold messages for. */
  visibility: { coordinator: number; executors: Record<string, number> };
  stop(): Promise<void>;
}

export async function startDevStack(options: DevStackOptions = {}): Promise<DevStack> {
  // Executor keys: each environment's own, and `<name>@<MiB>` per further memory size (one queue each,
  // as deployed; the memory itself is not limited in this one process).
  const environments =
    options.environments ?? listEnvironments().flatMap((e) => executorSizes(e).map((x) => x.key));
  if (!environments.length)
    throw new Error("no TaskEnvironment is registered: import the task module before starting the dev stack");
  // Persisted state keeps its names; in memory, a fresh name each start.
  const persist = options.persistDir ? new PersistDir(options.persistDir) : undefined;
  const prefix = persist?.read().prefix ?? `aloft-dev-${Math.random().toString(36).slice(2, 8)}`;
  persist?.update({ prefix });
  const visibility = visibilitySettings(options, environments);
  const aws = await startLocalAws({
    environments,
    prefix,
    ...(persist ? { persistDir: persist } : {}),
    maxReceiveCount: options.maxReceiveCount ?? 10,
    visibility,
  });
  const bucket = `${prefix}-payloads`.toLowerCase();
  // S3 lives on the SQS endpoint: fauxqs serves both, and LocalStack's one endpoint serves every service.
  const s3Endpoint = aws.sqsEndpoint;
  const s3 = new S3Client({
    endpoint: s3Endpoint,
    region: aws.region,
    credentials: LOCAL_CREDENTIALS,
    forcePathStyle: true,
  });
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (e) {
    if (!/BucketAlready/.test((e as Error).name)) {
      await aws.stop();
      throw e;
    }
  } finally {
    s3.destroy();
  }
  const extra = {
    [ENV.bucket]: bucket,
    AWS_ENDPOINT_URL_S3: s3Endpoint,
    POWERTOOLS_LOG_LEVEL: process.env["POWERTOOLS_LOG_LEVEL"] ?? "WARN",
    ...(options.taskLogFile ? { [ENV.taskLogFile]: options.taskLogFile } : {}),
  };
  const restore = applyEnv(extra, []);
  resetRuntime();
  const env = { ...aws.env, ...extra };
  const sqs = aws.clients.sqs;
  const pollers: SqsEventSourcePoller[] = [];
  const res = aws.resources;
  const deadLetterPollers = [res.coordinatorDlqUrl, ...Object.values(res.executorDlqs)].map(
    (url) =>
      new SqsEventSourcePoller(sqs, url, deadLetter, {
        batchSize: 10,
        maxConcurrency: 1,
        functionName: "aloft-dead-letter",
        ...options.poller,
      }),
  );
  try {
    pollers.push(
      new SqsEventSourcePoller(
        sqs,
        aws.resources.coordinatorQueueUrl,
        leased(coordinatorBatch, visibility.coordinator),
        {
          batchSize: 10,
          maxConcurrency: options.coordinatorConcurrency ?? 2,
          functionName: "aloft-coordinator",
          ...options.poller,
        },
      ),
      ...Object.entries(aws.resources.executorQueues).map(
        ([name, url]) =>
          new SqsEventSourcePoller(sqs, url, leased(executorBatch, visibility.executors[name]!), {
            batchSize: 10,
            maxConcurrency: options.executorConcurrency ?? 4,
            functionName: `aloft-executor-${name}`,
            ...options.poller,
          }),
      ),
      ...deadLetterPollers,
    );
    await Promise.all(pollers.map((p) => p.start()));
  } catch (e) {
    // Undo what the stack did so far: the pollers that started, the runtime, process.env, emulators.
    await Promise.allSettled(pollers.map((p) => p.stop()));
    resetRuntime();
    restore();
    await aws.stop();
    throw e;
  }
  // The reconciler's schedule; a tick that overruns the interval is not started twice.
  let ticking: Promise<unknown> | undefined;
  const interval = options.reconcileIntervalMs ?? 60_000;
  const timer =
    interval > 0
      ? setInterval(() => {
          ticking ??= reconcile(runtime())
            .catch((e: unknown) => runtime().log.error("reconciler tick failed", { error: String(e) }))
            .finally(() => (ticking = undefined));
        }, interval).unref()
      : undefined;
  let stopping: Promise<void> | undefined;
  return {
    aws,
    config: {
      table: aws.resources.tableName,
      bucket,
      coordinatorQueue: aws.resources.coordinatorQueueUrl,
      executorQueues: aws.resources.executorQueues,
      region: aws.region,
    },
    env,
    pollers,
    deadLetterPollers,
    visibility,
    stop() {
      stopping ??= (async () => {
        clearInterval(timer);
        await ticking;
        await Promise.all(pollers.map((p) => p.stop()));
        resetRuntime();
        restore();
        await aws.stop();
      })();
      return stopping;
    },
  };
}

/** Each queue's visibility timeout in seconds: the option for all, else each one's own setting. */
export function visibilitySettings(
  options: DevStackOptions,
  environments: string[],
): { coordinator: number; executors: Record<string, number> } {
  const all = options.visibilityTimeoutSeconds;
  const specs = new Map(listEnvironments().map((e) => [e.name, e]));
  const ofEnv = (name: string): number => {
    const ms = specs.get(name.split("@")[0]!)?.visibilityTimeoutMs;
    return ms === undefined ? DEFAULT_VISIBILITY_TIMEOUT_SECONDS : Math.ceil(ms / 1000);
  };
  return {
    coordinator: all ?? options.coordinatorVisibilityTimeoutSeconds ?? DEFAULT_VISIBILITY_TIMEOUT_SECONDS,
    executors: Object.fromEntries(environments.map((e) => [e, all ?? ofEnv(e)])),
  };
}

/** A handler holding its messages by a lease as long as its queue's visibility (so none is taken at start). */
function leased(handler: BatchHandler, seconds: number): BatchHandler {
  return withHeartbeat(handler, {
    settings: { visibilityTimeoutSeconds: seconds, queueVisibilityTimeoutSeconds: seconds },
  });
}
