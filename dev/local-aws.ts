/**
 * The AWS side of `aloft dev` and of the AWS tests: DynamoDB Local and fauxqs on loopback (or one
 * given endpoint such as LocalStack), the stack's table and queues, and the environment variables
 * through which handler modules find them. The handlers and their pollers are wired by the caller.
 * With `persistDir`, tables, messages and objects are kept there across restarts (dev/persist-dir.ts).
 */
import { applyEnv, awsClients, DEFAULT_LOCAL_REGION, localAwsEnv } from "./aws-clients.ts";
import type { AwsClients } from "./aws-clients.ts";
import { startDynamoDbLocal } from "./dynamodb-local.ts";
import type { DynamoDbLocal } from "./dynamodb-local.ts";
import { createResources, resourceEnv } from "./resources.ts";
import type { CreateResourcesOptions, LocalResources } from "./resources.ts";
import { startSqsLocal } from "./sqs-local.ts";
import type { SqsLocal } from "./sqs-local.ts";
import { PersistDir, PersistDirError } from "./persist-dir.ts";
import type { RestoredMessages } from "./fauxqs-persistence.ts";

/** Set it (e.g. http://localhost:4566 for LocalStack) to use that endpoint instead of emulators. */
const ENDPOINT_VARIABLE = "ALOFT_AWS_ENDPOINT";

export interface StartLocalAwsOptions {
  environments: string[];
  /** Prefix of the table and queue names; default "aloft-local". */
  prefix?: string;
  maxReceiveCount?: number;
  visibilityTimeoutSeconds?: number;
  visibility?: CreateResourcesOptions["visibility"];
  /**
   * Keep the table's items, the queues' messages and the buckets' objects in this directory
   * (created owner-only; a non-empty directory must be one made by this option) instead of in
   * memory only. Not with ALOFT_AWS_ENDPOINT: LocalStack keeps its own state.
   */
  persistDir?: string | PersistDir;
}

export interface LocalAws {
  mode: "emulators" | "endpoint";
  region: string;
  dynamoEndpoint: string;
  sqsEndpoint: string;
  resources: LocalResources;
  clients: AwsClients;
  /** Every variable a handler process needs (AWS_* endpoints and credentials, ALOFT_*). */
  env: Record<string, string>;
  dynamoDbLocal?: DynamoDbLocal;
  sqsLocal?: SqsLocal;
  timings: { dynamoDbLocalMs?: number; sqsLocalMs?: number; resourcesMs: number; totalMs: number };
  /** Where state is kept across restarts; undefined when it is in memory only. */
  persistDir?: PersistDir;
  /** What came back from `persistDir` at start. */
  restored?: RestoredMessages & { objects: number };
  /** Things the user must know (e.g. an emulator reachable from the network). */
  warnings: string[];
  /** Stops the emulators, closes the clients and restores process.env. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts the emulators (none when ALOFT_AWS_ENDPOINT is set: that endpoint serves every service),
 * creates the resources and sets the AWS_* and ALOFT_* variables in process.env (stop() restores them).
 */
export async function startLocalAws(options: StartLocalAwsOptions): Promise<LocalAws> {
  const started = performance.now();
  const region = DEFAULT_LOCAL_REGION;
  const endpoint = process.env[ENDPOINT_VARIABLE] || undefined;

  if (endpoint && options.persistDir) {
    throw new PersistDirError(
      `persistDir applies to the emulators; ${ENDPOINT_VARIABLE} (${endpoint}) keeps its own state`,
    );
  }
  const persist =
    typeof options.persistDir === "string" ? new PersistDir(options.persistDir) : options.persistDir;
  const ports = persist?.read().ports;

  let dynamoDbLocal: DynamoDbLocal | undefined;
  let sqsLocal: SqsLocal | undefined;
  if (!endpoint) {
    const [dynamo, sqs] = await Promise.allSettled([
      startDynamoDbLocal(persist ? { persistDir: persist.dynamodb, port: ports?.dynamodb } : {}),
      startSqsLocal({ region, ...(persist ? { persistDir: persist.fauxqs, port: ports?.sqs } : {}) }),
    ]);
    if (dynamo.status === "rejected" || sqs.status === "rejected") {
      await Promise.allSettled([
        dynamo.status === "fulfilled" ? dynamo.value.stop() : undefined,
        sqs.status === "fulfilled" ? sqs.value.stop() : undefined,
      ]);
      throw dynamo.status === "rejected" ? dynamo.reason : (sqs as PromiseRejectedResult).reason;
    }
    dynamoDbLocal = dynamo.value;
    sqsLocal = sqs.value;
  }
  const dynamoEndpoint = dynamoDbLocal?.endpoint ?? endpoint ?? "";
  const sqsEndpoint = sqsLocal?.endpoint ?? endpoint ?? "";
  const stopEmulators = () => Promise.allSettled([dynamoDbLocal?.stop(), sqsLocal?.stop()]);

  const clients = awsClients({ dynamoEndpoint, sqsEndpoint, region });
  const resourcesStarted = performance.now();
  let resources: LocalResources;
  try {
    resources = await createResources(clients, options);
  } catch (err) {
    clients.destroy();
    await stopEmulators();
    throw err;
  }
  const resourcesMs = Math.round(performance.now() - resourcesStarted);
  // The queues exist again: the messages saved before the last stop go back into them.
  const restored =
    sqsLocal && persist ? { ...sqsLocal.restoreMessages(), objects: sqsLocal.restoredObjects } : undefined;
  if (persist && dynamoDbLocal && sqsLocal)
    persist.update({ ports: { dynamodb: dynamoDbLocal.port, sqs: sqsLocal.port } });

  const env = {
    ...localAwsEnv({ dynamoEndpoint, sqsEndpoint, region }),
    // Against LocalStack every other service (S3 for large payloads, ...) lives there too.
    ...(endpoint ? { AWS_ENDPOINT_URL: endpoint } : {}),
    ...resourceEnv(resources),
  };
  const restoreEnv = applyEnv(env);

  let stopping: Promise<void> | undefined;
  return {
    mode: endpoint ? "endpoint" : "emulators",
    region,
    dynamoEndpoint,
    sqsEndpoint,
    resources,
    clients,
    env,
    ...(dynamoDbLocal ? { dynamoDbLocal } : {}),
    ...(sqsLocal ? { sqsLocal } : {}),
    ...(persist ? { persistDir: persist } : {}),
    ...(restored ? { restored } : {}),
    warnings: dynamoDbLocal?.warning ? [dynamoDbLocal.warning] : [],
    timings: {
      ...(dynamoDbLocal ? { dynamoDbLocalMs: dynamoDbLocal.startupMs } : {}),
      ...(sqsLocal ? { sqsLocalMs: sqsLocal.startupMs } : {}),
      resourcesMs,
      totalMs: Math.round(performance.now() - started),
    },
    stop() {
      stopping ??= (async () => {
        clients.destroy();
        restoreEnv();
        const results = await stopEmulators();
        const failures = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
        if (failures.length > 0) {
          throw new AggregateError(
            failures.map((f) => f.reason),
            "Stopping the local AWS emulators failed",
          );
        }
      })();
      return stopping;
    },
  };
}
