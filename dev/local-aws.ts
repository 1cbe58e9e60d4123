/**
 * The AWS side of `aloft dev` and of the AWS tests: DynamoDB Local and fauxqs on loopback (or one
 * given endpoint such as LocalStack), the stack's table and queues, and the environment variables
 * through which handler modules find them. The handlers and their pollers are wired by the caller.
 */
import { applyEnv, awsClients, DEFAULT_LOCAL_REGION, localAwsEnv } from "./aws-clients.ts";
import type { AwsClients } from "./aws-clients.ts";
import { startDynamoDbLocal } from "./dynamodb-local.ts";
import type { DynamoDbLocal } from "./dynamodb-local.ts";
import { createResources, resourceEnv } from "./resources.ts";
import type { CreateResourcesOptions, LocalResources } from "./resources.ts";
import { startSqsLocal } from "./sqs-local.ts";
import type { SqsLocal } from "./sqs-local.ts";

/** Set it (e.g. http://localhost:4566 for LocalStack) to use that endpoint instead of emulators. */
const ENDPOINT_VARIABLE = "ALOFT_AWS_ENDPOINT";

export interface StartLocalAwsOptions {
  environments: string[];
  /** Prefix of the table and queue names; default "aloft-local". */
  prefix?: string;
  maxReceiveCount?: number;
  visibilityTimeoutSeconds?: number;
  visibility?: CreateResourcesOptions["visibility"];
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

  let dynamoDbLocal: DynamoDbLocal | undefined;
  let sqsLocal: SqsLocal | undefined;
  if (!endpoint) {
    const [dynamo, sqs] = await Promise.allSettled([startDynamoDbLocal(), startSqsLocal({ region })]);
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
