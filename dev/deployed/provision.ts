/**
 * Creates the stack's table, queues and bucket on the local emulators from the template's own
 * properties (keys, indexes, TTL; visibility timeout, delay, retention, redrive policy; bucket), the
 * way CloudFormation would, and gives every resource the harness models a physical name and ARN.
 */
import {
  CreateTableCommand,
  UpdateTimeToLiveCommand,
  type CreateTableCommandInput,
  type DynamoDBClient,
} from "@aws-sdk/client-dynamodb";
import { CreateBucketCommand, type S3Client } from "@aws-sdk/client-s3";
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { randomBytes } from "node:crypto";
import { ConfigurationError } from "../../sdk/errors.ts";
import type { StackArtifact } from "./assembly.ts";
import { resolve, resolveString, type Physical, type Scope } from "./intrinsics.ts";

export const LOCAL_ACCOUNT = "000000000000";

export interface Provisioned {
  scope: Scope;
  /** Queue URL → queue ARN, for every queue created. */
  queueArns: Map<string, string>;
  /** What was created, one line each, for the startup report. */
  created: string[];
  /** Properties seen and not reproduced locally (encryption, PITR, lifecycle, ...). */
  ignored: string[];
}

export interface Clients {
  dynamo: DynamoDBClient;
  sqs: SQSClient;
  s3: S3Client;
}

const QUEUE_ATTRIBUTES: Record<string, string> = {
  VisibilityTimeout: "VisibilityTimeout",
  DelaySeconds: "DelaySeconds",
  MessageRetentionPeriod: "MessageRetentionPeriod",
  MaximumMessageSize: "MaximumMessageSize",
  ReceiveMessageWaitTimeSeconds: "ReceiveMessageWaitTimeSeconds",
};

/** A CloudFormation-style generated name: `<stack>-<logicalId>-<random>`, cut to `max`. */
function generatedName(stack: string, id: string, max: number, lower = false): string {
  const suffix = randomBytes(6).toString("hex").toUpperCase();
  const base = `${stack}-${id}`.slice(0, max - suffix.length - 1);
  const name = `${base}-${suffix}`;
  return lower ? name.toLowerCase() : name;
}

export async function provision(
  stack: StackArtifact,
  clients: Clients,
  region: string,
): Promise<Provisioned> {
  const resources = new Map<string, Physical>();
  const scope: Scope = { region, account: LOCAL_ACCOUNT, stackName: stack.name, resources };
  const queueArns = new Map<string, string>();
  const created: string[] = [];
  const ignored = new Set<string>();
  const all = Object.entries(stack.template.Resources);
  const props = (id: string) => stack.template.Resources[id]!.Properties ?? {};

  // Names first for everything that only needs one (roles, log groups, functions, rules).
  for (const [id, r] of all) {
    const p = r.Properties ?? {};
    if (r.Type === "AWS::IAM::Role") {
      const name = typeof p["RoleName"] === "string" ? p["RoleName"] : generatedName(stack.name, id, 64);
      resources.set(id, {
        ref: name,
        attributes: { Arn: `arn:aws:iam::${LOCAL_ACCOUNT}:role/${name}`, RoleId: `AROA${id}` },
      });
    } else if (r.Type === "AWS::Logs::LogGroup") {
      const name =
        typeof p["LogGroupName"] === "string" ? p["LogGroupName"] : generatedName(stack.name, id, 512);
      resources.set(id, {
        ref: name,
        attributes: { Arn: `arn:aws:logs:${region}:${LOCAL_ACCOUNT}:log-group:${name}:*` },
      });
    } else if (r.Type === "AWS::Lambda::Function") {
      const name =
        typeof p["FunctionName"] === "string" ? p["FunctionName"] : generatedName(stack.name, id, 64);
      resources.set(id, {
        ref: name,
        attributes: { Arn: `arn:aws:lambda:${region}:${LOCAL_ACCOUNT}:function:${name}` },
      });
    } else if (r.Type === "AWS::S3::Bucket") {
      const name =
        typeof p["BucketName"] === "string" ? p["BucketName"] : generatedName(stack.name, id, 63, true);
      resources.set(id, {
        ref: name,
        attributes: {
          Arn: `arn:aws:s3:::${name}`,
          DomainName: `${name}.s3.amazonaws.com`,
          RegionalDomainName: `${name}.s3.${region}.amazonaws.com`,
        },
      });
      await clients.s3.send(new CreateBucketCommand({ Bucket: name }));
      created.push(`bucket ${name} (${id})`);
      for (const k of Object.keys(p))
        if (k !== "BucketName" && k !== "Tags") ignored.add(`AWS::S3::Bucket ${k}`);
    } else if (r.Type === "AWS::Events::Rule") {
      const name = generatedName(stack.name, id, 64);
      resources.set(id, {
        ref: name,
        attributes: { Arn: `arn:aws:events:${region}:${LOCAL_ACCOUNT}:rule/${name}` },
      });
    }
  }

  // Queues: those without a redrive policy first, since a redrive policy names its target's ARN.
  const queues = all.filter(([, r]) => r.Type === "AWS::SQS::Queue").map(([id]) => id);
  const ordered = [
    ...queues.filter((q) => !props(q)["RedrivePolicy"]),
    ...queues.filter((q) => props(q)["RedrivePolicy"]),
  ];
  for (const id of ordered) {
    const p = props(id);
    if (p["FifoQueue"]) throw new ConfigurationError(`${id}: FIFO queues are not supported by the harness`);
    const name = typeof p["QueueName"] === "string" ? p["QueueName"] : generatedName(stack.name, id, 80);
    const attributes: Record<string, string> = {};
    for (const [k, v] of Object.entries(p)) {
      if (k in QUEUE_ATTRIBUTES) attributes[QUEUE_ATTRIBUTES[k]!] = resolveString(v, scope, `${id}.${k}`);
      else if (k === "RedrivePolicy") {
        const redrive = resolve(v, scope, `${id}.RedrivePolicy`) as Record<string, unknown>;
        attributes["RedrivePolicy"] = JSON.stringify(redrive);
      } else if (k !== "QueueName") ignored.add(`AWS::SQS::Queue ${k}`);
    }
    const out = await clients.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
    const url = out.QueueUrl!;
    const got = await clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] }),
    );
    const arn = got.Attributes?.QueueArn ?? `arn:aws:sqs:${region}:${LOCAL_ACCOUNT}:${name}`;
    queueArns.set(url, arn);
    resources.set(id, { ref: url, attributes: { Arn: arn, QueueName: name, QueueUrl: url } });
    created.push(`queue ${name} (${id}) ${JSON.stringify(attributes)}`);
  }

  for (const id of all.filter(([, r]) => r.Type === "AWS::DynamoDB::Table").map(([t]) => t)) {
    const p = resolve(props(id), scope, id) as Record<string, unknown>;
    const name = typeof p["TableName"] === "string" ? p["TableName"] : generatedName(stack.name, id, 255);
    const input: CreateTableCommandInput = {
      TableName: name,
      KeySchema: p["KeySchema"] as CreateTableCommandInput["KeySchema"],
      AttributeDefinitions: p["AttributeDefinitions"] as CreateTableCommandInput["AttributeDefinitions"],
      BillingMode: (p["BillingMode"] as CreateTableCommandInput["BillingMode"]) ?? "PROVISIONED",
    };
    if (p["ProvisionedThroughput"]) input.ProvisionedThroughput = p["ProvisionedThroughput"] as never;
    if (p["GlobalSecondaryIndexes"]) input.GlobalSecondaryIndexes = p["GlobalSecondaryIndexes"] as never;
    if (p["LocalSecondaryIndexes"]) input.LocalSecondaryIndexes = p["LocalSecondaryIndexes"] as never;
    await clients.dynamo.send(new CreateTableCommand(input));
    const ttl = p["TimeToLiveSpecification"] as { AttributeName?: string; Enabled?: boolean } | undefined;
    if (ttl?.Enabled && ttl.AttributeName) {
      await clients.dynamo.send(
        new UpdateTimeToLiveCommand({
          TableName: name,
          TimeToLiveSpecification: { Enabled: true, AttributeName: ttl.AttributeName },
        }),
      );
    }
    const arn = `arn:aws:dynamodb:${region}:${LOCAL_ACCOUNT}:table/${name}`;
    resources.set(id, { ref: name, attributes: { Arn: arn, StreamArn: `${arn}/stream/local` } });
    const indexes = (input.GlobalSecondaryIndexes ?? []).map((g) => g.IndexName).join(",");
    created.push(
      `table ${name} (${id}) keys ${JSON.stringify(input.KeySchema)} gsi [${indexes}] ttl ${ttl?.AttributeName ?? "-"}`,
    );
    for (const k of Object.keys(p))
      if (
        ![
          "TableName",
          "KeySchema",
          "AttributeDefinitions",
          "BillingMode",
          "ProvisionedThroughput",
          "GlobalSecondaryIndexes",
          "LocalSecondaryIndexes",
          "TimeToLiveSpecification",
        ].includes(k)
      )
        ignored.add(`AWS::DynamoDB::Table ${k}`);
  }
  return { scope, queueArns, created, ignored: [...ignored].sort() };
}
