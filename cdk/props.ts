/**
 * `AloftProps` and their validation: every prop is checked before any resource is created, and
 * every problem found is reported in one error, so a user fixes them all in one pass.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Duration, RemovalPolicy } from "aws-cdk-lib";
import type * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import * as logs from "aws-cdk-lib/aws-logs";
import type { Construct } from "constructs";
import { ConfigurationError } from "../sdk/errors.ts";
import type { EnvironmentSpec } from "../sdk/registry.ts";
import { findLockFile, handlerModule } from "./entries.ts";

/** Lambda's ceiling on a function's timeout. */
const MAX_LAMBDA_TIMEOUT = Duration.minutes(15);

/** Prebuilt code for the two function kinds, in place of bundling `entry` (for unit tests). */
export interface AloftCode {
  /**
   * Code whose `index.handler` is the coordinator handler with the task module loaded (and
   * `index.deadLetter`, `index.reconcile` the dead-letter consumer and the reconciler).
   */
  readonly coordinator: lambda.Code;
  /** Code whose `index.handler` is the executor handler with the task module loaded. */
  readonly executor: lambda.Code;
}

/** Log levels understood by Powertools for AWS Lambda. */
export type AloftLogLevel = "DEBUG" | "INFO" | "WARN" | "ERROR";

export interface AloftProps {
  /**
   * Path of the user's task module (TypeScript or JavaScript), absolute or relative to the working
   * directory. It is bundled into every function, and its TaskEnvironments decide the executors.
   * The module should only declare tasks: it is imported at synth time and at every cold start.
   */
  readonly entry: string;

  /**
   * The environments to deploy, one executor function each.
   * @default - every TaskEnvironment registered in this process (`listEnvironments()`); import
   * `entry` before constructing, or construct with `await Aloft.fromModule(...)`, which does
   */
  readonly environments?: readonly EnvironmentSpec[];

  /**
   * Messages an executor receives per invocation (1..10, or up to 10,000 with a batching window).
   * @default 10
   */
  readonly executorBatchSize?: number;

  /**
   * How long the executor event sources wait to fill a batch.
   * @default - no batching window: messages are delivered as soon as they arrive
   */
  readonly executorMaxBatchingWindow?: Duration;

  /**
   * Memory of the coordinator function, which replays parent task bodies.
   * @default 1024
   */
  readonly coordinatorMemoryMiB?: number;

  /**
   * Timeout of the coordinator function (at most 15 minutes); its queue's visibility timeout is
   * six times this, as AWS advises for SQS event sources.
   * @default Duration.minutes(1)
   */
  readonly coordinatorTimeout?: Duration;

  /**
   * How long a message the coordinator holds stays invisible unless its heartbeat renews it (every
   * third of it): about the time before a crashed coordinator's messages are handled again. Each
   * executor's is its TaskEnvironment's `visibilityTimeout` (also 60 s by default).
   * @default Duration.seconds(60)
   */
  readonly coordinatorVisibilityTimeout?: Duration;

  /**
   * Most coordinator invocations running at once (the event source's maximum concurrency, 2..1000).
   * @default - no limit beyond the account's concurrency
   */
  readonly coordinatorMaxConcurrency?: number;

  /**
   * Deliveries of a message before SQS moves it to its queue's dead-letter queue. A failed message
   * comes back after 2, 4, 8, ... seconds (capped at its queue's lease) and a crashed one a lease
   * later, so with the defaults a message keeps being retried for about six minutes.
   * @default 10
   */
  readonly maxReceiveCount?: number;

  /**
   * Days a finished run's items are kept before DynamoDB TTL removes them; large payloads in S3
   * expire `retentionDays + 7` days after they are written.
   * @default 7
   */
  readonly retentionDays?: number;

  /**
   * The liveness bound: a run without progress this long is nudged by the reconciler (which runs
   * every minute), and failed with a StalledRunError after four times this if nothing moved it.
   * Keep it above the longest a task may legitimately show no progress (its Lambda timeout, its
   * retry backoff).
   * @default Duration.minutes(15)
   */
  readonly stallTimeout?: Duration;

  /**
   * Retention of every function's CloudWatch log group.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * Powertools log level of every function (`POWERTOOLS_LOG_LEVEL`).
   * @default "INFO"
   */
  readonly logLevel?: AloftLogLevel;

  /**
   * What happens to the table, the bucket and the log groups when they leave the stack.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;

  /**
   * Empty the payload bucket when it is deleted (adds CDK's auto-delete custom resource); only
   * meaningful with `removalPolicy: RemovalPolicy.DESTROY`.
   * @default false
   */
  readonly autoDeleteObjects?: boolean;

  /**
   * Actions run when an alarm (dead-letter queue depth, handler errors) fires, e.g. an SNS topic.
   * @default - the alarms are created without actions
   */
  readonly alarmActions?: readonly cloudwatch.IAlarmAction[];

  /**
   * Prebuilt code instead of bundling `entry`: only for tests that must not run esbuild.
   * @default - `entry` is bundled with each handler by the locally installed esbuild (no Docker)
   */
  readonly code?: AloftCode;

  /**
   * Directory that holds the project's lock file and `node_modules` (NodejsFunction's projectRoot).
   * @default - the directory of the nearest lock file at or above `entry`
   */
  readonly projectRoot?: string;
}

// Names Lambda reserves or Aloft sets itself; a TaskEnvironment's `env` may not use them.
const RESERVED_ENV_NAMES = new Set([
  "_HANDLER",
  "_X_AMZN_TRACE_ID",
  "AWS_REGION",
  "AWS_DEFAULT_REGION",
  "AWS_EXECUTION_ENV",
  "AWS_ACCESS_KEY",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "LAMBDA_TASK_ROOT",
  "LAMBDA_RUNTIME_DIR",
  "TZ",
]);

/** Props with defaults applied, after validation. */
export interface Settings {
  entry: string;
  projectRoot: string;
  lockFile: string | undefined;
  code: AloftCode | undefined;
  executorBatchSize: number;
  executorMaxBatchingWindow: Duration | undefined;
  coordinatorMemoryMiB: number;
  coordinatorTimeout: Duration;
  coordinatorVisibilityTimeout: Duration;
  coordinatorMaxConcurrency: number | undefined;
  maxReceiveCount: number;
  stallTimeout: Duration;
  retentionDays: number;
  logRetention: logs.RetentionDays;
  logLevel: AloftLogLevel;
  removalPolicy: RemovalPolicy;
  autoDeleteObjects: boolean;
  alarmActions: readonly cloudwatch.IAlarmAction[];
}

/** A lease is renewed every third of it, so it needs a few seconds; SQS allows at most 12 hours. */
function leaseError(ms: number): string | undefined {
  return ms >= 3_000 && ms <= 12 * 3600_000 && ms % 1000 === 0
    ? undefined
    : `must be whole seconds from 3 seconds to 12 hours, got ${ms} ms`;
}

const isWhole = (n: unknown, min: number, max: number): boolean =>
  typeof n === "number" && Number.isInteger(n) && n >= min && n <= max;

/** Checks every prop and environment, and throws one error listing every problem found. */
export function validate(
  scope: Construct,
  props: AloftProps,
  environments: readonly EnvironmentSpec[],
): Settings {
  const errors: string[] = [];
  const entry = typeof props?.entry === "string" ? path.resolve(props.entry) : "";
  if (!entry) {
    errors.push("entry: the path of your task module is required");
  } else if (!/\.(c|m)?(t|j)sx?$/.test(entry)) {
    errors.push(`entry: ${props.entry} is not a TypeScript or JavaScript file`);
  } else if (!fs.existsSync(entry)) {
    errors.push(`entry: ${props.entry} does not exist (resolved to ${entry})`);
  }

  let projectRoot = props?.projectRoot === undefined ? undefined : path.resolve(props.projectRoot);
  let lockFile: string | undefined;
  if (!props?.code && entry) {
    lockFile = findLockFile(projectRoot ?? path.dirname(entry));
    projectRoot ??= lockFile ? path.dirname(lockFile) : undefined;
    if (!projectRoot) {
      errors.push(
        `projectRoot: no lock file (package-lock.json, yarn.lock, pnpm-lock.yaml, bun.lock) at or above ${path.dirname(entry)}; pass projectRoot`,
      );
    }
    for (const kind of ["coordinator", "executor"] as const) {
      if (!fs.existsSync(handlerModule(kind)))
        errors.push(`Aloft's ${kind} handler is missing at ${handlerModule(kind)}`);
    }
  }

  const batchSize = props?.executorBatchSize ?? 10;
  const window = props?.executorMaxBatchingWindow;
  if (window !== undefined && window.toSeconds() > 300) {
    errors.push(`executorMaxBatchingWindow: at most 5 minutes, got ${window.toHumanString()}`);
  }
  const maxBatch = window === undefined ? 10 : 10_000;
  if (!isWhole(batchSize, 1, maxBatch)) {
    errors.push(
      `executorBatchSize: a whole number 1..${maxBatch}${window ? "" : " (up to 10,000 with executorMaxBatchingWindow)"}, got ${batchSize}`,
    );
  }
  const coordinatorMemoryMiB = props?.coordinatorMemoryMiB ?? 1024;
  if (!isWhole(coordinatorMemoryMiB, 128, 10240)) {
    errors.push(`coordinatorMemoryMiB: a whole number 128..10240, got ${coordinatorMemoryMiB}`);
  }
  const coordinatorTimeout = props?.coordinatorTimeout ?? Duration.minutes(1);
  if (coordinatorTimeout.toSeconds() < 1 || coordinatorTimeout.toSeconds() > MAX_LAMBDA_TIMEOUT.toSeconds()) {
    errors.push(`coordinatorTimeout: 1 second..15 minutes, got ${coordinatorTimeout.toHumanString()}`);
  }
  const coordinatorVisibilityTimeout = props?.coordinatorVisibilityTimeout ?? Duration.seconds(60);
  const leaseProblem = leaseError(coordinatorVisibilityTimeout.toMilliseconds());
  if (leaseProblem) errors.push(`coordinatorVisibilityTimeout: ${leaseProblem}`);
  const coordinatorMaxConcurrency = props?.coordinatorMaxConcurrency;
  if (coordinatorMaxConcurrency !== undefined && !isWhole(coordinatorMaxConcurrency, 2, 1000)) {
    errors.push(`coordinatorMaxConcurrency: a whole number 2..1000, got ${coordinatorMaxConcurrency}`);
  }
  const maxReceiveCount = props?.maxReceiveCount ?? 10;
  if (!isWhole(maxReceiveCount, 1, 1000))
    errors.push(`maxReceiveCount: a whole number 1..1000, got ${maxReceiveCount}`);
  const stallTimeout = props?.stallTimeout ?? Duration.minutes(15);
  if (stallTimeout.toSeconds() < 60)
    errors.push(`stallTimeout: at least 1 minute, got ${stallTimeout.toHumanString()}`);
  const retentionDays = props?.retentionDays ?? 7;
  if (!isWhole(retentionDays, 1, 3650))
    errors.push(`retentionDays: a whole number of days 1..3650, got ${retentionDays}`);
  const logLevel = props?.logLevel ?? "INFO";
  if (!["DEBUG", "INFO", "WARN", "ERROR"].includes(logLevel)) {
    errors.push(`logLevel: one of DEBUG, INFO, WARN, ERROR, got ${JSON.stringify(logLevel)}`);
  }
  const removalPolicy = props?.removalPolicy ?? RemovalPolicy.RETAIN;
  const autoDeleteObjects = props?.autoDeleteObjects ?? false;
  if (autoDeleteObjects && removalPolicy !== RemovalPolicy.DESTROY) {
    errors.push(
      "autoDeleteObjects: needs removalPolicy: RemovalPolicy.DESTROY (a retained bucket is never emptied)",
    );
  }

  if (environments.length === 0) {
    errors.push(
      "no TaskEnvironment is registered: construct with `await Aloft.fromModule(scope, id, props)`, " +
        "import the task module before `new Aloft(...)`, or pass `environments`",
    );
  }
  const seen = new Set<string>();
  for (const spec of environments) {
    const what = `environment ${JSON.stringify(spec.name)}`;
    if (seen.has(spec.name)) errors.push(`${what}: listed twice`);
    seen.add(spec.name);
    if (!isWhole(spec.memoryMiB, 128, 10240))
      errors.push(`${what}: memoryMiB must be 128..10240, got ${spec.memoryMiB}`);
    for (const m of spec.memorySizesMiB ?? [])
      if (!isWhole(m, 128, 10240)) errors.push(`${what}: memorySizesMiB must be 128..10240 each, got ${m}`);
    if (
      spec.timeoutMs !== undefined &&
      !(spec.timeoutMs > 0 && spec.timeoutMs <= MAX_LAMBDA_TIMEOUT.toMilliseconds())
    ) {
      errors.push(
        `${what}: timeout ${spec.timeoutMs} ms exceeds Lambda's 15 minutes; split the work into child tasks`,
      );
    }
    const lease = spec.visibilityTimeoutMs === undefined ? undefined : leaseError(spec.visibilityTimeoutMs);
    if (lease) errors.push(`${what}: visibilityTimeout ${lease}`);
    if (spec.concurrency !== undefined && !isWhole(spec.concurrency, 1, Number.MAX_SAFE_INTEGER)) {
      errors.push(`${what}: concurrency must be a whole number >= 1, got ${spec.concurrency}`);
    }
    for (const name of Object.keys(spec.env ?? {})) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
        errors.push(`${what}: env name ${JSON.stringify(name)} is not a valid variable name`);
      } else if (
        name.startsWith("ALOFT_") ||
        name.startsWith("AWS_LAMBDA_") ||
        RESERVED_ENV_NAMES.has(name)
      ) {
        errors.push(`${what}: env name ${name} is reserved by Lambda or Aloft`);
      }
    }
  }

  if (errors.length > 0) {
    throw new ConfigurationError(`Aloft ${scope.node.path}: invalid props:\n  - ${errors.join("\n  - ")}`);
  }
  return {
    entry,
    projectRoot: projectRoot ?? "",
    lockFile,
    code: props.code,
    executorBatchSize: batchSize,
    executorMaxBatchingWindow: window,
    coordinatorMemoryMiB,
    coordinatorTimeout,
    coordinatorVisibilityTimeout,
    coordinatorMaxConcurrency,
    maxReceiveCount,
    stallTimeout,
    retentionDays,
    logRetention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
    logLevel,
    removalPolicy,
    autoDeleteObjects,
    alarmActions: props.alarmActions ?? [],
  };
}
