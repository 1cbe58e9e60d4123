/**
 * `aloft doctor --aws`: checks the stack the CLI would use (a deployed one, LocalStack or `aloft
 * dev`) the way a user would otherwise find out one failure at a time — where its configuration
 * came from, that the credentials reach it, that the table has the shape and time to live Aloft
 * needs, that each queue exists with a dead-letter queue and nothing dead-lettered, that the payload
 * bucket is there. Every check that fails says what to do.
 */
import { DescribeTableCommand, DescribeTimeToLiveCommand } from "@aws-sdk/client-dynamodb";
import { GetQueueAttributesCommand, GetQueueUrlCommand } from "@aws-sdk/client-sqs";
import { HeadBucketCommand } from "@aws-sdk/client-s3";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { DEFAULT_OUTPUTS_FILE, ENV } from "../aws/config.ts";
import type { AloftClient } from "../aws/client.ts";
import { RUN_INDEX_SHARDS, TABLE_SCHEMA } from "../aws/store/table.ts";
import { liveRuns } from "../aws/store/runs.ts";
import type { Check } from "./doctor.ts";

const ok = (what: string): Check => ({ level: "ok", what });
const problem = (what: string, fix: string): Check => ({ level: "problem", what, fix });
const warn = (what: string, fix: string): Check => ({ level: "warn", what, fix });

/** What an AWS error says, in one line. */
function said(e: unknown): string {
  const x = e as { name?: string; message?: string };
  return `${x.name ?? "Error"}${x.message ? `: ${x.message}` : ""}`;
}

const denied = (e: unknown) =>
  /AccessDenied|not authorized|UnrecognizedClient|InvalidClientTokenId/i.test(said(e));

/** Where the CLI's stack configuration comes from (as AloftClient resolves it). */
export function configSource(outputs: string | undefined): string {
  const file = resolve(outputs ?? process.env["ALOFT_OUTPUTS_FILE"] ?? DEFAULT_OUTPUTS_FILE);
  if (existsSync(file)) return `the outputs file ${file}`;
  return `the ${ENV.table}, ${ENV.coordinatorQueue} and ${ENV.executorQueues} variables`;
}

export async function doctorAws(client: AloftClient, source: string): Promise<Check[]> {
  const { rt, config } = client;
  const checks: Check[] = [ok(`stack configuration from ${source}: table ${config.table}`)];
  const endpoints = Object.entries(process.env).filter(([k, v]) => k.startsWith("AWS_ENDPOINT_URL") && v);
  if (endpoints.length) checks.push(ok(`endpoints: ${endpoints.map(([k, v]) => `${k}=${v}`).join(", ")}`));

  // The table: reachable with these credentials, its keys and index, and its time to live.
  try {
    const t = (await rt.ddb.send(new DescribeTableCommand({ TableName: config.table }))).Table;
    const keys = (t?.KeySchema ?? []).map((k) => `${k.AttributeName}:${k.KeyType}`).join(",");
    const want = `${TABLE_SCHEMA.partitionKey}:HASH,${TABLE_SCHEMA.sortKey}:RANGE`;
    const gsi = t?.GlobalSecondaryIndexes?.find((i) => i.IndexName === TABLE_SCHEMA.gsi1.name);
    if (keys !== want)
      checks.push(
        problem(
          `table ${config.table} has keys ${keys || "?"}, not ${want}`,
          "it is not an Aloft table: point --outputs (or ALOFT_TABLE) at the stack's own",
        ),
      );
    else if (!gsi)
      checks.push(
        problem(
          `table ${config.table} has no ${TABLE_SCHEMA.gsi1.name} index (aloft runs lists runs with it)`,
          "deploy the stack with this Aloft's construct (cdk deploy)",
        ),
      );
    else if (t?.TableStatus !== "ACTIVE")
      checks.push(warn(`table ${config.table} is ${t?.TableStatus}`, "wait for it to become ACTIVE"));
    else
      checks.push(
        ok(`table ${config.table}: ACTIVE, keys and ${TABLE_SCHEMA.gsi1.name} index as Aloft needs`),
      );
  } catch (e) {
    checks.push(
      (e as { name?: string }).name === "ResourceNotFoundException"
        ? problem(
            `table ${config.table} does not exist`,
            "deploy the stack (cdk deploy --outputs-file aloft-outputs.json), or point --outputs at the right file",
          )
        : problem(
            `cannot reach table ${config.table}: ${said(e)}`,
            denied(e)
              ? "these credentials may not describe it (dynamodb:DescribeTable, which grantRun does not give): run aloft doctor as the account that deploys the stack, or check AWS_PROFILE"
              : "check the region (AWS_REGION), the credentials (AWS_PROFILE) and the endpoint",
          ),
    );
    return checks; // nothing else can be reached either
  }
  try {
    const ttl = (await rt.ddb.send(new DescribeTimeToLiveCommand({ TableName: config.table })))
      .TimeToLiveDescription;
    const on = ttl?.TimeToLiveStatus === "ENABLED" || ttl?.TimeToLiveStatus === "ENABLING";
    checks.push(
      on && ttl?.AttributeName === TABLE_SCHEMA.ttlAttribute
        ? ok(`time to live on ${TABLE_SCHEMA.ttlAttribute}: ended runs expire`)
        : warn(
            `time to live is ${ttl?.TimeToLiveStatus ?? "unknown"}${ttl?.AttributeName ? ` on ${ttl.AttributeName}` : ""}`,
            `enable it on ${TABLE_SCHEMA.ttlAttribute} (the construct does), or ended runs are kept forever`,
          ),
    );
  } catch (e) {
    checks.push(warn(`cannot read the table's time to live: ${said(e)}`, "check it in the DynamoDB console"));
  }

  // The queues: each exists, has a dead-letter queue, and that holds nothing.
  const queues = [
    ["coordinator", config.coordinatorQueue] as const,
    ...Object.entries(config.executorQueues),
  ];
  for (const [name, url] of queues) checks.push(...(await checkQueue(client, name, url)));

  if (config.bucket) {
    try {
      await rt.s3.send(new HeadBucketCommand({ Bucket: config.bucket }));
      checks.push(ok(`payload bucket ${config.bucket}`));
    } catch (e) {
      checks.push(
        problem(
          `payload bucket ${config.bucket}: ${said(e)}`,
          "deploy the stack, or fix its name in the outputs (large inputs and results are stored there)",
        ),
      );
    }
  } else
    checks.push(
      warn(
        "no payload bucket configured",
        "inputs and results over 200 KB fail; deploy the construct's bucket",
      ),
    );

  try {
    const pages = await Promise.all(
      Array.from({ length: RUN_INDEX_SHARDS }, (_, shard) => liveRuns(rt, shard, 1000)),
    );
    const live = pages.reduce((n, p) => n + p.rows.length, 0);
    checks.push(ok(`${live} run(s) RUNNING${pages.some((p) => p.next) ? " or more" : ""}`));
  } catch (e) {
    checks.push(warn(`cannot list the running runs: ${said(e)}`, "aloft runs --aws lists them"));
  }
  return checks;
}

async function checkQueue(client: AloftClient, name: string, url: string): Promise<Check[]> {
  const sqs = client.rt.sqs;
  let attrs: Record<string, string>;
  try {
    attrs =
      (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["All"] })))
        .Attributes ?? {};
  } catch (e) {
    return [
      problem(
        `${name} queue ${url}: ${said(e)}`,
        /NonExistent|does not exist/i.test(said(e))
          ? "deploy the stack, or point --outputs at the file of the stack you deployed"
          : "check the credentials and the region",
      ),
    ];
  }
  const backlog = Number(attrs["ApproximateNumberOfMessages"] ?? 0);
  const out: Check[] = [
    ok(`${name} queue: visibility ${attrs["VisibilityTimeout"]} s, ${backlog} message(s) waiting`),
  ];
  const redrive = attrs["RedrivePolicy"];
  if (!redrive) {
    out.push(
      problem(
        `${name} queue has no dead-letter queue`,
        "a message that keeps failing is then retried for its retention period: deploy with the construct (it adds one)",
      ),
    );
    return out;
  }
  const arn = (JSON.parse(redrive) as { deadLetterTargetArn?: string }).deadLetterTargetArn ?? "";
  const dlqName = arn.split(":").pop() ?? "";
  try {
    const dlq = (await sqs.send(new GetQueueUrlCommand({ QueueName: dlqName }))).QueueUrl!;
    const a =
      (
        await sqs.send(
          new GetQueueAttributesCommand({
            QueueUrl: dlq,
            AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
          }),
        )
      ).Attributes ?? {};
    const dead =
      Number(a["ApproximateNumberOfMessages"] ?? 0) + Number(a["ApproximateNumberOfMessagesNotVisible"] ?? 0);
    out.push(
      dead === 0
        ? ok(`${name} dead-letter queue ${dlqName}: empty`)
        : problem(
            `${dead} message(s) in ${name}'s dead-letter queue ${dlqName}`,
            "the dead-letter consumer fails each one's action and removes it: check that its function is deployed and " +
              "see its log group; each message's body names its run (aws sqs receive-message)",
          ),
    );
  } catch (e) {
    out.push(
      warn(`cannot read ${name}'s dead-letter queue ${dlqName}: ${said(e)}`, "check it in the SQS console"),
    );
  }
  return out;
}
