/**
 * The local AWS stack (DynamoDB Local + fauxqs, or ALOFT_AWS_ENDPOINT) and the SQS event-source
 * poller, through the real AWS SDK v3 clients.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import {
  ConditionalCheckFailedException,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  DynamoDBClient,
  ListTablesCommand,
  TransactionCanceledException,
} from "@aws-sdk/client-dynamodb";
import {
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import {
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import type { SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { ENV } from "../sdk/aws/config.ts";
import { startLocalAws } from "../dev/local-aws.ts";
import type { LocalAws } from "../dev/local-aws.ts";
import { SqsEventSourcePoller, whenAllIdle } from "../dev/poller.ts";
import type { PollerErrorInfo, SqsBatchHandler, SqsEventSourcePollerOptions } from "../dev/poller.ts";
import { queueArn } from "../dev/resources.ts";
import { counterKey } from "../sdk/aws/store/table.ts";
import { MAX_TOKEN, fitsHosted, planWindows } from "../sdk/aws/store/windows.ts";
import { digest } from "../sdk/serde.ts";
import { itemBytes } from "./helpers/item-size.ts";

const ENVIRONMENTS = [
  "data_pipeline",
  "deliver",
  "concurrency",
  "partial",
  "whole",
  "poison",
  "window",
  "window_late",
];

describe("local AWS stack", { timeout: 180_000 }, () => {
  let stack: LocalAws;

  before(
    async () => {
      stack = await startLocalAws({
        environments: ENVIRONMENTS,
        // Unique, so a shared ALOFT_AWS_ENDPOINT (LocalStack) never hands back an earlier run's queues.
        prefix: `aloft-test-${randomUUID().slice(0, 8)}`,
      });
      const t = stack.timings;
      console.log(
        `local AWS (${stack.mode}) ready in ${t.totalMs} ms: DynamoDB Local ${t.dynamoDbLocalMs ?? "-"} ms, ` +
          `fauxqs ${t.sqsLocalMs ?? "-"} ms, table + queues ${t.resourcesMs} ms`,
      );
    },
    { timeout: 120_000 },
  );

  after(async () => {
    await stack?.stop();
  });

  test("creates the table: pk/sk, on-demand, gsi1 projecting a run row, TTL on expiresAt", async () => {
    const { Table } = await stack.clients.dynamo.send(
      new DescribeTableCommand({ TableName: stack.resources.tableName }),
    );
    assert.ok(Table);
    assert.equal(Table.TableStatus, "ACTIVE");
    assert.equal(Table.BillingModeSummary?.BillingMode, "PAY_PER_REQUEST");
    assert.deepEqual(Table.KeySchema, [
      { AttributeName: "pk", KeyType: "HASH" },
      { AttributeName: "sk", KeyType: "RANGE" },
    ]);
    const types = Object.fromEntries(
      (Table.AttributeDefinitions ?? []).map((a) => [a.AttributeName, a.AttributeType]),
    );
    assert.deepEqual(types, { pk: "S", sk: "S", gsi1pk: "S", gsi1sk: "S" });
    const gsi = Table.GlobalSecondaryIndexes?.find((i) => i.IndexName === "gsi1");
    assert.ok(gsi, "gsi1 exists");
    assert.deepEqual(gsi.KeySchema, [
      { AttributeName: "gsi1pk", KeyType: "HASH" },
      { AttributeName: "gsi1sk", KeyType: "RANGE" },
    ]);
    assert.equal(gsi.Projection?.ProjectionType, "INCLUDE");
    assert.deepEqual(gsi.Projection?.NonKeyAttributes, ["run", "task", "status", "created", "ended"]);

    const ttl = await stack.clients.dynamo.send(
      new DescribeTimeToLiveCommand({ TableName: stack.resources.tableName }),
    );
    // The stack reports TTL off when enabling it failed; DynamoDB Local supports it, so on the
    // emulators that is a failure. A shared endpoint (LocalStack) may not support it.
    if (stack.mode === "emulators")
      assert.equal(stack.resources.ttlEnabled, true, "TTL enabled on DynamoDB Local");
    if (stack.resources.ttlEnabled) {
      assert.equal(ttl.TimeToLiveDescription?.TimeToLiveStatus, "ENABLED");
      assert.equal(ttl.TimeToLiveDescription?.AttributeName, "expiresAt");
    }
  });

  test("creates the coordinator and executor queues, each redriving to its DLQ after 5 receives", async () => {
    const pairs: [string, string][] = [
      [stack.resources.coordinatorQueueUrl, stack.resources.coordinatorDlqUrl],
      ...ENVIRONMENTS.map((env): [string, string] => [
        stack.resources.executorQueues[env] ?? assert.fail(`no executor queue for ${env}`),
        stack.resources.executorDlqs[env] ?? assert.fail(`no executor DLQ for ${env}`),
      ]),
    ];
    for (const [queueUrl, dlqUrl] of pairs) {
      const { Attributes } = await stack.clients.sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["All"] }),
      );
      const redrive = JSON.parse(Attributes?.RedrivePolicy ?? "{}") as Record<string, unknown>;
      assert.equal(redrive.deadLetterTargetArn, await queueArn(stack.clients.sqs, dlqUrl), queueUrl);
      assert.equal(Number(redrive.maxReceiveCount), 5);
    }
    assert.equal(process.env[ENV.table], stack.resources.tableName);
    assert.equal(process.env[ENV.coordinatorQueue], stack.resources.coordinatorQueueUrl);
    assert.deepEqual(JSON.parse(process.env[ENV.executorQueues] ?? "{}"), stack.resources.executorQueues);
  });

  test("clients built from the AWS_* environment reach the local endpoints", async () => {
    // What a handler module does: no endpoint or credentials in code. SQS still needs
    // useQueueUrlAsEndpoint: false, since the emulator's queue URLs name unresolvable hosts.
    const dynamo = new DynamoDBClient({});
    const sqs = new SQSClient({ useQueueUrlAsEndpoint: false });
    try {
      const tables = await dynamo.send(new ListTablesCommand({}));
      assert.ok(tables.TableNames?.includes(stack.resources.tableName));
      const attrs = await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: stack.resources.coordinatorQueueUrl,
          AttributeNames: ["QueueArn"],
        }),
      );
      assert.match(attrs.Attributes?.QueueArn ?? "", /^arn:aws:sqs:/);
    } finally {
      dynamo.destroy();
      sqs.destroy();
    }
  });

  test("a failing ConditionExpression raises ConditionalCheckFailedException", async () => {
    const { doc } = stack.clients;
    const TableName = stack.resources.tableName;
    const item = { pk: "RUN#cond", sk: "META", status: "RUNNING", optional: undefined };
    await doc.send(
      new PutCommand({ TableName, Item: item, ConditionExpression: "attribute_not_exists(pk)" }),
    );
    await assert.rejects(
      doc.send(new PutCommand({ TableName, Item: item, ConditionExpression: "attribute_not_exists(pk)" })),
      ConditionalCheckFailedException,
    );
    await assert.rejects(
      doc.send(
        new UpdateCommand({
          TableName,
          Key: { pk: "RUN#cond", sk: "META" },
          UpdateExpression: "SET #s = :new",
          ConditionExpression: "#s = :expected",
          ExpressionAttributeNames: { "#s": "status" },
          ExpressionAttributeValues: { ":new": "SUCCEEDED", ":expected": "QUEUED" },
        }),
      ),
      ConditionalCheckFailedException,
    );
    const { Item } = await doc.send(new GetCommand({ TableName, Key: { pk: "RUN#cond", sk: "META" } }));
    assert.equal(Item?.status, "RUNNING");
  });

  test("a counter hosting the widest window part planWindows hosts, every field at its widest, is one write unit", async () => {
    // Every counter write (lease, resume marks, commits, releases) is billed by the item's size:
    // hosting a window must never take the counter past 1 KB.
    const { doc } = stack.clients;
    const TableName = stack.resources.tableName;
    const key = digest("parent", "map", "group", "0");
    for (const size of [1_000, 100_000]) {
      let limit = 1;
      while (fitsHosted(limit + 1, size, key)) limit++;
      const stored = Array.from({ length: size }, (_, index) => ({
        v: 1,
        id: `c${index}`,
        parent: "p",
        task: "t.t",
        group: "",
        digest: "d",
        n: 0,
        args: "[]",
        window: { key, index, limit },
      }));
      const [win, ...rest] = planWindows(stored, 1, true);
      assert.ok(win && rest.length === 0 && win.name.startsWith("@"), `limit ${limit} of ${size} is hosted`);
      Object.assign(win, {
        slots: win.slots.map(() => size + limit - 1),
        pend: win.pend.map(() => MAX_TOKEN),
        upto: size + limit,
        epoch: 123_456_789,
        offset: 123_456_789,
      });
      const widest = 123_456_789; // nine significant digits (NEVER itself has one)
      const Key = counterKey(`r-${randomUUID()}`);
      const item = {
        ...Key,
        run: `r-${randomUUID()}`,
        epoch: widest,
        st: "S",
        co: widest,
        ce: widest,
        bo: widest,
        be: widest,
        D: widest,
        B: widest,
        sent: widest,
        disp: widest,
        lease: 9_999_999_999_999,
        leaseEpoch: widest,
        leaseBy: randomUUID(),
        rby: MAX_TOKEN,
        rat: 9_999_999_999_999,
        expiresAt: 9_999_999_999,
        win,
      };
      // By AWS's documented size rules, and as DynamoDB Local bills it.
      assert.ok(itemBytes(item) <= 1024, `limit ${limit} of ${size}: ${itemBytes(item)} bytes`);
      await doc.send(new PutCommand({ TableName, Item: item }));
      const out = await doc.send(
        new UpdateCommand({
          TableName,
          Key,
          UpdateExpression: "SET win.slots[0] = win.upto + :j, win.pend[0] = :t ADD co :one",
          ExpressionAttributeValues: { ":j": 0, ":t": MAX_TOKEN, ":one": 1 },
          ReturnConsumedCapacity: "TOTAL",
        }),
      );
      assert.equal(out.ConsumedCapacity?.CapacityUnits, 1, `limit ${limit} of ${size}: one write unit`);
    }
  });

  test("TransactWriteItems commits all or nothing, and gsi1 indexes the items", async () => {
    const { doc } = stack.clients;
    const TableName = stack.resources.tableName;
    await doc.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Put: {
              TableName,
              Item: { pk: "RUN#tx", sk: "META", gsi1pk: "STATUS#RUNNING", gsi1sk: "tx", n: 1 },
            },
          },
          { Put: { TableName, Item: { pk: "RUN#tx", sk: "ACTION#1", n: 1 } } },
        ],
      }),
    );
    await assert.rejects(
      doc.send(
        new TransactWriteCommand({
          TransactItems: [
            { Put: { TableName, Item: { pk: "RUN#tx", sk: "ACTION#2", n: 2 } } },
            {
              ConditionCheck: {
                TableName,
                Key: { pk: "RUN#tx", sk: "META" },
                ConditionExpression: "n = :two",
                ExpressionAttributeValues: { ":two": 2 },
              },
            },
          ],
        }),
      ),
      (err: unknown) => {
        assert.ok(err instanceof TransactionCanceledException);
        assert.deepEqual(
          err.CancellationReasons?.map((r) => r.Code),
          ["None", "ConditionalCheckFailed"],
        );
        return true;
      },
    );
    const { Item } = await doc.send(new GetCommand({ TableName, Key: { pk: "RUN#tx", sk: "ACTION#2" } }));
    assert.equal(Item, undefined, "the cancelled transaction wrote nothing");
    const byStatus = await doc.send(
      new QueryCommand({
        TableName,
        IndexName: "gsi1",
        KeyConditionExpression: "gsi1pk = :p",
        ExpressionAttributeValues: { ":p": "STATUS#RUNNING" },
      }),
    );
    assert.deepEqual(
      byStatus.Items?.map((i) => i.pk),
      ["RUN#tx"],
    );
  });

  test("SendMessageBatch + the poller deliver every message as a Lambda SQSEvent", async () => {
    const queueUrl = executorQueue("deliver");
    const bodies = Array.from({ length: 25 }, (_, i) => JSON.stringify({ i }));
    await sendAll(queueUrl, bodies, { kind: { DataType: "String", StringValue: "test" } });
    const records: SQSRecord[] = [];
    const batchSizes: number[] = [];
    await withPoller(
      queueUrl,
      (event) => {
        batchSizes.push(event.Records.length);
        records.push(...event.Records);
      },
      { batchSize: 10 },
    );
    assert.deepEqual(records.map((r) => r.body).sort(), [...bodies].sort());
    assert.ok(Math.max(...batchSizes) <= 10);
    const arn = await queueArn(stack.clients.sqs, queueUrl);
    for (const r of records) {
      assert.equal(r.eventSource, "aws:sqs");
      assert.equal(r.eventSourceARN, arn);
      assert.equal(r.awsRegion, stack.region);
      assert.equal(r.attributes.ApproximateReceiveCount, "1");
      assert.match(r.attributes.SentTimestamp, /^\d+$/);
      assert.match(r.attributes.ApproximateFirstReceiveTimestamp, /^\d+$/);
      assert.ok(r.attributes.SenderId);
      assert.ok(r.messageId && r.receiptHandle && r.md5OfBody);
      assert.deepEqual(r.messageAttributes.kind, {
        stringValue: "test",
        stringListValues: [],
        binaryListValues: [],
        dataType: "String",
      });
    }
    await assertQueueEmpty(queueUrl);
  });

  test("maxConcurrency caps the batches in flight", async () => {
    const queueUrl = executorQueue("concurrency");
    await sendAll(
      queueUrl,
      Array.from({ length: 12 }, (_, i) => `c${i}`),
    );
    let current = 0;
    let peak = 0;
    // Each handler waits until three run at once (or, should that never happen, 10 s), so the cap
    // is reached however slowly the poller fills it; a fourth would raise the peak past it.
    let release!: () => void;
    const barrier = new Promise<void>((resolve) => (release = resolve));
    const fallback = setTimeout(release, 10_000);
    try {
      await withPoller(
        queueUrl,
        async () => {
          peak = Math.max(peak, ++current);
          if (current >= 3) release();
          await barrier;
          current--;
        },
        { batchSize: 1, maxConcurrency: 3 },
      );
    } finally {
      clearTimeout(fallback);
    }
    assert.equal(peak, 3);
  });

  test("a batching window gathers up to batchSize messages over several receives and deletes them in tens", async () => {
    const queueUrl = executorQueue("window");
    const bodies = Array.from({ length: 25 }, (_, i) => `w${i}`);
    await sendAll(queueUrl, bodies);
    const batches: string[][] = [];
    // A full batch ends the window early: 20 s is only an upper bound here.
    await withPoller(queueUrl, (event) => void batches.push(event.Records.map((r) => r.body)), {
      batchSize: 25,
      maxBatchingWindowMs: 20_000,
    });
    assert.deepEqual(
      batches.map((b) => [...b].sort()),
      [[...bodies].sort()],
    );
    await assertQueueEmpty(queueUrl);
  });

  test("a batching window holds a batch open for messages sent after its first one", async () => {
    const queueUrl = executorQueue("window_late");
    const batches: string[][] = [];
    const poller = new SqsEventSourcePoller(
      stack.clients.sqs,
      queueUrl,
      (event) => void batches.push(event.Records.map((r) => r.body)),
      { batchSize: 2, maxBatchingWindowMs: 60_000 },
    );
    await poller.start();
    try {
      await sendAll(queueUrl, ["first"]);
      // Sent once the poller holds the first (in flight, not yet invoked: the window is open).
      for (;;) {
        const { Attributes } = await stack.clients.sqs.send(
          new GetQueueAttributesCommand({
            QueueUrl: queueUrl,
            AttributeNames: ["ApproximateNumberOfMessagesNotVisible"],
          }),
        );
        if (Attributes?.ApproximateNumberOfMessagesNotVisible === "1") break;
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.deepEqual(batches, []);
      await sendAll(queueUrl, ["second"]);
      await poller.idle({ timeoutMs: 30_000 });
    } finally {
      await poller.stop();
    }
    assert.deepEqual(batches, [["first", "second"]]);
  });

  test("a partial batch failure redelivers exactly the failed message and deletes the others", async () => {
    const queueUrl = executorQueue("partial");
    await sendAll(queueUrl, ["p0", "p1", "p2", "p3", "p4"]);
    const seen: SQSRecord[] = [];
    let failedOnce = false;
    await withPoller(
      queueUrl,
      (event): SQSBatchResponse => {
        seen.push(...event.Records);
        const victim = event.Records.find((r) => r.body === "p2");
        if (victim && !failedOnce) {
          failedOnce = true;
          return { batchItemFailures: [{ itemIdentifier: victim.messageId }] };
        }
        return { batchItemFailures: [] };
      },
      { visibilityTimeoutSeconds: 1 },
    );
    assert.deepEqual(seen.map((r) => r.body).sort(), ["p0", "p1", "p2", "p2", "p3", "p4"]);
    const p2 = seen.filter((r) => r.body === "p2");
    assert.equal(p2[0]?.messageId, p2[1]?.messageId);
    assert.deepEqual(
      p2.map((r) => r.attributes.ApproximateReceiveCount),
      ["1", "2"],
    );
    for (const r of seen.filter((r) => r.body !== "p2"))
      assert.equal(r.attributes.ApproximateReceiveCount, "1");
    await assertQueueEmpty(queueUrl);
  });

  test("a handler that throws, or names an unknown itemIdentifier, fails its whole batch", async () => {
    const queueUrl = executorQueue("whole");
    for (const failure of ["throw", "unknown id"] as const) {
      await sendAll(queueUrl, ["w0", "w1", "w2"]);
      const seen: string[] = [];
      let invocations = 0;
      const errors: PollerErrorInfo["phase"][] = [];
      await withPoller(
        queueUrl,
        (event): SQSBatchResponse => {
          seen.push(...event.Records.map((r) => `${r.body}#${r.attributes.ApproximateReceiveCount}`));
          if (invocations++ === 0) {
            if (failure === "throw") throw new Error("boom");
            return { batchItemFailures: [{ itemIdentifier: "not-in-this-batch" }] };
          }
          return { batchItemFailures: [] };
        },
        { visibilityTimeoutSeconds: 1, onError: (_e, info) => errors.push(info.phase) },
      );
      assert.deepEqual(seen.sort(), ["w0#1", "w0#2", "w1#1", "w1#2", "w2#1", "w2#2"], failure);
      assert.deepEqual(errors, [failure === "throw" ? "handler" : "response"]);
      await assertQueueEmpty(queueUrl);
    }
  });

  test("a message failing more than maxReceiveCount times moves to the DLQ", async () => {
    const queueUrl = executorQueue("poison");
    const dlqUrl = stack.resources.executorDlqs.poison ?? assert.fail("no poison DLQ");
    await sendAll(queueUrl, ["poison"]);
    const receiveCounts: string[] = [];
    await withPoller(
      queueUrl,
      (event) => {
        receiveCounts.push(...event.Records.map((r) => r.attributes.ApproximateReceiveCount));
        throw new Error("poison");
      },
      { visibilityTimeoutSeconds: 1, onError: () => {} },
    );
    assert.deepEqual(receiveCounts, ["1", "2", "3", "4", "5"]);
    const { Messages } = await stack.clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: dlqUrl, WaitTimeSeconds: 1, MaxNumberOfMessages: 10 }),
    );
    assert.deepEqual(
      Messages?.map((m) => m.Body),
      ["poison"],
    );
  });

  test("whenAllIdle waits for work handed from the coordinator queue to an executor queue", async () => {
    const coordinatorUrl = stack.resources.coordinatorQueueUrl;
    const executorUrl = executorQueue("data_pipeline");
    const executed: string[] = [];
    const errors: unknown[] = [];
    const onError = (error: unknown) => errors.push(error);
    const coordinator = new SqsEventSourcePoller(
      stack.clients.sqs,
      coordinatorUrl,
      async (event) => {
        // A slow dispatch, so the executor queue is still empty when first looked at.
        await new Promise((resolve) => setTimeout(resolve, 300));
        await sendAll(
          executorUrl,
          event.Records.map((r) => `child-of-${r.body}`),
        );
      },
      { onError },
    );
    const executor = new SqsEventSourcePoller(
      stack.clients.sqs,
      executorUrl,
      (event) => {
        executed.push(...event.Records.map((r) => r.body));
      },
      { onError },
    );
    await Promise.all([coordinator.start(), executor.start()]);
    try {
      await sendAll(coordinatorUrl, ["a", "b", "c"]);
      await whenAllIdle([coordinator, executor], { timeoutMs: 30_000 });
    } finally {
      await Promise.all([coordinator.stop(), executor.stop()]);
    }
    assert.deepEqual(errors, []);
    assert.deepEqual(executed.sort(), ["child-of-a", "child-of-b", "child-of-c"]);
  });

  test("stop() leaves no DynamoDB Local process behind", async (t) => {
    const ddb = stack.dynamoDbLocal;
    if (!ddb) {
      t.skip(`emulators not started (${stack.mode} mode)`);
      return;
    }
    assert.ok(ddb.javaPid > 0);
    assert.ok(isAlive(ddb.javaPid), "java runs before stop()");
    await stack.stop();
    assert.equal(isAlive(ddb.javaPid), false, "java exited");
    assert.deepEqual(dynamoDbLocalProcesses(ddb.port), []);
  });

  function executorQueue(env: string): string {
    return stack.resources.executorQueues[env] ?? assert.fail(`no executor queue for ${env}`);
  }

  async function sendAll(
    queueUrl: string,
    bodies: string[],
    attributes?: Record<string, { DataType: string; StringValue: string }>,
  ): Promise<void> {
    for (let i = 0; i < bodies.length; i += 10) {
      const out = await stack.clients.sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: bodies.slice(i, i + 10).map((body, j) => ({
            Id: `e${i + j}`,
            MessageBody: body,
            ...(attributes ? { MessageAttributes: attributes } : {}),
          })),
        }),
      );
      assert.equal(out.Failed?.length ?? 0, 0);
    }
  }

  /** Runs a poller until its queue is idle, then stops it; handler errors fail the test unless expected. */
  async function withPoller(
    queueUrl: string,
    handler: (event: SQSEvent) => ReturnType<SqsBatchHandler>,
    options: SqsEventSourcePollerOptions = {},
  ): Promise<void> {
    const unexpected: unknown[] = [];
    const poller = new SqsEventSourcePoller(stack.clients.sqs, queueUrl, handler, {
      onError: (error) => unexpected.push(error),
      ...options,
    });
    await poller.start();
    try {
      await poller.idle({ timeoutMs: 30_000 });
    } finally {
      await poller.stop();
    }
    assert.deepEqual(unexpected, []);
    assert.equal(poller.stats.inFlight, 0);
  }

  async function assertQueueEmpty(queueUrl: string): Promise<void> {
    const { Attributes } = await stack.clients.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: queueUrl,
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
      }),
    );
    assert.equal(Attributes?.ApproximateNumberOfMessages, "0");
    assert.equal(Attributes?.ApproximateNumberOfMessagesNotVisible, "0");
  }
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Linux only: processes whose command line runs DynamoDBLocal.jar on `port`. */
function dynamoDbLocalProcesses(port: number): string[] {
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
  return pids.filter((pid) => {
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      const portAt = args.indexOf("-port");
      return args.some((a) => a.endsWith("DynamoDBLocal.jar")) && args[portAt + 1] === String(port);
    } catch {
      return false;
    }
  });
}
