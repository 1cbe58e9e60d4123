/**
 * AWS SDK v3 clients and environment for local endpoints (DynamoDB Local, fauxqs, LocalStack).
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";

/** Emulators accept any key; "test" is what LocalStack and cdklocal use (account 000000000000). */
export const LOCAL_CREDENTIALS = { accessKeyId: "test", secretAccessKey: "test" } as const;
export const DEFAULT_LOCAL_REGION = "us-east-1";

export interface LocalEndpoints {
  dynamoEndpoint: string;
  sqsEndpoint: string;
  region?: string;
}

export interface AwsClients {
  region: string;
  dynamo: DynamoDBClient;
  doc: DynamoDBDocumentClient;
  sqs: SQSClient;
  /** Closes the clients' sockets. */
  destroy(): void;
}

export function awsClients({ dynamoEndpoint, sqsEndpoint, region }: LocalEndpoints): AwsClients {
  const resolvedRegion = region ?? DEFAULT_LOCAL_REGION;
  const dynamo = new DynamoDBClient({
    endpoint: dynamoEndpoint,
    region: resolvedRegion,
    credentials: LOCAL_CREDENTIALS,
  });
  const doc = DynamoDBDocumentClient.from(dynamo, { marshallOptions: { removeUndefinedValues: true } });
  const sqs = new SQSClient({
    endpoint: sqsEndpoint,
    region: resolvedRegion,
    credentials: LOCAL_CREDENTIALS,
    // Emulator queue URLs name hosts such as sqs.us-east-1.localhost that need not resolve.
    useQueueUrlAsEndpoint: false,
  });
  return {
    region: resolvedRegion,
    dynamo,
    doc,
    sqs,
    destroy() {
      doc.destroy();
      dynamo.destroy();
      sqs.destroy();
    },
  };
}

/**
 * The standard AWS variables that make SDK clients built with default configuration talk to the
 * local endpoints. Caveat (verified with @aws-sdk/client-sqs 3.x): AWS_ENDPOINT_URL_SQS alone
 * does not stop an SQSClient from sending requests to the host named in the queue URL; such
 * clients still need `useQueueUrlAsEndpoint: false`.
 */
export function localAwsEnv({ dynamoEndpoint, sqsEndpoint, region }: LocalEndpoints): Record<string, string> {
  const resolvedRegion = region ?? DEFAULT_LOCAL_REGION;
  return {
    AWS_ENDPOINT_URL_DYNAMODB: dynamoEndpoint,
    AWS_ENDPOINT_URL_SQS: sqsEndpoint,
    AWS_REGION: resolvedRegion,
    AWS_DEFAULT_REGION: resolvedRegion,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    // Keeps the default credential chain from probing instance metadata (a slow timeout offline).
    AWS_EC2_METADATA_DISABLED: "true",
  };
}

/**
 * Sets `vars` in process.env (a session token from the real environment is removed, since it
 * would be paired with the dummy keys) and returns a function that restores the previous values.
 */
export function applyEnv(vars: Record<string, string>, unset: string[] = ["AWS_SESSION_TOKEN"]): () => void {
  const previous = new Map<string, string | undefined>();
  for (const name of [...Object.keys(vars), ...unset]) previous.set(name, process.env[name]);
  for (const name of unset) delete process.env[name];
  Object.assign(process.env, vars);
  return () => {
    for (const [name, value] of previous) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
}
