/**
 * Assertion tests of the `Aloft` construct (Template.fromStack): the resources and the properties
 * that matter, one executor per environment, event sources, exact IAM statements, encryption and
 * retention. Not a snapshot: each test states what it checks. Bundling is real (the local esbuild),
 * cached per process by the CDK, so it costs about a second once.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { App, Duration, RemovalPolicy, Stack } from "aws-cdk-lib";
import { Annotations, Match, Template } from "aws-cdk-lib/assertions";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import * as logs from "aws-cdk-lib/aws-logs";
import { Aloft, type AloftProps } from "../cdk/index.ts";
import { handlerModule, writeHandlerEntry } from "../cdk/entries.ts";
import { ENV, LOCAL_ONLY_OUTPUTS, OUTPUT } from "../sdk/aws/config.ts";
import type { EnvironmentSpec } from "../sdk/registry.ts";

// CloudFormation validation takes seconds per synth; `npx cdk synth` (scripts/cdk-synth-check.sh)
// runs it, these tests need not.
process.env.CDK_VALIDATION = "false";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const ENTRY = path.join(ROOT, "examples", "cdk-tasks.ts");
// The feature flags the real app runs with (cdk.json), so the tests see the template it deploys.
const CONTEXT = (
  JSON.parse(fs.readFileSync(path.join(ROOT, "cdk.json"), "utf8")) as { context: Record<string, unknown> }
).context;

const ENVIRONMENTS: EnvironmentSpec[] = [
  { name: "data_pipeline", memoryMiB: 1024, timeoutMs: 300_000, concurrency: undefined, env: {} },
  {
    name: "cpu",
    memoryMiB: 2048,
    timeoutMs: undefined,
    concurrency: 50,
    env: { HEAVY_MODE: "fast", POWERTOOLS_LOG_LEVEL: "DEBUG" },
  },
  { name: "tiny", memoryMiB: 256, timeoutMs: 90_500, concurrency: 1, env: {} },
];

function build(
  props: Partial<AloftProps> = {},
  beforeSynth?: (stack: Stack, aloft: Aloft) => void,
): { stack: Stack; aloft: Aloft; template: Template } {
  const app = new App({ context: CONTEXT });
  const stack = new Stack(app, "Test");
  const aloft = new Aloft(stack, "Aloft", { entry: ENTRY, environments: ENVIRONMENTS, ...props });
  beforeSynth?.(stack, aloft);
  return { stack, aloft, template: Template.fromStack(stack) };
}

// One synthesis shared by the read-only tests below.
const main = build();

type Json = Record<string, any>;
const resolve = (stack: Stack, v: unknown): unknown => stack.resolve(v);
const ref = (stack: Stack, c: { node: { defaultChild?: unknown } }): string =>
  stack.getLogicalId(c.node.defaultChild as never);

/** Expands policy statements into "Effect action resource" lines: exact, yet blind to how the CDK merges statements. */
function permissions(statements: Json[]): string[] {
  const out: string[] = [];
  for (const s of statements) {
    assert.equal(s.Condition, undefined, `unexpected condition in ${JSON.stringify(s)}`);
    const actions = ([] as string[]).concat(s.Action);
    const resources = ([] as unknown[]).concat(s.Resource);
    for (const a of actions) for (const r of resources) out.push(`${s.Effect} ${a} ${JSON.stringify(r)}`);
  }
  return out.sort();
}
function allow(stack: Stack, actions: string[], resources: unknown[]): string[] {
  return actions.flatMap((a) => resources.map((r) => `Allow ${a} ${JSON.stringify(resolve(stack, r))}`));
}
/** Every statement of every AWS::IAM::Policy attached to `role`. */
function statementsOf(template: Template, stack: Stack, role: iam.IRole): Json[] {
  const roleRef = { Ref: ref(stack, role as iam.Role) };
  return Object.values(template.findResources("AWS::IAM::Policy") as Record<string, Json>)
    .filter((p) =>
      (p.Properties.Roles as unknown[]).some((r) => JSON.stringify(r) === JSON.stringify(roleRef)),
    )
    .flatMap((p) => p.Properties.PolicyDocument.Statement as Json[]);
}

const TABLE_ACTIONS = [
  "dynamodb:BatchGetItem",
  "dynamodb:BatchWriteItem",
  "dynamodb:ConditionCheckItem",
  "dynamodb:DeleteItem",
  "dynamodb:GetItem",
  "dynamodb:PutItem",
  "dynamodb:Query",
  "dynamodb:UpdateItem",
];
const CONSUME_ACTIONS = [
  "sqs:ChangeMessageVisibility",
  "sqs:DeleteMessage",
  "sqs:GetQueueAttributes",
  "sqs:GetQueueUrl",
  "sqs:ReceiveMessage",
];

await test("one executor function per environment, sized from it, plus the coordinator", () => {
  const { template, aloft, stack } = main;
  // + the dead-letter consumer and the reconciler (their own test below)
  template.resourceCountIs("AWS::Lambda::Function", ENVIRONMENTS.length + 3);
  const expected = [
    { fn: aloft.executor("data_pipeline").function, memory: 1024, timeout: 300 },
    { fn: aloft.executor("cpu").function, memory: 2048, timeout: 300 }, // default 5 minutes
    { fn: aloft.executor("tiny").function, memory: 256, timeout: 91 }, // rounded up to whole seconds
    { fn: aloft.coordinator, memory: 1024, timeout: 60 },
  ];
  const functions = template.findResources("AWS::Lambda::Function") as Record<string, Json>;
  for (const { fn, memory, timeout } of expected) {
    const p = functions[ref(stack, fn)]!.Properties;
    assert.equal(p.MemorySize, memory);
    assert.equal(p.Timeout, timeout);
    assert.equal(p.Runtime, "nodejs22.x");
    assert.deepEqual(p.Architectures, ["arm64"]);
    assert.equal(p.Handler, "index.handler");
    assert.deepEqual(p.LoggingConfig, { LogGroup: { Ref: ref(stack, logGroupOf(aloft, fn)) } });
  }
  assert.deepEqual(
    aloft.executors.map((e) => e.environment.name),
    ENVIRONMENTS.map((e) => e.name),
  );
});

function logGroupOf(aloft: Aloft, fn: lambda.Function): logs.LogGroup {
  return fn === aloft.coordinator
    ? aloft.coordinatorLogGroup
    : aloft.executors.find((e) => e.function === fn)!.logGroup;
}

await test("memorySizesMiB: one more executor per size (its own queue, dead-letter queue, log group, grants), nothing else moved", () => {
  const sized = ENVIRONMENTS.map((e) => (e.name === "cpu" ? { ...e, memorySizesMiB: [4096, 8192] } : e));
  const { template, aloft, stack } = build({ environments: sized });
  template.resourceCountIs("AWS::Lambda::Function", ENVIRONMENTS.length + 2 + 3);
  const functions = template.findResources("AWS::Lambda::Function") as Record<string, Json>;
  for (const memory of [4096, 8192]) {
    const e = aloft.executor("cpu", memory);
    const p = functions[ref(stack, e.function)]!.Properties;
    assert.equal(p.MemorySize, memory);
    assert.equal(p.Timeout, 300);
    assert.equal(p.Environment.Variables[ENV.environment], "cpu");
    assert.equal(p.Environment.Variables.HEAVY_MODE, "fast");
    // It consumes its own queue only, and its dead-letter queue is drained like every other.
    assert.ok(aloft.deadLetterQueues.includes(e.deadLetterQueue));
    const lines = permissions(statementsOf(template, stack, e.function.role!));
    assert.deepEqual(
      lines.filter((l) => l.includes("sqs:ReceiveMessage")),
      allow(stack, ["sqs:ReceiveMessage"], [e.queue.queueArn]),
    );
    template.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      FunctionName: { Ref: ref(stack, e.function) },
      EventSourceArn: { "Fn::GetAtt": [ref(stack, e.queue), "Arn"] },
      ScalingConfig: { MaximumConcurrency: 50 },
    });
  }
  assert.equal(aloft.executor("cpu").memoryMiB, 2048);
  // The output is a Fn::Join of the JSON object's text around each queue's Ref.
  const [, parts] = (template.toJSON().Outputs as Json)[OUTPUT.executorQueues].Value["Fn::Join"];
  const urls = JSON.parse(
    (parts as unknown[])
      .map((p) => (typeof p === "string" ? p : JSON.stringify(p).replace(/"/g, "'")))
      .join(""),
  );
  assert.deepEqual(urls, {
    data_pipeline: `{'Ref':'${ref(stack, aloft.executor("data_pipeline").queue)}'}`,
    cpu: `{'Ref':'${ref(stack, aloft.executor("cpu").queue)}'}`,
    "cpu@4096": `{'Ref':'${ref(stack, aloft.executor("cpu", 4096).queue)}'}`,
    "cpu@8192": `{'Ref':'${ref(stack, aloft.executor("cpu", 8192).queue)}'}`,
    tiny: `{'Ref':'${ref(stack, aloft.executor("tiny").queue)}'}`,
  });
  // Adding sizes replaces nothing that was deployed: every earlier logical id is still there.
  const before = Object.keys(main.template.toJSON().Resources as Json);
  const after = new Set(Object.keys(template.toJSON().Resources as Json));
  assert.deepEqual(
    before.filter((id) => !after.has(id)),
    [],
  );
  assert.throws(() => aloft.executor("cpu", 1024), /no executor for environment "cpu" of 1024 MiB/);
  assert.throws(
    () => build({ environments: [{ ...ENVIRONMENTS[0]!, memorySizesMiB: [64] }] }),
    /memorySizesMiB must be 128..10240 each, got 64/,
  );
});

await test("functions get the contract's environment variables, Powertools settings and the environment's own", () => {
  const { template, aloft, stack } = main;
  const functions = template.findResources("AWS::Lambda::Function") as Record<string, Json>;
  const queues = resolve(
    stack,
    stack.toJsonString(
      Object.fromEntries(aloft.executors.map((e) => [e.environment.name, e.queue.queueUrl])),
    ),
  );
  const shared = {
    [ENV.table]: { Ref: ref(stack, aloft.table) },
    [ENV.bucket]: { Ref: ref(stack, aloft.bucket) },
    [ENV.coordinatorQueue]: { Ref: ref(stack, aloft.coordinatorQueue) },
    [ENV.executorQueues]: queues,
    [ENV.retentionDays]: "7",
    POWERTOOLS_SERVICE_NAME: "aloft",
    POWERTOOLS_LOG_LEVEL: "INFO",
    POWERTOOLS_METRICS_NAMESPACE: "Aloft",
    NODE_OPTIONS: "--enable-source-maps",
  };
  // Each handler's lease (60 s by default) and its queue's own visibility timeout (6x the function's).
  const lease = (queue: number) => ({
    [ENV.visibilityTimeout]: "60",
    [ENV.queueVisibilityTimeout]: String(queue),
  });
  assert.deepEqual(functions[ref(stack, aloft.coordinator)]!.Properties.Environment.Variables, {
    ...shared,
    ...lease(6 * 60),
  });
  assert.deepEqual(
    functions[ref(stack, aloft.executor("data_pipeline").function)]!.Properties.Environment.Variables,
    {
      ...shared,
      [ENV.environment]: "data_pipeline",
      ...lease(6 * 300),
    },
  );
  assert.deepEqual(functions[ref(stack, aloft.executor("cpu").function)]!.Properties.Environment.Variables, {
    ...shared,
    HEAVY_MODE: "fast",
    POWERTOOLS_LOG_LEVEL: "DEBUG", // the environment's own setting wins over the default
    [ENV.environment]: "cpu",
    ...lease(6 * 300),
  });
  const json = JSON.stringify(queues);
  for (const e of ENVIRONMENTS)
    assert.ok(json.includes(`\\"${e.name}\\":\\"`), `executor queues name ${e.name}`);
});

await test("event sources: batch size, partial batch failures, maximum concurrency (clamped to 2..1000)", () => {
  const { template, aloft, stack } = main;
  const mappings = Object.values(
    template.findResources("AWS::Lambda::EventSourceMapping") as Record<string, Json>,
  ).map((m) => m.Properties);
  // + one per dead-letter queue, for the dead-letter consumer (its own test below)
  assert.equal(mappings.length, ENVIRONMENTS.length + 1 + aloft.deadLetterQueues.length);
  const of = (fn: lambda.Function): Json => {
    const found = mappings.filter((m) => m.FunctionName.Ref === ref(stack, fn));
    assert.equal(found.length, 1, "one event source per function");
    return found[0]!;
  };
  const expect = (
    fn: lambda.Function,
    queue: { node: { defaultChild?: unknown } },
    concurrency: number | undefined,
  ) => {
    const m = of(fn);
    assert.deepEqual(
      m.EventSourceArn,
      { "Fn::GetAtt": [ref(stack, queue), "Arn"] },
      "consumes its own queue",
    );
    assert.equal(m.BatchSize, 10);
    assert.deepEqual(m.FunctionResponseTypes, ["ReportBatchItemFailures"]);
    assert.deepEqual(
      m.ScalingConfig,
      concurrency === undefined ? undefined : { MaximumConcurrency: concurrency },
    );
  };
  expect(aloft.coordinator, aloft.coordinatorQueue, undefined);
  expect(aloft.executor("data_pipeline").function, aloft.executor("data_pipeline").queue, undefined);
  expect(aloft.executor("cpu").function, aloft.executor("cpu").queue, 50);
  expect(aloft.executor("tiny").function, aloft.executor("tiny").queue, 2);
  Annotations.fromStack(stack).hasWarning(
    "*",
    Match.stringLikeRegexp("TaskEnvironment tiny: concurrency 1 .* deployed with 2"),
  );
});

await test("queues: encrypted, TLS only, dead-letter after 10 receives, visibility six times the function timeout", () => {
  const { template, aloft, stack } = main;
  template.resourceCountIs("AWS::SQS::Queue", 2 * (ENVIRONMENTS.length + 1));
  const queues = template.findResources("AWS::SQS::Queue") as Record<string, Json>;
  for (const q of Object.values(queues)) {
    assert.equal(q.Properties.SqsManagedSseEnabled, true);
    assert.equal(q.Properties.MessageRetentionPeriod, 14 * 86400);
  }
  const pairs = [
    { queue: aloft.coordinatorQueue, dlq: aloft.coordinatorDeadLetterQueue, visibility: 6 * 60 },
    {
      queue: aloft.executor("data_pipeline").queue,
      dlq: aloft.executor("data_pipeline").deadLetterQueue,
      visibility: 6 * 300,
    },
    { queue: aloft.executor("cpu").queue, dlq: aloft.executor("cpu").deadLetterQueue, visibility: 6 * 300 },
    { queue: aloft.executor("tiny").queue, dlq: aloft.executor("tiny").deadLetterQueue, visibility: 6 * 91 },
  ];
  for (const { queue, dlq, visibility } of pairs) {
    const p = queues[ref(stack, queue)]!.Properties;
    assert.equal(p.VisibilityTimeout, visibility);
    assert.deepEqual(p.RedrivePolicy, {
      deadLetterTargetArn: { "Fn::GetAtt": [ref(stack, dlq), "Arn"] },
      maxReceiveCount: 10,
    });
    assert.equal(queues[ref(stack, dlq)]!.Properties.RedrivePolicy, undefined);
    // Consumed by the dead-letter consumer (1-minute timeout): six times that.
    assert.equal(queues[ref(stack, dlq)]!.Properties.VisibilityTimeout, 6 * 60);
  }
  // enforceSSL: each queue's policy denies every SQS action without TLS.
  const policies = Object.values(template.findResources("AWS::SQS::QueuePolicy") as Record<string, Json>);
  const covered = new Set<string>();
  for (const p of policies) {
    assert.deepEqual(p.Properties.PolicyDocument.Statement, [
      {
        Action: "sqs:*",
        Condition: { Bool: { "aws:SecureTransport": "false" } },
        Effect: "Deny",
        Principal: { AWS: "*" },
        Resource: { "Fn::GetAtt": [p.Properties.Queues[0].Ref, "Arn"] },
      },
    ]);
    for (const q of p.Properties.Queues) covered.add(q.Ref);
  }
  assert.deepEqual([...covered].sort(), Object.keys(queues).sort());
});

await test("table: pk/sk strings, gsi1, on demand, point-in-time recovery, TTL on expiresAt, retained", () => {
  const { template } = main;
  template.resourceCountIs("AWS::DynamoDB::Table", 1);
  template.hasResource("AWS::DynamoDB::Table", {
    DeletionPolicy: "Retain",
    UpdateReplacePolicy: "Retain",
    Properties: {
      KeySchema: [
        { AttributeName: "pk", KeyType: "HASH" },
        { AttributeName: "sk", KeyType: "RANGE" },
      ],
      AttributeDefinitions: Match.arrayWith([
        { AttributeName: "pk", AttributeType: "S" },
        { AttributeName: "sk", AttributeType: "S" },
        { AttributeName: "gsi1pk", AttributeType: "S" },
        { AttributeName: "gsi1sk", AttributeType: "S" },
      ]),
      GlobalSecondaryIndexes: [
        {
          IndexName: "gsi1",
          KeySchema: [
            { AttributeName: "gsi1pk", KeyType: "HASH" },
            { AttributeName: "gsi1sk", KeyType: "RANGE" },
          ],
          Projection: {
            ProjectionType: "INCLUDE",
            NonKeyAttributes: ["run", "task", "status", "created", "ended"],
          },
        },
      ],
      BillingMode: "PAY_PER_REQUEST",
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      TimeToLiveSpecification: { AttributeName: "expiresAt", Enabled: true },
    },
  });
});

await test("bucket: encrypted, public access blocked, TLS only, payloads expire, retained", () => {
  const { template, aloft, stack } = main;
  template.hasResource("AWS::S3::Bucket", {
    DeletionPolicy: "Retain",
    Properties: {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } }],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      LifecycleConfiguration: {
        Rules: [
          {
            ExpirationInDays: 14,
            AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
            Status: "Enabled",
          },
        ],
      },
    },
  });
  template.hasResourceProperties("AWS::S3::BucketPolicy", {
    Bucket: { Ref: ref(stack, aloft.bucket) },
    PolicyDocument: {
      Statement: [
        Match.objectLike({
          Effect: "Deny",
          Action: "s3:*",
          Condition: { Bool: { "aws:SecureTransport": "false" } },
        }),
      ],
    },
  });
  template.resourceCountIs("Custom::S3AutoDeleteObjects", 0);
});

await test("log groups: one per function, with retention; alarms on every dead-letter queue and every function", () => {
  const { template, aloft, stack } = main;
  template.resourceCountIs("AWS::Logs::LogGroup", ENVIRONMENTS.length + 3);
  template.allResources("AWS::Logs::LogGroup", {
    Properties: { RetentionInDays: 30 },
    DeletionPolicy: "Retain",
  });

  // A depth alarm per DLQ and an error alarm per function.
  template.resourceCountIs("AWS::CloudWatch::Alarm", 2 * (ENVIRONMENTS.length + 1) + 2);
  for (const dlq of aloft.deadLetterQueues) {
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      Namespace: "AWS/SQS",
      MetricName: "ApproximateNumberOfMessagesVisible",
      Dimensions: [{ Name: "QueueName", Value: { "Fn::GetAtt": [ref(stack, dlq), "QueueName"] } }],
      Statistic: "Maximum",
      Threshold: 1,
      ComparisonOperator: "GreaterThanOrEqualToThreshold",
      TreatMissingData: "notBreaching",
    });
  }
  for (const fn of aloft.functions) {
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      Namespace: "AWS/Lambda",
      MetricName: "Errors",
      Dimensions: [{ Name: "FunctionName", Value: { Ref: ref(stack, fn) } }],
      Statistic: "Sum",
      Threshold: 1,
    });
  }
  assert.equal(aloft.alarms.length, 2 * (ENVIRONMENTS.length + 1) + 2);
});

/** What every Aloft function may do: the table and its index, payload objects, send to the queues. */
function commonStatements(stack: Stack, aloft: Aloft) {
  const tableArns = [aloft.table.tableArn, `${aloft.table.tableArn}/index/gsi1`];
  return [
    ...allow(stack, TABLE_ACTIONS, tableArns),
    ...allow(stack, ["s3:GetObject", "s3:PutObject"], [aloft.bucket.arnForObjects("*")]),
    ...allow(
      stack,
      ["sqs:SendMessage"],
      aloft.queues.map((q) => q.queueArn),
    ),
  ];
}

await test("IAM: each function's statements are exactly what it uses, on exactly its resources", () => {
  const { template, aloft, stack } = main;
  const common = commonStatements(stack, aloft);
  const cases = [
    { fn: aloft.coordinator, queue: aloft.coordinatorQueue, logGroup: aloft.coordinatorLogGroup },
    ...aloft.executors.map((e) => ({ fn: e.function, queue: e.queue, logGroup: e.logGroup })),
  ];
  for (const { fn, queue, logGroup } of cases) {
    const expected = [
      ...common,
      ...allow(stack, CONSUME_ACTIONS, [queue.queueArn]),
      ...allow(stack, ["logs:CreateLogStream", "logs:PutLogEvents"], [logGroup.logGroupArn]),
    ].sort();
    assert.deepEqual(permissions(statementsOf(template, stack, fn.role!)), expected, fn.node.path);
  }
  // Nobody else's queue: an executor never consumes the coordinator's queue or another executor's.
  assert.equal(aloft.queues.length, ENVIRONMENTS.length + 1);
  // The heartbeat (lambdas/visibility.ts) changes the visibility of its own queue's messages: the
  // event source's consume grant is what allows it (ChangeMessageVisibilityBatch is authorised as
  // sqs:ChangeMessageVisibility), on that queue only.
  for (const { fn, queue } of cases) {
    const lines = permissions(statementsOf(template, stack, fn.role!)).filter((l) =>
      l.includes("sqs:ChangeMessageVisibility"),
    );
    assert.deepEqual(lines, allow(stack, ["sqs:ChangeMessageVisibility"], [queue.queueArn]), fn.node.path);
  }
});

await test("liveness: a dead-letter consumer on every DLQ and a reconciler every minute, with the handlers' permissions", () => {
  const { template, aloft, stack } = main;
  const functions = template.findResources("AWS::Lambda::Function") as Record<string, Json>;
  const consumer = functions[ref(stack, aloft.deadLetterConsumer)]!.Properties;
  const reconciler = functions[ref(stack, aloft.reconciler)]!.Properties;
  assert.equal(consumer.Handler, "index.deadLetter");
  assert.equal(reconciler.Handler, "index.reconcile");
  assert.equal(reconciler.Environment.Variables[ENV.stallSeconds], "900");
  assert.equal(reconciler.Environment.Variables[ENV.stallFailSeconds], "3600");
  const mappings = Object.values(
    template.findResources("AWS::Lambda::EventSourceMapping") as Record<string, Json>,
  )
    .map((m) => m.Properties)
    .filter((m) => m.FunctionName.Ref === ref(stack, aloft.deadLetterConsumer));
  assert.deepEqual(
    mappings.map((m) => m.EventSourceArn).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    aloft.deadLetterQueues
      .map((q) => ({ "Fn::GetAtt": [ref(stack, q), "Arn"] }))
      .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    "one event source per dead-letter queue",
  );
  for (const m of mappings) assert.deepEqual(m.FunctionResponseTypes, ["ReportBatchItemFailures"]);
  template.hasResourceProperties("AWS::Events::Rule", {
    ScheduleExpression: "rate(1 minute)",
    State: "ENABLED",
    Targets: [Match.objectLike({ Arn: { "Fn::GetAtt": [ref(stack, aloft.reconciler), "Arn"] } })],
  });
  const common = commonStatements(stack, aloft);
  const logsOf = (group: logs.LogGroup) =>
    allow(stack, ["logs:CreateLogStream", "logs:PutLogEvents"], [group.logGroupArn]);
  assert.deepEqual(
    permissions(statementsOf(template, stack, aloft.deadLetterConsumer.role!)),
    [
      ...common,
      ...logsOf(aloft.deadLetterLogGroup),
      ...aloft.deadLetterQueues.flatMap((q) => allow(stack, CONSUME_ACTIONS, [q.queueArn])),
    ].sort(),
  );
  assert.deepEqual(
    permissions(statementsOf(template, stack, aloft.reconciler.role!)),
    [...common, ...logsOf(aloft.reconcilerLogGroup)].sort(),
  );
});

await test("IAM: roles trust Lambda only, carry no managed policies, and no statement uses a * action or resource", () => {
  const { template } = main;
  const roles = Object.values(template.findResources("AWS::IAM::Role") as Record<string, Json>);
  assert.equal(roles.length, ENVIRONMENTS.length + 3);
  for (const r of roles) {
    assert.equal(r.Properties.ManagedPolicyArns, undefined);
    assert.equal(r.Properties.Policies, undefined);
    assert.deepEqual(r.Properties.AssumeRolePolicyDocument.Statement, [
      { Action: "sts:AssumeRole", Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" } },
    ]);
  }
  for (const p of Object.values(template.findResources("AWS::IAM::Policy") as Record<string, Json>)) {
    for (const s of p.Properties.PolicyDocument.Statement as Json[]) {
      assert.equal(s.Effect, "Allow");
      for (const a of [].concat(s.Action)) assert.ok(!String(a).includes("*"), `wildcard action ${a}`);
      for (const r of [].concat(s.Resource))
        assert.notEqual(r, "*", `wildcard resource in ${JSON.stringify(s)}`);
    }
  }
});

await test("grantRun: send to the coordinator queue, read and update the table and index, read and write payloads", () => {
  let role!: iam.Role;
  const { aloft, stack, template } = build({}, (stack, aloft) => {
    role = new iam.Role(stack, "Client", { assumedBy: new iam.AccountRootPrincipal() });
    aloft.grantRun(role);
  });
  const tableArns = [aloft.table.tableArn, `${aloft.table.tableArn}/index/gsi1`];
  assert.deepEqual(
    permissions(statementsOf(template, stack, role)),
    [
      ...allow(stack, ["sqs:SendMessage"], [aloft.coordinatorQueue.queueArn]),
      ...allow(
        stack,
        ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"],
        tableArns,
      ),
      ...allow(stack, ["s3:GetObject", "s3:PutObject"], [aloft.bucket.arnForObjects("*")]),
    ].sort(),
  );
});

await test("grantSignal: send to the coordinator queue, update and put table items (not the index), write payloads", () => {
  let role!: iam.Role;
  const { aloft, stack, template } = build({}, (stack, aloft) => {
    role = new iam.Role(stack, "Approver", { assumedBy: new iam.AccountRootPrincipal() });
    aloft.grantSignal(role);
  });
  assert.deepEqual(
    permissions(statementsOf(template, stack, role)),
    [
      ...allow(stack, ["sqs:SendMessage"], [aloft.coordinatorQueue.queueArn]),
      ...allow(stack, ["dynamodb:PutItem", "dynamodb:UpdateItem"], [aloft.table.tableArn]),
      ...allow(stack, ["s3:PutObject"], [aloft.bucket.arnForObjects("*")]),
    ].sort(),
  );
});

await test("grantCompleteCallback: send to the coordinator queue, read, update and condition-check table items (not the index), write payloads", () => {
  let role!: iam.Role;
  const { aloft, stack, template } = build({}, (stack, aloft) => {
    role = new iam.Role(stack, "Webhook", { assumedBy: new iam.AccountRootPrincipal() });
    aloft.grantCompleteCallback(role);
  });
  assert.deepEqual(
    permissions(statementsOf(template, stack, role)),
    [
      ...allow(stack, ["sqs:SendMessage"], [aloft.coordinatorQueue.queueArn]),
      ...allow(
        stack,
        ["dynamodb:ConditionCheckItem", "dynamodb:GetItem", "dynamodb:UpdateItem"],
        [aloft.table.tableArn],
      ),
      ...allow(stack, ["s3:PutObject"], [aloft.bucket.arnForObjects("*")]),
    ].sort(),
  );
});

await test("grantReadLogs: read every Aloft log group (the dead-letter consumer's and the reconciler's too) and nothing else", () => {
  let role!: iam.Role;
  const { aloft, stack, template } = build({}, (stack, aloft) => {
    role = new iam.Role(stack, "Operator", { assumedBy: new iam.AccountRootPrincipal() });
    aloft.grantReadLogs(role);
  });
  const groups = [
    aloft.coordinatorLogGroup,
    ...aloft.executors.map((e) => e.logGroup),
    aloft.deadLetterLogGroup,
    aloft.reconcilerLogGroup,
  ].map((g) => g.logGroupArn);
  assert.deepEqual(
    permissions(statementsOf(template, stack, role)),
    allow(stack, ["logs:DescribeLogStreams", "logs:FilterLogEvents", "logs:GetLogEvents"], groups).sort(),
  );
});

await test("outputs: the contract's keys, with the executor queues as a JSON object", () => {
  const { template, aloft, stack } = main;
  const outputs = template.toJSON().Outputs as Json;
  // Every key but the local stacks' own (where aloft dev's task logs are).
  const deployed = Object.values(OUTPUT).filter((k) => !LOCAL_ONLY_OUTPUTS.includes(k));
  assert.deepEqual(Object.keys(outputs).sort(), deployed.sort());
  // A JSON object of TaskEnvironment name -> what `of` names of its executor.
  const perEnvironment = (of: (e: (typeof aloft.executors)[number]) => string) =>
    resolve(
      stack,
      stack.toJsonString(Object.fromEntries(aloft.executors.map((e) => [e.environment.name, of(e)]))),
    );
  assert.deepEqual(
    outputs[OUTPUT.executorLogGroups].Value,
    perEnvironment((e) => e.logGroup.logGroupName),
  );
  assert.deepEqual(outputs[OUTPUT.table].Value, { Ref: ref(stack, aloft.table) });
  assert.deepEqual(outputs[OUTPUT.bucket].Value, { Ref: ref(stack, aloft.bucket) });
  assert.deepEqual(outputs[OUTPUT.coordinatorQueue].Value, { Ref: ref(stack, aloft.coordinatorQueue) });
  assert.deepEqual(outputs[OUTPUT.region].Value, { Ref: "AWS::Region" });
  assert.deepEqual(
    outputs[OUTPUT.executorQueues].Value,
    perEnvironment((e) => e.queue.queueUrl),
  );
});

await test("visibility lease: per environment and for the coordinator; the queue stays at least the function timeout and six times it", () => {
  const { template, aloft, stack } = build({
    coordinatorVisibilityTimeout: Duration.seconds(45),
    environments: [
      { ...ENVIRONMENTS[0]!, visibilityTimeoutMs: 90_000 },
      // A lease longer than six times its 5 s timeout: the queue is the lease, so none is taken at start.
      {
        name: "quick",
        memoryMiB: 256,
        timeoutMs: 5_000,
        concurrency: undefined,
        env: {},
        visibilityTimeoutMs: 120_000,
      },
    ],
  });
  const functions = template.findResources("AWS::Lambda::Function") as Record<string, Json>;
  const queues = template.findResources("AWS::SQS::Queue") as Record<string, Json>;
  const expected = [
    { fn: aloft.coordinator, queue: aloft.coordinatorQueue, lease: 45, visibility: 6 * 60, timeout: 60 },
    { ...of(aloft.executor("data_pipeline")), lease: 90, visibility: 6 * 300, timeout: 300 },
    { ...of(aloft.executor("quick")), lease: 120, visibility: 120, timeout: 5 },
  ];
  function of(e: { function: lambda.Function; queue: { node: { defaultChild?: unknown } } }) {
    return { fn: e.function, queue: e.queue };
  }
  for (const { fn, queue, lease, visibility, timeout } of expected) {
    const f = functions[ref(stack, fn)]!.Properties;
    const q = queues[ref(stack, queue)]!.Properties;
    assert.equal(f.Timeout, timeout);
    assert.equal(q.VisibilityTimeout, visibility);
    // Lambda rejects an event source whose queue's visibility timeout is below the function's timeout.
    assert.ok(
      q.VisibilityTimeout >= f.Timeout,
      `${fn.node.path}: queue visibility below the function timeout`,
    );
    assert.equal(f.Environment.Variables[ENV.visibilityTimeout], String(lease));
    assert.equal(f.Environment.Variables[ENV.queueVisibilityTimeout], String(visibility));
  }
  // Partial batch responses are what lets a failed item come back on its own backoff.
  template.allResourcesProperties("AWS::Lambda::EventSourceMapping", {
    FunctionResponseTypes: ["ReportBatchItemFailures"],
  });
  assert.throws(
    () =>
      build({
        coordinatorVisibilityTimeout: Duration.seconds(2),
        environments: [{ ...ENVIRONMENTS[0]!, visibilityTimeoutMs: 1_500 }],
      }),
    (e: Error) =>
      /coordinatorVisibilityTimeout: must be whole seconds from 3 seconds to 12 hours, got 2000 ms/.test(
        e.message,
      ) &&
      /environment "data_pipeline": visibilityTimeout must be whole seconds from 3 seconds to 12 hours, got 1500 ms/.test(
        e.message,
      ),
  );
});

await test("props are validated up front, every problem reported in one error", () => {
  const app = new App();
  const stack = new Stack(app, "Bad");
  assert.throws(
    () =>
      new Aloft(stack, "Aloft", {
        entry: ENTRY,
        executorBatchSize: 11,
        coordinatorMemoryMiB: 64,
        coordinatorTimeout: Duration.minutes(20),
        maxReceiveCount: 0,
        retentionDays: 0.5,
        autoDeleteObjects: true,
        environments: [
          {
            name: "slow",
            memoryMiB: 1024,
            timeoutMs: 20 * 60_000,
            concurrency: 0,
            env: { ALOFT_TABLE_NAME: "x", AWS_REGION: "y" },
          },
          {
            name: "slow",
            memoryMiB: 99_999,
            timeoutMs: undefined,
            concurrency: undefined,
            env: { "bad-name": "z" },
          },
        ],
      }),
    (e: Error) => {
      for (const fragment of [
        "executorBatchSize",
        "coordinatorMemoryMiB",
        "coordinatorTimeout",
        "maxReceiveCount",
        "retentionDays",
        "autoDeleteObjects",
        "exceeds Lambda's 15 minutes",
        "concurrency must be a whole number",
        "ALOFT_TABLE_NAME is reserved",
        "AWS_REGION is reserved",
        "listed twice",
        "memoryMiB must be 128..10240",
        '"bad-name" is not a valid variable name',
      ]) {
        assert.ok(e.message.includes(fragment), `error mentions ${fragment}:\n${e.message}`);
      }
      assert.equal(e.name, "ConfigurationError");
      return true;
    },
  );
  assert.equal(stack.node.findAll().filter((c) => c.node.id === "Table").length, 0, "nothing created");
});

await test("a missing entry or no environments at all is a clear error", () => {
  const stack = new Stack(new App(), "Bad");
  assert.throws(
    () => new Aloft(stack, "A", { entry: "examples/nope.ts", environments: [] }),
    /entry: examples\/nope\.ts does not exist[\s\S]*no TaskEnvironment is registered/,
  );
});

await test("removing an environment keeps its queue and dead-letter queue (retained), the others unchanged", () => {
  const queues = (t: Template) => t.findResources("AWS::SQS::Queue");
  const before = queues(main.template);
  assert.equal(Object.keys(before).length, 2 * (1 + ENVIRONMENTS.length));
  for (const [id, q] of Object.entries(before)) {
    assert.equal(q.DeletionPolicy, "Retain", id);
    assert.equal(q.UpdateReplacePolicy, "Retain", id);
  }
  // The next deploy without "tiny": its two queues leave the template (CloudFormation then keeps
  // them, with their messages); every other queue keeps its logical id, so none is replaced.
  const after = queues(build({ environments: ENVIRONMENTS.filter((e) => e.name !== "tiny") }).template);
  const gone = Object.keys(before).filter((id) => !(id in after));
  assert.equal(gone.length, 2);
  for (const id of gone) assert.match(id, /Executortiny/);
  for (const id of Object.keys(after)) assert.ok(id in before, `${id} is new`);
});

await test("removalPolicy DESTROY with autoDeleteObjects; alarm actions; batching window", () => {
  const { template, aloft } = build({
    removalPolicy: RemovalPolicy.DESTROY,
    autoDeleteObjects: true,
    executorBatchSize: 100,
    executorMaxBatchingWindow: Duration.seconds(5),
    retentionDays: 30,
    logRetention: logs.RetentionDays.ONE_WEEK,
    alarmActions: [{ bind: () => ({ alarmActionArn: "arn:aws:sns:us-east-1:111111111111:ops" }) }],
  });
  template.hasResource("AWS::DynamoDB::Table", { DeletionPolicy: "Delete" });
  template.hasResource("AWS::S3::Bucket", { DeletionPolicy: "Delete" });
  template.resourceCountIs("Custom::S3AutoDeleteObjects", 1);
  template.allResources("AWS::SQS::Queue", { DeletionPolicy: "Delete" });
  template.allResources("AWS::Logs::LogGroup", {
    Properties: { RetentionInDays: 7 },
    DeletionPolicy: "Delete",
  });
  template.allResourcesProperties("AWS::CloudWatch::Alarm", {
    AlarmActions: ["arn:aws:sns:us-east-1:111111111111:ops"],
  });
  template.hasResourceProperties("AWS::S3::Bucket", {
    LifecycleConfiguration: { Rules: [Match.objectLike({ ExpirationInDays: 37 })] },
  });
  template.hasResourceProperties("AWS::Lambda::Function", {
    Environment: { Variables: Match.objectLike({ [ENV.retentionDays]: "30" }) },
  });
  const executorQueue = template.findResources("AWS::SQS::Queue")[
    aloft.executor("cpu").queue.stack.getLogicalId(aloft.executor("cpu").queue.node.defaultChild as never)
  ] as Json;
  assert.equal(executorQueue.Properties.VisibilityTimeout, 6 * 300 + 5);
  template.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
    BatchSize: 100,
    MaximumBatchingWindowInSeconds: 5,
    ScalingConfig: { MaximumConcurrency: 50 },
  });
});

await test("code override: prebuilt code instead of bundling", () => {
  const code = lambda.Code.fromInline("export const handler = async () => ({ batchItemFailures: [] });");
  const { template } = build({ code: { coordinator: code, executor: code } });
  template.allResourcesProperties("AWS::Lambda::Function", { Code: { ZipFile: Match.anyValue() } });
});

await test("fromModule discovers the module's environments and bundles it with each handler, locally", async () => {
  const started = Date.now();
  const app = new App({ context: CONTEXT });
  const stack = new Stack(app, "FromModule");
  const aloft = await Aloft.fromModule(stack, "Aloft", { entry: ENTRY });
  assert.deepEqual(
    aloft.environments.map((e) => [e.name, e.memoryMiB, e.timeoutMs, e.concurrency]),
    [
      ["data_pipeline", 1024, 300_000, undefined],
      ["cpu", 2048, undefined, 50],
    ],
  );
  const assembly = app.synth();
  const template = Template.fromJSON(assembly.getStackByName("FromModule").template);
  template.resourceCountIs("AWS::Lambda::Function", 5);
  // Each function's code is an asset holding one ESM bundle, built without Docker.
  const bundles = new Set<string>();
  const functions = template.findResources("AWS::Lambda::Function") as Record<string, Json>;
  for (const fn of aloft.functions) {
    const key = String(functions[ref(stack, fn)]!.Properties.Code.S3Key); // "<asset hash>.zip"
    const bundle = path.join(assembly.directory, `asset.${key.replace(/\.zip$/, "")}`, "index.mjs");
    assert.ok(fs.existsSync(bundle), `bundle at ${bundle}`);
    bundles.add(bundle);
    const source = fs.readFileSync(bundle, "utf8");
    // keepNames: task names come from function names and must survive minification.
    for (const name of ["processChunk", "parallelPipeline", "heavy"])
      assert.ok(source.includes(`"${name}"`), `${name} kept`);
    assert.ok(fs.existsSync(`${bundle}.map`), "source map");
  }
  assert.equal(bundles.size, 2, "one bundle per function kind, shared by the executors");
  assert.ok(Date.now() - started < 60_000);
});

await test("generated entries: the task module first, then the handler; stable names under the project root", () => {
  const a = writeHandlerEntry("executor", ENTRY, ROOT);
  const b = writeHandlerEntry("executor", ENTRY, ROOT);
  assert.equal(a, b, "same content, same file");
  assert.ok(a.startsWith(path.join(ROOT, "node_modules", ".cache", "aloft") + path.sep));
  const lines = fs
    .readFileSync(a, "utf8")
    .split("\n")
    .filter((l) => !l.startsWith("//") && l);
  assert.deepEqual(lines, [
    `import ${JSON.stringify(ENTRY)};`,
    `export { handler } from ${JSON.stringify(handlerModule("executor"))};`,
  ]);
  assert.notEqual(writeHandlerEntry("coordinator", ENTRY, ROOT), a);
});

await test("fromModule: a module that fails to import is a clear error naming it", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "aloft-cdk-"));
  const broken = path.join(dir, "broken.ts");
  fs.writeFileSync(broken, 'throw new Error("boom at import");\n');
  try {
    await assert.rejects(
      Aloft.fromModule(new Stack(new App(), "Broken"), "Aloft", { entry: broken }),
      (e: Error) =>
        e.name === "ConfigurationError" && e.message.includes(broken) && e.message.includes("boom at import"),
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
