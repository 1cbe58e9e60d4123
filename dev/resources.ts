/**
 * The table and queues of an Aloft stack, created through the real AWS APIs of a local endpoint
 * (DynamoDB Local + fauxqs, or LocalStack), in the shape the CDK stack gives them.
 */
import {
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  ResourceInUseException,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
} from "@aws-sdk/client-dynamodb";
import type { DynamoDBClient, TableDescription } from "@aws-sdk/client-dynamodb";
import { CreateQueueCommand, GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import type { SQSClient } from "@aws-sdk/client-sqs";
import { ENV } from "../sdk/aws/config.ts";
import { TABLE_SCHEMA } from "../sdk/aws/store/table.ts";
import type { AwsClients } from "./aws-clients.ts";

const DEFAULT_MAX_RECEIVE_COUNT = 5;
const DLQ_RETENTION_SECONDS = 14 * 24 * 3600;

export interface CreateResourcesOptions {
  /** TaskEnvironment names; each gets an executor queue and its DLQ. */
  environments: string[];
  /** Prefix of every table and queue name; default "aloft-local". */
  prefix?: string;
  /** Receives before a message moves to its DLQ; default 5. */
  maxReceiveCount?: number;
  /** The queues' default visibility timeout; default 30 s (Lambda's SQS pollers use it). */
  visibilityTimeoutSeconds?: number;
  /** Per queue, over the default: the coordinator's, and each TaskEnvironment's executor queue's. */
  visibility?: { coordinator?: number; executors?: Record<string, number> };
}

export interface LocalResources {
  tableName: string;
  coordinatorQueueUrl: string;
  coordinatorDlqUrl: string;
  executorQueues: Record<string, string>;
  executorDlqs: Record<string, string>;
  /** False when the endpoint rejected UpdateTimeToLive (expired items then stay until deleted). */
  ttlEnabled: boolean;
}

/** Creates them with `clients` (the caller's: they stay open). */
export async function createResources(
  clients: AwsClients,
  options: CreateResourcesOptions,
): Promise<LocalResources> {
  const prefix = options.prefix ?? "aloft-local";
  const environments = [...new Set(options.environments)];
  for (const env of environments) executorQueueName(prefix, env);
  const queues = createQueues(clients.sqs, prefix, environments, options);
  const table = createTable(clients.dynamo, `${prefix}-table`);
  const [q, t] = await Promise.all([queues, table]);
  return { tableName: t.tableName, ttlEnabled: t.ttlEnabled, ...q };
}

/** The Aloft variables (sdk/aws/config.ts) a handler reads to find these resources. */
export function resourceEnv(resources: LocalResources): Record<string, string> {
  return {
    [ENV.table]: resources.tableName,
    [ENV.coordinatorQueue]: resources.coordinatorQueueUrl,
    [ENV.executorQueues]: JSON.stringify(resources.executorQueues),
  };
}

async function createTable(dynamo: DynamoDBClient, tableName: string) {
  const { partitionKey, sortKey, gsi1, ttlAttribute } = TABLE_SCHEMA;
  try {
    await dynamo.send(
      new CreateTableCommand({
        TableName: tableName,
        BillingMode: "PAY_PER_REQUEST",
        AttributeDefinitions: [partitionKey, sortKey, gsi1.partitionKey, gsi1.sortKey].map((name) => ({
          AttributeName: name,
          AttributeType: "S",
        })),
        KeySchema: [
          { AttributeName: partitionKey, KeyType: "HASH" },
          { AttributeName: sortKey, KeyType: "RANGE" },
        ],
        GlobalSecondaryIndexes: [
          {
            IndexName: gsi1.name,
            KeySchema: [
              { AttributeName: gsi1.partitionKey, KeyType: "HASH" },
              { AttributeName: gsi1.sortKey, KeyType: "RANGE" },
            ],
            Projection: { ProjectionType: "INCLUDE", NonKeyAttributes: [...gsi1.projected] },
          },
        ],
      }),
    );
  } catch (err) {
    // A shared endpoint (LocalStack) may already hold it from an earlier run: reuse it if it fits.
    if (!(err instanceof ResourceInUseException)) throw err;
    const existing = await dynamo.send(new DescribeTableCommand({ TableName: tableName }));
    assertTableShape(tableName, existing.Table);
  }
  // DynamoDB Local creates tables ACTIVE at once; LocalStack and AWS pass through CREATING.
  await waitUntilTableExists({ client: dynamo, maxWaitTime: 60, minDelay: 1 }, { TableName: tableName });
  return { tableName, ttlEnabled: await enableTtl(dynamo, tableName, ttlAttribute) };
}

function assertTableShape(tableName: string, table: TableDescription | undefined): void {
  const keys = (table?.KeySchema ?? []).map((k) => `${k.AttributeName}:${k.KeyType}`).join(",");
  const gsi = table?.GlobalSecondaryIndexes?.find((i) => i.IndexName === TABLE_SCHEMA.gsi1.name);
  const expected = `${TABLE_SCHEMA.partitionKey}:HASH,${TABLE_SCHEMA.sortKey}:RANGE`;
  if (keys !== expected || !gsi) {
    throw new Error(
      `Table ${tableName} already exists with another shape (keys ${keys || "?"}, ` +
        `gsi1 ${gsi ? "present" : "missing"}); delete it or use another prefix.`,
    );
  }
}

async function enableTtl(dynamo: DynamoDBClient, tableName: string, attribute: string): Promise<boolean> {
  try {
    const current = await dynamo.send(new DescribeTimeToLiveCommand({ TableName: tableName }));
    const status = current.TimeToLiveDescription?.TimeToLiveStatus;
    if (
      (status === "ENABLED" || status === "ENABLING") &&
      current.TimeToLiveDescription?.AttributeName === attribute
    ) {
      return true;
    }
    await dynamo.send(
      new UpdateTimeToLiveCommand({
        TableName: tableName,
        TimeToLiveSpecification: { Enabled: true, AttributeName: attribute },
      }),
    );
    return true;
  } catch {
    return false;
  }
}

interface Queues {
  coordinatorQueueUrl: string;
  coordinatorDlqUrl: string;
  executorQueues: Record<string, string>;
  executorDlqs: Record<string, string>;
}

async function createQueues(
  sqs: SQSClient,
  prefix: string,
  environments: string[],
  options: CreateResourcesOptions,
): Promise<Queues> {
  const maxReceiveCount = options.maxReceiveCount ?? DEFAULT_MAX_RECEIVE_COUNT;
  const fallback = options.visibilityTimeoutSeconds ?? 30;

  const pair = async (name: string, visibility = fallback) => {
    const dlqUrl = await createQueue(sqs, `${name}-dlq`, {
      MessageRetentionPeriod: String(DLQ_RETENTION_SECONDS),
    });
    const dlqArn = await queueArn(sqs, dlqUrl);
    const url = await createQueue(sqs, name, {
      VisibilityTimeout: String(visibility),
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount }),
    });
    return { url, dlqUrl };
  };

  const coordinator = pair(queueName(prefix, "coordinator"), options.visibility?.coordinator);
  const executors = Promise.all(
    environments.map(
      async (env) =>
        [env, await pair(executorQueueName(prefix, env), options.visibility?.executors?.[env])] as const,
    ),
  );
  const [c, e] = await Promise.all([coordinator, executors]);
  return {
    coordinatorQueueUrl: c.url,
    coordinatorDlqUrl: c.dlqUrl,
    executorQueues: Object.fromEntries(e.map(([env, q]) => [env, q.url])),
    executorDlqs: Object.fromEntries(e.map(([env, q]) => [env, q.dlqUrl])),
  };
}

async function createQueue(
  sqs: SQSClient,
  name: string,
  attributes: Record<string, string>,
): Promise<string> {
  const out = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
  if (!out.QueueUrl) throw new Error(`CreateQueue ${name} returned no QueueUrl`);
  return out.QueueUrl;
}

export async function queueArn(sqs: SQSClient, queueUrl: string): Promise<string> {
  const out = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["QueueArn"] }),
  );
  const arn = out.Attributes?.QueueArn;
  if (!arn) throw new Error(`GetQueueAttributes returned no QueueArn for ${queueUrl}`);
  return arn;
}

/** SQS names are 1–80 characters of [A-Za-z0-9_-]; checked up front so a bad environment name is clear. */
/** An executor key names its queue; `<env>@<MiB>` (a further memory size) as `<env>-<MiB>mib`. */
function executorQueueName(prefix: string, key: string): string {
  const [env, mib] = key.split("@");
  return queueName(prefix, "executor", mib === undefined ? env! : `${env}-${mib}mib`);
}

function queueName(...parts: string[]): string {
  const name = parts.join("-");
  // Every queue gets a "-dlq" twin, so the base name must leave room for the suffix.
  if (!/^[A-Za-z0-9_-]+$/.test(name) || name.length > 80 - "-dlq".length) {
    throw new Error(
      `Queue name "${name}" is not a valid SQS name (at most 76 letters, digits, "-" or "_", ` +
        `leaving room for "-dlq"); check the prefix and the TaskEnvironment names.`,
    );
  }
  return name;
}
