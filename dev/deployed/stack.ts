/**
 * `aloft dev --cdk-out <dir>`: the synthesized stack run as it deploys. The template's table,
 * queues and bucket on DynamoDB Local + fauxqs; every Lambda function in sandbox processes from its
 * asset with the template's settings; its event sources and schedules; every AWS request through
 * the IAM proxy; optional chaos. See docs/deployed.md for what this reproduces of AWS and what not.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ENV, OUTPUT } from "../../sdk/aws/config.ts";
import { ConfigurationError } from "../../sdk/errors.ts";
import { DEFAULT_LOCAL_REGION, LOCAL_CREDENTIALS } from "../aws-clients.ts";
import { startDynamoDbLocal, type DynamoDbLocal } from "../dynamodb-local.ts";
import { startSqsLocal, type SqsLocal } from "../sqs-local.ts";
import type { DevStack } from "../stack.ts";
import { assetDir, readStack, resourcesOf, type StackArtifact } from "./assembly.ts";
import { Chaos, type ChaosSpec } from "./chaos.ts";
import { startEventSources, type EventSources, type Recovery } from "./event-sources.ts";
import { startIamProxy, type IamProxy } from "./iam-proxy.ts";
import { rolePolicy, type Grant } from "./iam-policy.ts";
import { resolve, resolveString } from "./intrinsics.ts";
import { provision, type Provisioned } from "./provision.ts";
import { FunctionPool, type PoolStats } from "./sandbox-pool.ts";
import { functionRoot, sdkRuntime } from "./sdk-runtime.ts";

export interface DeployedStackOptions {
  /** A `cdk synth --output <dir>` folder. */
  cdkOut: string;
  /** The stack, when the assembly has several. */
  stack?: string;
  chaos?: Partial<ChaosSpec>;
  /** Most sandboxes per function when the template sets no reserved concurrency; default 4. */
  maxSandboxes?: number;
  /** Seconds a sandbox may stay idle before it is stopped (Lambda reclaims idle ones); default 300, 0 never. */
  idleSeconds?: number;
  /** Extra variables for every sandbox, over the template's (tests point fixtures at a folder). */
  env?: Record<string, string>;
  /** Where function logs go (one file per function); default a new temp folder. */
  logDir?: string;
  /** Each line the harness reports while running (denials, failed invocations); default stderr. */
  log?: (line: string) => void;
}

export interface FunctionReport extends PoolStats {
  logicalId: string;
  name: string;
}

export interface DeployedReport {
  denials: string[];
  unused: string[];
  functions: FunctionReport[];
  chaos: Chaos["counts"];
  /** The report as printed at stop. */
  text: string;
}

export interface DeployedStack {
  name: string;
  /** The stack's Outputs, resolved (what `cdk deploy --outputs-file` would write). */
  outputs: Record<string, string>;
  /** The client configuration from the outputs. */
  config: DevStack["config"];
  /** Variables for a client of this stack (endpoints, region, dummy credentials). */
  env: Record<string, string>;
  /** What was created and wired, for the startup message. */
  description: string[];
  logDir: string;
  pools: Map<string, FunctionPool>;
  chaos: Chaos;
  /** IAM denials so far, as printed. */
  denials: string[];
  eventSources: EventSources;
  stop(): Promise<DeployedReport>;
}

export async function startDeployedStack(options: DeployedStackOptions): Promise<DeployedStack> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const stack = readStack(options.cdkOut, options.stack);
  const region = DEFAULT_LOCAL_REGION;
  const chaos = new Chaos(options.chaos);
  const cleanup: Array<() => Promise<unknown> | unknown> = [];
  const undo = async () => {
    for (const f of cleanup.reverse()) await Promise.resolve(f()).catch(() => undefined);
  };
  try {
    const [dynamo, sqsLocal] = await Promise.all([startDynamoDbLocal(), startSqsLocal({ region })]);
    cleanup.push(
      () => dynamo.stop(),
      () => sqsLocal.stop(),
    );
    return await start(stack, options, { dynamo, sqsLocal, region, chaos, log, cleanup, undo });
  } catch (e) {
    await undo();
    throw e;
  }
}

interface Context {
  dynamo: DynamoDbLocal;
  sqsLocal: SqsLocal;
  region: string;
  chaos: Chaos;
  log: (line: string) => void;
  cleanup: Array<() => Promise<unknown> | unknown>;
  undo: () => Promise<void>;
}

async function start(
  stack: StackArtifact,
  options: DeployedStackOptions,
  c: Context,
): Promise<DeployedStack> {
  const common = { region: c.region, credentials: LOCAL_CREDENTIALS };
  const clients = {
    dynamo: new DynamoDBClient({ ...common, endpoint: c.dynamo.endpoint }),
    sqs: new SQSClient({ ...common, endpoint: c.sqsLocal.endpoint, useQueueUrlAsEndpoint: false }),
    s3: new S3Client({ ...common, endpoint: c.sqsLocal.endpoint, forcePathStyle: true }),
  };
  c.cleanup.push(() => (clients.dynamo.destroy(), clients.sqs.destroy(), clients.s3.destroy()));
  const res: Provisioned = await provision(stack, clients, c.region);
  const { scope } = res;

  const denials: string[] = [];
  const used = new Map<string, Set<Grant>>();
  const pools = new Map<string, FunctionPool>();
  const poolOfKey = (key: string) => [...pools.values()].find((p) => p.owns(key));
  const proxy: IamProxy = await startIamProxy(
    { dynamodb: c.dynamo.endpoint, sqs: c.sqsLocal.endpoint, s3: c.sqsLocal.endpoint },
    {
      region: c.region,
      account: scope.account,
      queueArn: (url) =>
        res.queueArns.get(url) ?? `arn:aws:sqs:${c.region}:${scope.account}:${url.split("/").pop()}`,
    },
    {
      principal: (key) => {
        const pool = poolOfKey(key);
        return pool && { functionName: pool.spec.logicalId, policy: policies.get(pool.spec.logicalId)! };
      },
      before: (key) => {
        const pool = poolOfKey(key);
        const fault = pool?.beforeRequest(key) ?? (c.chaos.roll("throttles") ? "throttle" : undefined);
        if (fault === "throttle") pool?.throttled(key);
        return fault;
      },
      after: (key, ms) => poolOfKey(key)?.afterResponse(key, ms),
      denied: (fn, action, resource) => {
        const line = `IAM denied: ${fn} ${action} ${resource}`;
        denials.push(line);
        c.log(line);
      },
      used: (fn, grants) => {
        const set = used.get(fn) ?? new Set();
        for (const g of grants) set.add(g);
        used.set(fn, set);
      },
    },
  );
  c.cleanup.push(() => proxy.stop());

  const runtimeModules = sdkRuntime();
  const root = mkdtempSync(join(tmpdir(), `aloft-deployed-${stack.name}-`));
  c.cleanup.push(() => rmSync(root, { recursive: true, force: true }));
  const logDir = options.logDir ?? mkdtempSync(join(tmpdir(), `aloft-deployed-logs-`));
  mkdirSync(logDir, { recursive: true, mode: 0o700 }); // owner-only, as a temporary one is
  const maxSandboxes = options.maxSandboxes ?? 4;
  const policies = new Map<string, ReturnType<typeof rolePolicy>>();
  const description = [...res.created];
  let index = 0;
  for (const id of resourcesOf(stack.template, "AWS::Lambda::Function")) {
    const p = stack.template.Resources[id]!.Properties ?? {};
    const runtime = String(p["Runtime"] ?? "");
    if (!runtime.startsWith("nodejs")) {
      description.push(`function ${id}: runtime ${runtime || "?"} not supported, not run`);
      continue;
    }
    const role = p["Role"] as { "Fn::GetAtt"?: [string, string] };
    const roleId = role?.["Fn::GetAtt"]?.[0];
    if (!roleId)
      throw new ConfigurationError(`${id}: its Role is not a Fn::GetAtt of a role in the template`);
    const policy = rolePolicy(stack.template, roleId, scope);
    policies.set(id, policy);
    for (const u of policy.unsupported) description.push(`IAM ${id}: ${u}`);
    const phys = scope.resources.get(id)!;
    const variables = resolve(
      (p["Environment"] as { Variables?: unknown })?.Variables ?? {},
      scope,
      `${id}.Environment`,
    ) as Record<string, string>;
    const logGroup = (p["LoggingConfig"] as { LogGroup?: unknown })?.LogGroup;
    const logGroupName = logGroup
      ? resolveString(logGroup, scope, `${id}.LoggingConfig`)
      : `/aws/lambda/${phys.ref}`;
    const memoryMiB = Number(p["MemorySize"] ?? 128);
    const timeoutSeconds = Number(p["Timeout"] ?? 3);
    const reserved = p["ReservedConcurrentExecutions"];
    const taskDir = functionRoot(root, id, assetDir(stack, id), runtimeModules);
    const env: Record<string, string> = {
      PATH: process.env["PATH"] ?? "/usr/bin:/bin",
      TZ: ":UTC",
      LANG: "en_US.UTF-8",
      LAMBDA_TASK_ROOT: taskDir,
      AWS_EXECUTION_ENV: `AWS_Lambda_${runtime}`,
      AWS_LAMBDA_FUNCTION_NAME: phys.ref,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memoryMiB),
      AWS_LAMBDA_FUNCTION_VERSION: "$LATEST",
      AWS_LAMBDA_LOG_GROUP_NAME: logGroupName,
      AWS_REGION: c.region,
      AWS_DEFAULT_REGION: c.region,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      AWS_EC2_METADATA_DISABLED: "true",
      // Not set on AWS: here the SDK must reach the emulators, through the IAM proxy.
      AWS_ENDPOINT_URL_DYNAMODB: proxy.endpoint,
      AWS_ENDPOINT_URL_SQS: proxy.endpoint,
      AWS_ENDPOINT_URL_S3: proxy.endpoint,
      ...variables,
      ...options.env,
    };
    const concurrency = reserved === undefined ? maxSandboxes : Math.max(0, Number(reserved));
    const pool = new FunctionPool(
      {
        logicalId: id,
        name: phys.ref,
        arn: phys.attributes["Arn"]!,
        logGroupName,
        taskDir,
        handler: String(p["Handler"]),
        memoryMiB,
        timeoutSeconds,
        env,
        concurrency,
        logFile: join(logDir, `${id}.log`),
      },
      c.chaos,
      `ASIA${(index++).toString(36).toUpperCase()}X`,
      options.idleSeconds ?? 300,
    );
    pools.set(id, pool);
    // The handlers read their lease from these (lambdas/visibility.ts): shown, so a chaos run's
    // recovery times can be read against them.
    const lease = variables[ENV.visibilityTimeout];
    const queueVisibility = variables[ENV.queueVisibilityTimeout];
    description.push(
      `function ${id}: ${p["Handler"]} ${memoryMiB} MiB, ${timeoutSeconds} s, up to ${concurrency} sandboxes` +
        (lease ? `, lease ${lease} s (queue visibility ${queueVisibility ?? "?"} s)` : ""),
    );
  }
  c.cleanup.push(() => Promise.all([...pools.values()].map((p) => p.stop())));

  const eventSources = await startEventSources({
    stack,
    scope,
    sqs: clients.sqs,
    pools,
    chaos: c.chaos,
    maxConcurrency: maxSandboxes,
    onError: (m) => c.log(`invocation failed: ${m.split("\n")[0]}`),
  });
  // Stopped before the pools: in-flight invocations then fail at once as their sandboxes go.
  c.cleanup.push(() => eventSources.stop());
  description.push(...eventSources.described, ...res.ignored.map((i) => `not reproduced: ${i}`));

  const outputs = Object.fromEntries(
    Object.entries(stack.template.Outputs ?? {}).map(([k, v]) => [
      k,
      resolveString(v.Value, scope, `Outputs.${k}`),
    ]),
  );
  const need = (k: string) => {
    if (outputs[k] === undefined)
      throw new ConfigurationError(`the stack has no output ${k}: is it an Aloft stack?`);
    return outputs[k];
  };
  const config = {
    table: need(OUTPUT.table),
    bucket: need(OUTPUT.bucket),
    coordinatorQueue: need(OUTPUT.coordinatorQueue),
    executorQueues: JSON.parse(need(OUTPUT.executorQueues)) as Record<string, string>,
    region: c.region,
  };
  const env = {
    AWS_ENDPOINT_URL_DYNAMODB: c.dynamo.endpoint,
    AWS_ENDPOINT_URL_SQS: c.sqsLocal.endpoint,
    AWS_ENDPOINT_URL_S3: c.sqsLocal.endpoint,
    AWS_REGION: c.region,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
  };

  let stopping: Promise<DeployedReport> | undefined;
  return {
    name: stack.name,
    outputs,
    config,
    env,
    description,
    logDir,
    pools,
    chaos: c.chaos,
    denials,
    eventSources,
    stop() {
      stopping ??= (async () => {
        const eventSourcesStopped = eventSources.stop();
        // Kill the sandboxes so the pollers' in-flight invocations end now, not at their own pace.
        await Promise.all([...pools.values()].map((p) => p.stop()));
        await eventSourcesStopped;
        await c.undo();
        return report(pools, policies, used, denials, c.chaos, eventSources.recoveries);
      })();
      return stopping;
    },
  };
}

function report(
  pools: Map<string, FunctionPool>,
  policies: Map<string, ReturnType<typeof rolePolicy>>,
  used: Map<string, Set<Grant>>,
  denials: string[],
  chaos: Chaos,
  recoveries: Recovery[],
): DeployedReport {
  const unused: string[] = [];
  const functions: FunctionReport[] = [];
  for (const [id, pool] of pools) {
    functions.push({ logicalId: id, name: pool.spec.name, ...pool.stats });
    const invoked = pool.stats.invocations > 0;
    const mine = used.get(id) ?? new Set();
    if (!invoked) {
      unused.push(
        `IAM unused: ${id} was never invoked (${policies.get(id)?.grants.length ?? 0} grants unchecked)`,
      );
      continue;
    }
    for (const g of policies.get(id)?.grants ?? []) {
      // The Lambda service, not the code, writes an invoked function's logs with its role.
      if (g.effect !== "Allow" || mine.has(g) || g.action.startsWith("logs:")) continue;
      unused.push(`IAM unused: ${id} ${g.action} ${g.resource}`);
    }
  }
  const median = (xs: number[]) =>
    xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] : undefined;
  const lines = [
    ...functions.map(
      (f) =>
        `function ${f.logicalId}: ${f.invocations} invocations, ${f.coldStarts} cold starts (init median ${median(f.initMs) ?? "-"} ms), ${f.errors} failed, ${f.timeouts} timeouts, ${f.kills} killed`,
    ),
    ...unused,
    ...denials,
    chaos.summary(),
    // Issue 15's promise, measured: a message a killed sandbox held runs again about a lease later.
    ...recoveries.map(
      (r) =>
        `recovered: ${r.queue} message ${r.messageId} delivered again ${(r.ms / 1000).toFixed(1)} s after its sandbox was killed`,
    ),
  ];
  return { denials: [...denials], unused, functions, chaos: { ...chaos.counts }, text: lines.join("\n") };
}
