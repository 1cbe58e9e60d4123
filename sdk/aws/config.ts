/**
 * The contract between the CDK construct and the Lambda handlers: environment variable names and
 * stack output keys. Both sides import this file, so they cannot drift apart.
 */
export const ENV = {
  /** DynamoDB table holding runs, actions, history, counters and cache entries. */
  table: "ALOFT_TABLE_NAME",
  /** S3 bucket for payloads too large for an item or a message. */
  bucket: "ALOFT_BUCKET_NAME",
  /** Queue consumed by the coordinator (run starts, child completions, resumes). */
  coordinatorQueue: "ALOFT_COORDINATOR_QUEUE_URL",
  /** JSON object: TaskEnvironment name -> URL of that environment's executor queue. */
  executorQueues: "ALOFT_EXECUTOR_QUEUES",
  /** Name of the TaskEnvironment an executor function serves. */
  environment: "ALOFT_ENVIRONMENT",
  /** Days a finished run's items are kept before DynamoDB TTL removes them. */
  retentionDays: "ALOFT_RETENTION_DAYS",
  /** Seconds without progress after which the reconciler nudges a run (lambdas/reconcile.ts). */
  stallSeconds: "ALOFT_STALL_SECONDS",
  /** Seconds without progress after which the reconciler fails a run it could not move. */
  stallFailSeconds: "ALOFT_STALL_FAIL_SECONDS",
  /** Seconds a message a handler holds stays invisible after each heartbeat (lambdas/visibility.ts). */
  visibilityTimeout: "ALOFT_VISIBILITY_TIMEOUT",
  /** The function's queue's own visibility timeout, in seconds (at least the function's timeout). */
  queueVisibilityTimeout: "ALOFT_QUEUE_VISIBILITY_TIMEOUT",
  /** Local stacks only (`aloft dev`): a file the handlers also append task log lines to, as JSON. */
  taskLogFile: "ALOFT_TASK_LOG_FILE",
} as const;

/** The handlers' visibility lease when none is configured, in seconds (lambdas/visibility.ts). */
export const DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 60;

/** Stack output keys; `cdk deploy --outputs-file aloft-outputs.json` writes them for the client. */
export const OUTPUT = {
  table: "AloftTableName",
  bucket: "AloftBucketName",
  coordinatorQueue: "AloftCoordinatorQueueUrl",
  executorQueues: "AloftExecutorQueues",
  region: "AloftRegion",
  /** JSON object: TaskEnvironment name -> executor log group (`aloft logs --aws` reads these). */
  executorLogGroups: "AloftExecutorLogGroups",
  /** Written by `aloft dev` only: the file its handlers append task log lines to (no CloudWatch there). */
  taskLogFile: "AloftTaskLogFile",
  /**
   * Written by `aloft dev --cdk-out` only: the folder of its sandboxes' output, one file per
   * function (what CloudWatch Logs holds on AWS: the executors' Powertools lines).
   */
  functionLogDir: "AloftFunctionLogDir",
} as const;

/** Outputs only a local stack writes (a deployed stack's outputs lack them). */
export const LOCAL_ONLY_OUTPUTS: readonly string[] = [OUTPUT.taskLogFile, OUTPUT.functionLogDir];

/** Where the client and `aloft ... --aws` look for the stack outputs by default. */
export const DEFAULT_OUTPUTS_FILE = "aloft-outputs.json";
