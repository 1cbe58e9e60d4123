/**
 * `Aloft`: the L3 construct that deploys a task module as a serverless fan-out orchestrator.
 *
 *   client ──SendMessage──► coordinator queue ──► coordinator λ ──► executor queue (per env) ──► executor λ
 *                                  ▲                   │ ▲                                         │
 *                                  └───────────────────┼─┼──── completions, resumes ◄──────────────┘
 *                                                      ▼ │
 *                                        DynamoDB table (runs, history, counters) + S3 (large payloads)
 *
 * Every TaskEnvironment the module registers gets its own executor function, queue and
 * dead-letter queue, sized from the environment's settings; the environments are read from the
 * module at synth time, so adding one to the code adds its function on the next deploy.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { Annotations, Aws, CfnOutput, Duration, Stack } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import { SqsEventSource } from "aws-cdk-lib/aws-lambda-event-sources";
import * as nodejs from "aws-cdk-lib/aws-lambda-nodejs";
import * as logs from "aws-cdk-lib/aws-logs";
import * as s3 from "aws-cdk-lib/aws-s3";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { DEFAULT_VISIBILITY_TIMEOUT_SECONDS, ENV, OUTPUT } from "../sdk/aws/config.ts";
import { TABLE_SCHEMA } from "../sdk/aws/store/table.ts";
import { ConfigurationError } from "../sdk/errors.ts";
import { executorSizes, listEnvironments, type EnvironmentSpec } from "../sdk/registry.ts";
import { writeHandlerEntry, type HandlerKind } from "./entries.ts";
import { validate, type AloftProps, type Settings } from "./props.ts";

/** Name of the table's one global secondary index (keys `gsi1pk` / `gsi1sk`, a run row's attributes). */
export const GSI1 = TABLE_SCHEMA.gsi1.name;
/** Attribute holding an item's expiry (epoch seconds) for DynamoDB TTL. */
export const TTL_ATTRIBUTE = TABLE_SCHEMA.ttlAttribute;

/** One executor of a TaskEnvironment and its resources (one per memory size it deploys). */
export interface AloftExecutor {
  /** The environment's settings as the task module registered them. */
  readonly environment: EnvironmentSpec;
  /** Its function's memory: the environment's `memoryMiB`, or one of its `memorySizesMiB`. */
  readonly memoryMiB: number;
  /** The function that runs this environment's tasks. */
  readonly function: lambda.Function;
  /** The queue the coordinator sends this environment's task calls to. */
  readonly queue: sqs.Queue;
  /** Where messages the executor failed `maxReceiveCount` times end up. */
  readonly deadLetterQueue: sqs.Queue;
  /** The function's log group. */
  readonly logGroup: logs.LogGroup;
}

// Every action a handler issues, and nothing more. DynamoDB authorises TransactWriteItems by the
// item actions it contains (Put/Update/Delete/ConditionCheck), so it has no action of its own.
const HANDLER_TABLE_ACTIONS = [
  "dynamodb:GetItem",
  "dynamodb:PutItem",
  "dynamodb:UpdateItem",
  "dynamodb:DeleteItem",
  "dynamodb:Query",
  "dynamodb:BatchGetItem",
  "dynamodb:BatchWriteItem",
  "dynamodb:ConditionCheckItem",
];
const HANDLER_BUCKET_ACTIONS = ["s3:GetObject", "s3:PutObject"];
// SendMessageBatch is authorised as sqs:SendMessage.
const SEND_ACTIONS = ["sqs:SendMessage"];
// A client: read runs and their trees, cancel (an update), offload large arguments and fetch large results.
const RUN_TABLE_ACTIONS = [
  "dynamodb:GetItem",
  "dynamodb:Query",
  "dynamodb:BatchGetItem",
  "dynamodb:UpdateItem",
];
const RUN_BUCKET_ACTIONS = ["s3:GetObject", "s3:PutObject"];
// A signal's sender: count it on the run item (an update that refuses an ended run), store it.
const SIGNAL_TABLE_ACTIONS = ["dynamodb:UpdateItem", "dynamodb:PutItem"];
const SIGNAL_BUCKET_ACTIONS = ["s3:PutObject"];
// A callback's completer: read the callback and its run (to say why a completion is refused), and
// one transaction that updates the callback under conditions on its run and its wait.
const CALLBACK_TABLE_ACTIONS = ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"];
const READ_LOGS_ACTIONS = ["logs:FilterLogEvents", "logs:GetLogEvents", "logs:DescribeLogStreams"];

const DEFAULT_EXECUTOR_TIMEOUT = Duration.minutes(5);
const DEAD_LETTER_TIMEOUT = Duration.minutes(1);
const DEFAULT_LEASE = Duration.seconds(DEFAULT_VISIBILITY_TIMEOUT_SECONDS);
const MAX_VISIBILITY_TIMEOUT = Duration.hours(12);
const RETENTION_OF_MESSAGES = Duration.days(14);

/**
 * Deploys a task module: a coordinator function and, per TaskEnvironment, an executor function,
 * with their queues, dead-letter queues, a DynamoDB table, an S3 bucket for large payloads, alarms
 * and least-privilege roles. Stack outputs carry what `AloftClient` and `aloft ... --aws` need.
 * One Aloft per stack: its outputs have fixed names (`OUTPUT` in `sdk/aws/config.ts`).
 *
 * @example
 * const stack = new Stack(app, "Aloft");
 * const aloft = await Aloft.fromModule(stack, "Aloft", { entry: "src/tasks.ts" });
 * aloft.grantRun(myServiceRole);
 */
export class Aloft extends Construct {
  /**
   * Imports `props.entry` (so its TaskEnvironments register), then constructs an Aloft deploying
   * every registered environment. Use this from an app run by tsx or Node; the constructor itself
   * is synchronous and only reads what is already registered.
   * @example
   * const aloft = await Aloft.fromModule(stack, "Aloft", { entry: "examples/tasks.ts" });
   */
  static async fromModule(scope: Construct, id: string, props: AloftProps): Promise<Aloft> {
    const file = path.resolve(props.entry);
    if (!fs.existsSync(file)) {
      throw new ConfigurationError(
        `Aloft: the task module ${JSON.stringify(props.entry)} does not exist (resolved to ${file})`,
      );
    }
    try {
      await import(pathToFileURL(file).href);
    } catch (e) {
      throw new ConfigurationError(
        `Aloft: importing the task module ${file} failed: ${(e as Error)?.message ?? String(e)}`,
        {
          cause: e,
        },
      );
    }
    return new Aloft(scope, id, props);
  }

  /** Runs, actions, history, counters and cache entries. */
  public readonly table: dynamodb.Table;
  /** Inputs and results too large for an item or a message. */
  public readonly bucket: s3.Bucket;
  /** Run starts, child completions and resumes; consumed by the coordinator. */
  public readonly coordinatorQueue: sqs.Queue;
  /** Messages the coordinator failed `maxReceiveCount` times. */
  public readonly coordinatorDeadLetterQueue: sqs.Queue;
  /** Replays parent task bodies and dispatches their children. */
  public readonly coordinator: lambda.Function;
  /** The coordinator's log group. */
  public readonly coordinatorLogGroup: logs.LogGroup;
  /** Consumes every dead-letter queue: fails what each dead-lettered message concerns. */
  public readonly deadLetterConsumer: lambda.Function;
  /** The dead-letter consumer's log group. */
  public readonly deadLetterLogGroup: logs.LogGroup;
  /** Runs every minute: nudges or fails runs without progress (the liveness bound). */
  public readonly reconciler: lambda.Function;
  /** The reconciler's log group. */
  public readonly reconcilerLogGroup: logs.LogGroup;
  /** The reconciler's schedule. */
  public readonly reconcileRule: events.Rule;
  /** One per deployed TaskEnvironment and memory size (its own first), in registration order. */
  public readonly executors: readonly AloftExecutor[];
  /** The deployed environments, in registration order. */
  public readonly environments: readonly EnvironmentSpec[];
  /** Every work queue: the coordinator's, then each executor's. */
  public readonly queues: readonly sqs.Queue[];
  /** Every dead-letter queue, in the order of `queues`. */
  public readonly deadLetterQueues: readonly sqs.Queue[];
  /** Every function: the coordinator, each executor, the dead-letter consumer, the reconciler. */
  public readonly functions: readonly lambda.Function[];
  /** Dead-letter queue depth and handler error alarms. */
  public readonly alarms: readonly cloudwatch.Alarm[];

  private readonly settings: Settings;
  private readonly alarmList: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: AloftProps) {
    super(scope, id);
    this.environments = [...(props.environments ?? listEnvironments())];
    this.settings = validate(this, props, this.environments);
    const s = this.settings;

    this.table = new dynamodb.Table(this, "Table", {
      partitionKey: { name: TABLE_SCHEMA.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: TABLE_SCHEMA.sortKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: TTL_ATTRIBUTE,
      removalPolicy: s.removalPolicy,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: GSI1,
      partitionKey: { name: TABLE_SCHEMA.gsi1.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: TABLE_SCHEMA.gsi1.sortKey, type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.INCLUDE,
      nonKeyAttributes: [...TABLE_SCHEMA.gsi1.projected],
    });

    this.bucket = new s3.Bucket(this, "Payloads", {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      // Payloads are referenced by run items; keep them a week past the items' own expiry.
      lifecycleRules: [
        {
          expiration: Duration.days(s.retentionDays + 7),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
      removalPolicy: s.removalPolicy,
      autoDeleteObjects: s.autoDeleteObjects,
    });

    const coordinatorTimeout = s.coordinatorTimeout;
    const coordinatorQueues = this.createQueues(
      this,
      "Coordinator",
      coordinatorTimeout,
      s.coordinatorVisibilityTimeout,
    );
    this.coordinatorQueue = coordinatorQueues.queue;
    this.coordinatorDeadLetterQueue = coordinatorQueues.deadLetterQueue;

    // Queues first: every function's environment names every queue. Each environment deploys an
    // executor of its own memory size and one per further size its overrides may ask for.
    const executorSpecs = this.environments.flatMap((spec) => {
      const envScope = new Construct(this, `Executor-${spec.name}`);
      return executorSizes(spec).map((size, j) => ({
        spec,
        size,
        scope: j === 0 ? envScope : new Construct(envScope, `MiB${size.memoryMiB}`),
      }));
    });
    const executorQueues = executorSpecs.map(({ spec, scope }) =>
      this.createQueues(scope, "", executorTimeout(spec), leaseOf(spec), s.executorMaxBatchingWindow),
    );
    const queueUrls: Record<string, string> = {};
    executorSpecs.forEach(({ size }, i) => (queueUrls[size.key] = executorQueues[i]!.queue.queueUrl));
    const executorQueuesJson = Stack.of(this).toJsonString(queueUrls);
    this.queues = [this.coordinatorQueue, ...executorQueues.map((q) => q.queue)];
    this.deadLetterQueues = [
      this.coordinatorDeadLetterQueue,
      ...executorQueues.map((q) => q.deadLetterQueue),
    ];

    const sharedEnv: Record<string, string> = {
      [ENV.table]: this.table.tableName,
      [ENV.bucket]: this.bucket.bucketName,
      [ENV.coordinatorQueue]: this.coordinatorQueue.queueUrl,
      [ENV.executorQueues]: executorQueuesJson,
      [ENV.retentionDays]: String(s.retentionDays),
      POWERTOOLS_SERVICE_NAME: "aloft",
      POWERTOOLS_LOG_LEVEL: s.logLevel,
      POWERTOOLS_METRICS_NAMESPACE: "Aloft",
      // The bundles carry source maps: stack traces in logs and TaskErrors point at the user's .ts.
      NODE_OPTIONS: "--enable-source-maps",
    };

    const coordinator = this.createFunction(this, "Coordinator", "coordinator", {
      description: "Aloft coordinator: replays parent tasks and dispatches their children",
      memorySize: s.coordinatorMemoryMiB,
      timeout: coordinatorTimeout,
      environment: { ...sharedEnv, ...coordinatorQueues.leaseEnv },
    });
    this.coordinator = coordinator.fn;
    this.coordinatorLogGroup = coordinator.logGroup;
    this.coordinator.addEventSource(
      new SqsEventSource(this.coordinatorQueue, {
        batchSize: 10,
        reportBatchItemFailures: true,
        maxConcurrency: s.coordinatorMaxConcurrency,
      }),
    );

    this.executors = executorSpecs.map(({ spec, size, scope }, i) => {
      const { queue, deadLetterQueue } = executorQueues[i]!;
      const sized =
        size.key === spec.name ? "" : ` (${size.memoryMiB} MiB, for task.override({ memoryMiB }))`;
      const { fn, logGroup } = this.createFunction(scope, "", "executor", {
        description: `Aloft executor for TaskEnvironment ${JSON.stringify(spec.name)}${sized}`,
        memorySize: size.memoryMiB,
        timeout: executorTimeout(spec),
        // The environment's own variables may override Powertools settings and NODE_OPTIONS;
        // validation rejects ALOFT_* names, so the contract's variables cannot be overridden.
        environment: {
          ...sharedEnv,
          ...spec.env,
          [ENV.environment]: spec.name,
          ...executorQueues[i]!.leaseEnv,
        },
      });
      fn.addEventSource(
        new SqsEventSource(queue, {
          batchSize: s.executorBatchSize,
          maxBatchingWindow: s.executorMaxBatchingWindow,
          reportBatchItemFailures: true,
          maxConcurrency: maxConcurrencyOf(scope, spec),
        }),
      );
      return { environment: spec, memoryMiB: size.memoryMiB, function: fn, queue, deadLetterQueue, logGroup };
    });

    // The coordinator's bundle serves both (cdk/entries.ts); they run no user code.
    const deadLetter = this.createFunction(new Construct(this, "DeadLetter"), "", "coordinator", {
      description: "Aloft dead-letter consumer: fails the action or run each dead-lettered message concerns",
      memorySize: 512,
      timeout: DEAD_LETTER_TIMEOUT,
      environment: sharedEnv,
      handler: "deadLetter",
    });
    this.deadLetterConsumer = deadLetter.fn;
    this.deadLetterLogGroup = deadLetter.logGroup;
    for (const dlq of this.deadLetterQueues)
      this.deadLetterConsumer.addEventSource(
        new SqsEventSource(dlq, { batchSize: 10, reportBatchItemFailures: true, maxConcurrency: 2 }),
      );
    const reconcileScope = new Construct(this, "Reconcile");
    const reconciler = this.createFunction(reconcileScope, "", "coordinator", {
      description:
        "Aloft reconciler: finds runs without progress past the liveness bound, nudges or fails them",
      memorySize: 512,
      timeout: Duration.minutes(5),
      environment: {
        ...sharedEnv,
        [ENV.stallSeconds]: String(s.stallTimeout.toSeconds()),
        [ENV.stallFailSeconds]: String(4 * s.stallTimeout.toSeconds()),
      },
      handler: "reconcile",
    });
    this.reconciler = reconciler.fn;
    this.reconcilerLogGroup = reconciler.logGroup;
    this.reconcileRule = new events.Rule(reconcileScope, "Schedule", {
      description: "Aloft: the reconciler's tick",
      schedule: events.Schedule.rate(Duration.minutes(1)),
      targets: [new targets.LambdaFunction(this.reconciler, { retryAttempts: 0 })],
    });

    this.functions = [
      this.coordinator,
      ...this.executors.map((e) => e.function),
      this.deadLetterConsumer,
      this.reconciler,
    ];
    for (const fn of this.functions) this.grantHandler(fn);

    this.alarms = this.alarmList;
    this.createOutputs(queueUrls, executorQueuesJson);
  }

  /** The executor of the environment named `name`: its own, or the one of `memoryMiB` among its `memorySizesMiB`. */
  executor(name: string, memoryMiB?: number): AloftExecutor {
    const mine = this.executors.filter((e) => e.environment.name === name);
    const found = memoryMiB === undefined ? mine[0] : mine.find((e) => e.memoryMiB === memoryMiB);
    if (!found) {
      const deployed = this.executors.map((e) => `${e.environment.name} (${e.memoryMiB} MiB)`).join(", ");
      throw new ConfigurationError(
        `Aloft: no executor for environment ${JSON.stringify(name)}${memoryMiB === undefined ? "" : ` of ${memoryMiB} MiB`}; deployed: ${deployed}`,
      );
    }
    return found;
  }

  /**
   * Lets `grantee` start runs (send to the coordinator queue), watch them (read the table and its
   * index, fetch large results from the bucket) and cancel them (update a run item): what
   * `AloftClient` and `aloft ... --aws` do. For principals in this stack's account.
   * @example
   * aloft.grantRun(apiFunction);
   */
  grantRun(grantee: iam.IGrantable): iam.Grant {
    return this.grantClient(grantee, RUN_TABLE_ACTIONS, this.tableArns(), RUN_BUCKET_ACTIONS);
  }

  /**
   * Lets `grantee` send signals to runs (`AloftClient.signal`, `aloft signal --aws`): count and
   * store a signal in the table (not its index), offload a large payload, and tell the coordinator
   * queue. Nothing else: it reads no run and starts none.
   * @example
   * aloft.grantSignal(approvalWebhook);
   */
  grantSignal(grantee: iam.IGrantable): iam.Grant {
    return this.grantClient(grantee, SIGNAL_TABLE_ACTIONS, [this.table.tableArn], SIGNAL_BUCKET_ACTIONS);
  }

  /**
   * Lets `grantee` complete and fail callbacks (`AloftClient.completeCallback` / `failCallback`,
   * `aloft callback --aws`): read a callback and its run, record the first completion, offload a
   * large payload, and tell the coordinator queue. Nothing else: it starts, reads and cancels no run.
   * @example
   * aloft.grantCompleteCallback(paymentWebhook);
   */
  grantCompleteCallback(grantee: iam.IGrantable): iam.Grant {
    return this.grantClient(grantee, CALLBACK_TABLE_ACTIONS, [this.table.tableArn], SIGNAL_BUCKET_ACTIONS);
  }

  /** A client's grant: send to the coordinator queue, these table actions, these payload actions. */
  private grantClient(
    grantee: iam.IGrantable,
    tableActions: string[],
    tableArns: string[],
    bucketActions: string[],
  ): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: SEND_ACTIONS,
      resourceArns: [this.coordinatorQueue.queueArn],
    })
      .combine(iam.Grant.addToPrincipal({ grantee, actions: tableActions, resourceArns: tableArns }))
      .combine(
        iam.Grant.addToPrincipal({
          grantee,
          actions: bucketActions,
          resourceArns: [this.bucket.arnForObjects("*")],
        }),
      );
  }

  /**
   * Lets `grantee` read every Aloft function's logs (`aloft logs <run>`).
   * @example
   * aloft.grantReadLogs(operatorRole);
   */
  grantReadLogs(grantee: iam.IGrantable): iam.Grant {
    const logGroups = [
      this.coordinatorLogGroup,
      ...this.executors.map((e) => e.logGroup),
      this.deadLetterLogGroup,
      this.reconcilerLogGroup,
    ];
    return iam.Grant.addToPrincipal({
      grantee,
      actions: READ_LOGS_ACTIONS,
      resourceArns: logGroups.map((g) => g.logGroupArn),
    });
  }

  private tableArns(): string[] {
    return [this.table.tableArn, `${this.table.tableArn}/index/${GSI1}`];
  }

  /**
   * A work queue and its dead-letter queue, both encrypted (SSE-SQS) and TLS-only, and the variables
   * that tell its function's handler the lease it holds messages by (lambdas/visibility.ts).
   */
  private createQueues(
    scope: Construct,
    prefix: string,
    functionTimeout: Duration,
    lease: Duration,
    batchingWindow?: Duration,
  ): { queue: sqs.Queue; deadLetterQueue: sqs.Queue; leaseEnv: Record<string, string> } {
    // Retained by default, as the table is: removing a TaskEnvironment from the app must not delete
    // its queues with the messages of runs in flight (docs/aws.md, "Upgrades with runs in flight").
    const deadLetterQueue = new sqs.Queue(scope, `${prefix}DeadLetterQueue`, {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: RETENTION_OF_MESSAGES,
      // The dead-letter consumer reads it: six times its timeout, as for every consumed queue.
      visibilityTimeout: Duration.seconds(6 * DEAD_LETTER_TIMEOUT.toSeconds()),
      removalPolicy: this.settings.removalPolicy,
    });
    // Lambda rejects an event source whose queue's visibility timeout is shorter than the function's
    // timeout, and AWS advises six times it (plus the batching window) so a batch Lambda retries
    // while throttled stays invisible. That only covers a message until a handler holds it: the
    // handler then takes it on the short lease and renews it, so a crash is recovered a lease later.
    const visibility = Math.min(
      Math.max(6 * functionTimeout.toSeconds() + (batchingWindow?.toSeconds() ?? 0), lease.toSeconds()),
      MAX_VISIBILITY_TIMEOUT.toSeconds(),
    );
    const queue = new sqs.Queue(scope, `${prefix}Queue`, {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: RETENTION_OF_MESSAGES,
      visibilityTimeout: Duration.seconds(visibility),
      deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: this.settings.maxReceiveCount },
      removalPolicy: this.settings.removalPolicy,
    });
    this.alarm(
      scope,
      `${prefix}DeadLetterQueueAlarm`,
      deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(1),
        statistic: "Maximum",
      }),
      `Aloft: messages in dead-letter queue ${scope.node.path}; each is a run step that failed ${this.settings.maxReceiveCount} times`,
    );
    const leaseEnv = {
      [ENV.visibilityTimeout]: String(lease.toSeconds()),
      [ENV.queueVisibilityTimeout]: String(visibility),
    };
    return { queue, deadLetterQueue, leaseEnv };
  }

  /** A function with its own role (no managed policies) and its own log group. */
  private createFunction(
    scope: Construct,
    prefix: string,
    kind: HandlerKind,
    options: {
      description: string;
      memorySize: number;
      timeout: Duration;
      environment: Record<string, string>;
      /** The bundle's export to invoke; default `handler`. */
      handler?: string;
    },
  ): { fn: lambda.Function; logGroup: logs.LogGroup } {
    const { handler = "handler", ...fnOptions } = options;
    const s = this.settings;
    const logGroup = new logs.LogGroup(scope, `${prefix}LogGroup`, {
      retention: s.logRetention,
      removalPolicy: s.removalPolicy,
    });
    const role = new iam.Role(scope, `${prefix}Role`, {
      assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
      description: options.description,
    });
    // What AWSLambdaBasicExecutionRole grants, narrowed to this function's log group.
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ["logs:CreateLogStream", "logs:PutLogEvents"],
        resources: [logGroup.logGroupArn],
      }),
    );
    const common: lambda.FunctionOptions = {
      ...fnOptions,
      architecture: lambda.Architecture.ARM_64,
      role,
      logGroup,
    };
    const id = `${prefix}Function`;
    const fn = s.code
      ? new lambda.Function(scope, id, {
          ...common,
          runtime: lambda.Runtime.NODEJS_22_X,
          code: s.code[kind],
          handler: `index.${handler}`,
        })
      : new nodejs.NodejsFunction(scope, id, {
          ...common,
          runtime: lambda.Runtime.NODEJS_22_X,
          entry: writeHandlerEntry(kind, s.entry, s.projectRoot),
          handler,
          projectRoot: s.projectRoot,
          depsLockFilePath: s.lockFile,
          bundling: {
            forceDockerBundling: false,
            format: nodejs.OutputFormat.ESM,
            target: "node22",
            mainFields: ["module", "main"],
            // Bundled CommonJS dependencies still call require(); ESM output has none of its own.
            banner:
              "import { createRequire as __aloftCreateRequire } from 'node:module'; const require = __aloftCreateRequire(import.meta.url);",
            minify: true,
            // Task names default to function names (`<env>.<fn.name>`): minifying them away would
            // rename every task between the synth-time module and the deployed one.
            keepNames: true,
            sourceMap: true,
            // The nodejs22.x runtime ships AWS SDK v3.
            externalModules: ["@aws-sdk/*"],
            logLevel: nodejs.LogLevel.WARNING,
          },
        });
    this.alarm(
      scope,
      `${prefix}ErrorsAlarm`,
      fn.metricErrors({ period: Duration.minutes(5), statistic: "Sum" }),
      `Aloft: the ${kind} handler ${scope.node.path} threw (an invocation failed as a whole, not one message)`,
    );
    return { fn, logGroup };
  }

  private alarm(scope: Construct, id: string, metric: cloudwatch.IMetric, description: string): void {
    const alarm = new cloudwatch.Alarm(scope, id, {
      metric,
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: description,
    });
    for (const action of this.settings.alarmActions) alarm.addAlarmAction(action);
    this.alarmList.push(alarm);
  }

  /**
   * What every handler may do: read and write the table and its index, read and write payloads,
   * send to every Aloft queue. Consuming its own queue is granted by its event source.
   */
  private grantHandler(fn: lambda.Function): void {
    fn.addToRolePolicy(
      new iam.PolicyStatement({ actions: HANDLER_TABLE_ACTIONS, resources: this.tableArns() }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({
        actions: HANDLER_BUCKET_ACTIONS,
        resources: [this.bucket.arnForObjects("*")],
      }),
    );
    fn.addToRolePolicy(
      new iam.PolicyStatement({ actions: SEND_ACTIONS, resources: this.queues.map((q) => q.queueArn) }),
    );
  }

  /** Outputs under the fixed keys the client reads from `cdk deploy --outputs-file`. */
  private createOutputs(queueUrls: Record<string, string>, executorQueuesJson: string): void {
    const outputs: Array<[string, string, string]> = [
      [OUTPUT.table, this.table.tableName, "DynamoDB table of runs and history"],
      [OUTPUT.bucket, this.bucket.bucketName, "S3 bucket for large payloads"],
      [
        OUTPUT.coordinatorQueue,
        this.coordinatorQueue.queueUrl,
        "URL of the coordinator queue (where runs start)",
      ],
      [
        OUTPUT.executorQueues,
        executorQueuesJson,
        `JSON: TaskEnvironment name -> executor queue URL (${Object.keys(queueUrls).join(", ")})`,
      ],
      // The pseudo parameter, not Stack.region: right even for an environment-agnostic stack.
      [OUTPUT.region, Aws.REGION, "Region of the Aloft stack"],
      [
        OUTPUT.executorLogGroups,
        Stack.of(this).toJsonString(
          Object.fromEntries(this.executors.map((e) => [e.environment.name, e.logGroup.logGroupName])),
        ),
        "JSON: TaskEnvironment name -> executor log group, where task bodies' output goes (aloft logs --aws)",
      ],
    ];
    for (const [key, value, description] of outputs) {
      // Fixed logical ids: these are the keys `--outputs-file` writes and the client looks up.
      new CfnOutput(this, key, { value, description }).overrideLogicalId(key);
    }
  }
}

function executorTimeout(spec: EnvironmentSpec): Duration {
  return spec.timeoutMs === undefined
    ? DEFAULT_EXECUTOR_TIMEOUT
    : Duration.seconds(Math.ceil(spec.timeoutMs / 1000));
}

/** How long a message the environment's executor holds stays invisible between heartbeats. */
function leaseOf(spec: EnvironmentSpec): Duration {
  return spec.visibilityTimeoutMs === undefined
    ? DEFAULT_LEASE
    : Duration.seconds(Math.ceil(spec.visibilityTimeoutMs / 1000));
}

/** Lambda accepts a maximum concurrency of 2..1000 per SQS event source: clamp, and say so. */
function maxConcurrencyOf(scope: Construct, spec: EnvironmentSpec): number | undefined {
  if (spec.concurrency === undefined) return undefined;
  const clamped = Math.min(1000, Math.max(2, spec.concurrency));
  if (clamped !== spec.concurrency) {
    Annotations.of(scope).addWarningV2(
      "aloft:maxConcurrencyClamped",
      `TaskEnvironment ${spec.name}: concurrency ${spec.concurrency} is outside the 2..1000 that SQS event sources accept; deployed with ${clamped}`,
    );
  }
  return clamped;
}
