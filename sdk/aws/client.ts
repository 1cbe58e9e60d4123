/**
 * The client of a deployed Aloft stack: start runs, follow them, cancel them.
 *
 * Configuration is the stack's outputs (sdk/aws/config.ts `OUTPUT`): given in code, read from the
 * file `cdk deploy --outputs-file aloft-outputs.json` wrote, or from the ALOFT_* variables the
 * handlers use. Endpoints come from the standard AWS variables (AWS_ENDPOINT_URL and the
 * per-service AWS_ENDPOINT_URL_DYNAMODB / _SQS / _S3), so one client serves AWS, LocalStack and
 * `aloft dev`.
 */
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { DEFAULT_OUTPUTS_FILE, ENV, OUTPUT } from "./config.ts";
import { MESSAGE_VERSION } from "./messages.ts";
import type { CallbackMessage, SignalMessage, StartMessage } from "./messages.ts";
import { completeCallbackItem } from "./store/callbacks.ts";
import { completionOutcome, failureOutcome, parseCallbackId } from "../core/callbacks.ts";
import type { Outcome } from "../core/history.ts";
import { withinGrace } from "../callback.ts";
import { storeSignal } from "./store/signals.ts";
import { checkSignalName, shownId } from "../core/durable-waits.ts";
import { serialize } from "../serde.ts";
import { offload, resolvePayload } from "./payloads.ts";
import { buildRuntime, configFromEnv, makeClients } from "./runtime.ts";
import { sendMessages } from "./transport/send.ts";
import type { AloftConfig, Runtime } from "./runtime.ts";
import { sendToCoordinator } from "./transport/dispatch.ts";
import { sweepOf, sweepPage } from "./store/cancel.ts";
import { endCounter, readCounter } from "./store/counters.ts";
import type { RunItem } from "./store/table.ts";
import { TERMINAL } from "./store/table.ts";
import { listRunRows } from "./store/runs.ts";
import { serializeArgs } from "../core/calls.ts";
import { formatOutcome, parseOutcome } from "../core/history.ts";
import { CancelledError, ConfigurationError, serializeError } from "../errors.ts";
import { checkOptions, clientConfigSchema, clientOptionsSchema } from "../options.ts";
import { runResult } from "../result.ts";
import type { Task } from "../task.ts";
import { isTask } from "../task.ts";
import { awsRunStatus } from "./status.ts";
import { addRecovery, cancelRun, readRun } from "./store/runs.ts";
import { checkRecoverable } from "../core/recover.ts";
import type { GroupProgress, Run, RunStatus } from "../run-handle.ts";

type AnyFn = (...args: any[]) => any;

/** A stack's outputs, as the client needs them. */
export interface AloftClientConfig {
  table: string;
  /** S3 bucket for large payloads (optional: without it, oversized payloads fail clearly). */
  bucket?: string;
  coordinatorQueue: string;
  /** TaskEnvironment name -> executor queue URL. */
  executorQueues: Record<string, string>;
  region?: string;
  /** Days a finished run is kept (for the items the client writes); default 30. */
  retentionDays?: number;
  /** TaskEnvironment name -> executor log group, where task bodies' output goes (`aloft logs --aws`). */
  executorLogGroups?: Record<string, string>;
  /** `aloft dev` only: the file its handlers append task log lines to. */
  taskLogFile?: string;
  /** `aloft dev --cdk-out` only: the folder of its sandboxes' output, one file per function. */
  functionLogDir?: string;
}

export interface AloftClientOptions {
  /** `cdk deploy --outputs-file` file to read when no config is given; default aloft-outputs.json. */
  outputsFile?: string;
}

/** A run's summary row, for `aloft runs --aws`. */
export interface AwsRunRow {
  id: string;
  task: string;
  status: string;
  created: number;
  ended: number | null;
}

/** Reads a `cdk deploy --outputs-file` file (one stack whose outputs carry Aloft's keys). */
export function configFromOutputsFile(path: string): AloftClientConfig {
  const json = JSON.parse(readFileSync(path, "utf8")) as Record<string, Record<string, string>>;
  const stacks = Object.entries(json).filter(([, o]) => o && typeof o === "object" && OUTPUT.table in o);
  if (stacks.length !== 1) {
    throw new ConfigurationError(
      `${path}: expected exactly one stack with Aloft outputs (${OUTPUT.table}, ...), found ${stacks.length}` +
        (stacks.length ? ` (${stacks.map(([n]) => n).join(", ")})` : ""),
    );
  }
  const o = stacks[0]![1];
  const missing = [OUTPUT.table, OUTPUT.coordinatorQueue, OUTPUT.executorQueues].filter((k) => !o[k]);
  if (missing.length) throw new ConfigurationError(`${path}: stack outputs lack ${missing.join(", ")}`);
  const cfg: AloftClientConfig = {
    table: o[OUTPUT.table]!,
    coordinatorQueue: o[OUTPUT.coordinatorQueue]!,
    executorQueues: JSON.parse(o[OUTPUT.executorQueues]!) as Record<string, string>,
  };
  if (o[OUTPUT.bucket]) cfg.bucket = o[OUTPUT.bucket];
  if (o[OUTPUT.region]) cfg.region = o[OUTPUT.region];
  if (o[OUTPUT.executorLogGroups])
    cfg.executorLogGroups = JSON.parse(o[OUTPUT.executorLogGroups]!) as Record<string, string>;
  if (o[OUTPUT.taskLogFile]) cfg.taskLogFile = o[OUTPUT.taskLogFile];
  if (o[OUTPUT.functionLogDir]) cfg.functionLogDir = o[OUTPUT.functionLogDir];
  return cfg;
}

/** Config from code, else the outputs file, else the ALOFT_* variables; errors say what to set. */
export function resolveClientConfig(
  config?: AloftClientConfig,
  options: AloftClientOptions = {},
): AloftClientConfig {
  checkOptions(clientOptionsSchema, options, "AloftClient options");
  if (config) return (checkOptions(clientConfigSchema, config, "AloftClient config"), config);
  const file = resolve(options.outputsFile ?? process.env["ALOFT_OUTPUTS_FILE"] ?? DEFAULT_OUTPUTS_FILE);
  if (existsSync(file)) return configFromOutputsFile(file);
  if (process.env[ENV.table]) {
    const c = configFromEnv();
    return {
      table: c.table,
      coordinatorQueue: c.coordinatorQueue,
      executorQueues: c.executorQueues,
      ...(c.bucket ? { bucket: c.bucket } : {}),
    };
  }
  throw new ConfigurationError(
    `no Aloft stack configuration: pass it to new AloftClient({...}), or deploy with ` +
      `\`cdk deploy --outputs-file ${DEFAULT_OUTPUTS_FILE}\` (looked at ${file}), or set ${ENV.table}, ` +
      `${ENV.coordinatorQueue} and ${ENV.executorQueues} (aloft dev prints them)`,
  );
}

/**
 * Starts and follows runs on a deployed stack.
 * @example
 * const client = new AloftClient(); // reads aloft-outputs.json
 * const r = await client.run(parallelPipeline, ["a", "b", "c"]);
 * console.log(await r.result());
 */
export class AloftClient {
  readonly config: AloftClientConfig;
  /** Exposed for tools and tests (e.g. to count AWS calls with client middleware). */
  readonly rt: Runtime;

  constructor(config?: AloftClientConfig, options: AloftClientOptions = {}) {
    this.config = resolveClientConfig(config, options);
    const c: AloftConfig = {
      table: this.config.table,
      bucket: this.config.bucket,
      coordinatorQueue: this.config.coordinatorQueue,
      executorQueues: this.config.executorQueues,
      retentionDays: this.config.retentionDays ?? 30,
    };
    this.rt = buildRuntime(c, makeClients(this.config.region));
  }

  /** Starts `task` as a run on the stack. Typed like `run` from "aloft". */
  async run<F extends AnyFn>(task: Task<F>, ...args: Parameters<F>): Promise<AwsRun<Awaited<ReturnType<F>>>> {
    if (!isTask(task))
      throw new ConfigurationError("AloftClient.run() needs a task registered with env.task");
    return this.start<Awaited<ReturnType<F>>>(task.def.name, serializeArgs(task.def.name, args));
  }

  /** Starts a task by registered name with a serialised argument list (the CLI's path). */
  async start<R = unknown>(taskName: string, payload: string): Promise<AwsRun<R>> {
    const id = `r-${randomUUID()}`;
    await this.sendStart({ run: id, task: taskName, args: await offload(this.rt.payloads, id, payload) });
    return new AwsRun<R>(this, id, taskName);
  }

  /** Asks the coordinator to start run `s.run` (it creates the run once, however often this arrives). */
  private async sendStart(s: Pick<StartMessage, "run" | "task" | "args" | "rec">): Promise<void> {
    const msg: StartMessage = { k: "start", v: MESSAGE_VERSION, ...s, created: Date.now() };
    await sendMessages(this.rt, this.config.coordinatorQueue, [{ body: JSON.stringify(msg) }]);
  }

  /**
   * Sends signal `name` to run `runId`: the first `waitForSignal(name)` in it, now or later,
   * receives `payload`. Rejects with `RunEndedError` once the run has ended.
   * @example
   * await client.signal(runId, "approve", { approved: true });
   */
  async signal(runId: string, name: string, payload?: unknown): Promise<void> {
    checkSignalName(name, "signal");
    const body = serialize(payload, `payload of signal ${JSON.stringify(name)}`);
    // Stored first (a conditional write that refuses an ended run), then announced: a wait that
    // starts later finds it stored, one already waiting is paired by the coordinator.
    await storeSignal(this.rt, runId, name, body);
    const msg: SignalMessage = { k: "signal", v: MESSAGE_VERSION, run: runId, name };
    await sendToCoordinator(this.rt, [{ msg }]);
  }

  /**
   * Completes callback `id` (a task's `createCallback().id`) with `payload`: its `await cb`
   * resolves with it. The first completion wins: a second is a `CallbackCompletedError`, an unknown
   * id an `UnknownCallbackError`, a run that ended a `RunEndedError`.
   * @example
   * await client.completeCallback(id, { approved: true });
   */
  async completeCallback(id: string, payload?: unknown): Promise<void> {
    const { run, secret } = parseCallbackId(id);
    await this.endCallback(run, secret, completionOutcome(payload, `callback ${shownId(run, secret)}`));
  }

  /**
   * Fails callback `id` with `message`: its `await cb` rejects with a `TaskError` carrying it.
   * @example
   * await client.failCallback(id, "payment declined");
   */
  async failCallback(id: string, message: string): Promise<void> {
    const { run, secret } = parseCallbackId(id);
    await this.endCallback(run, secret, failureOutcome(message, `callback ${shownId(run, secret)}`));
  }

  private async endCallback(run: string, secret: string, outcome: Outcome): Promise<void> {
    // Recorded first (a conditional write: the first completion wins), then announced: a wait
    // whose exec has not run yet finds it recorded, one already attached is settled by the coordinator.
    await withinGrace(() => completeCallbackItem(this.rt, run, secret, outcome));
    const msg: CallbackMessage = { k: "callback", v: MESSAGE_VERSION, run, key: secret };
    await sendToCoordinator(this.rt, [{ msg }]);
  }

  /**
   * Recovers a run that ended `FAILED`, `CANCELLED` or `TIMED_OUT` (docs/recover.md): a new run of
   * the same task and inputs in which every call that succeeded in it, or in the runs it recovered,
   * returns its recorded outcome without running.
   * @example
   * const r = await client.recover(failedRunId);
   * console.log(r.id, await r.result());
   */
  async recover<R = unknown>(runId: string): Promise<AwsRun<R>> {
    const src = await readRun(this.rt, runId);
    if (!src)
      throw new ConfigurationError(
        `no run ${runId} on table ${this.config.table} to recover: give its full id (aloft runs --aws lists them)`,
      );
    checkRecoverable({ id: runId, task: src.task, status: src.status });
    const id = `r-${randomUUID()}`;
    // Large arguments are stored again under the recovery: the source's object expires with it.
    const args = await offload(this.rt.payloads, id, await resolvePayload(this.rt.payloads, src.args));
    await this.sendStart({ run: id, task: src.task, args, rec: [runId, ...(src.rec ?? [])] });
    // Listed on the source after the start is sent: the recovery always names its source; a crash
    // here leaves only the source's list short.
    await addRecovery(this.rt, runId, id);
    return new AwsRun<R>(this, id, src.task);
  }

  /** A handle on an existing run (its id as printed by `run`). */
  attach<R = unknown>(id: string): AwsRun<R> {
    return new AwsRun<R>(this, id, undefined);
  }

  async getRun(id: string): Promise<RunItem | undefined> {
    return readRun(this.rt, id);
  }

  /** Most recent runs first (every shard of the gsi1 index, merged: sdk/aws/store/runs.ts). */
  async listRuns(limit = 20): Promise<AwsRunRow[]> {
    return (await listRunRows(this.rt, limit)).map((r) => ({
      id: r.run,
      task: r.task,
      status: r.status,
      created: r.created,
      ended: r.ended ?? null,
    }));
  }

  destroy(): void {
    this.rt.doc.destroy();
    this.rt.ddb.destroy();
    this.rt.sqs.destroy();
    this.rt.s3.destroy();
  }
}

/** A run on a deployed stack. */
export class AwsRun<R = unknown> implements Run<R> {
  private last: RunStatus | undefined;

  constructor(
    private readonly client: AloftClient,
    readonly id: string,
    private readonly taskName: string | undefined,
  ) {}

  /** Polls the run item until the run ends (the start message may not be processed yet). */
  private async ended(intervalMs = 100): Promise<RunItem> {
    let wait = intervalMs;
    for (;;) {
      const r = await this.client.getRun(this.id);
      if (r && TERMINAL.has(r.status)) return r;
      await new Promise((res) => setTimeout(res, wait));
      wait = Math.min(1000, Math.round(wait * 1.3));
    }
  }

  async result(): Promise<R> {
    const r = await this.ended();
    const o = parseOutcome(
      `outcome of run ${this.id}`,
      await resolvePayload(this.client.rt.payloads, r.outcome ?? ""),
    );
    return runResult<R>(r.task, r.status, o);
  }

  async status(): Promise<RunStatus> {
    const r = await this.client.getRun(this.id);
    if (!r) {
      const now = new Date();
      return {
        id: this.id,
        task: this.taskName ?? "?",
        state: "QUEUED",
        createdAt: now,
        endedAt: undefined,
        root: undefined,
        groups: [],
        actions: 0,
      };
    }
    this.last = await awsRunStatus(this.client.rt, r);
    return this.last;
  }

  async *watch(intervalMs = 1000): AsyncIterable<RunStatus> {
    for (;;) {
      const s = await this.status();
      yield s;
      if (TERMINAL.has(s.state)) return;
      await new Promise((res) => setTimeout(res, intervalMs));
    }
  }

  /**
   * Cancels the run: it ends CANCELLED at once (one conditional write), then every descendant
   * still queued or running is marked CANCELLED (the first page here, the rest by the
   * coordinator); executors find the marks and stop.
   */
  async cancel(reason = "the run was cancelled"): Promise<void> {
    const rt = this.client.rt;
    const now = Date.now();
    const outcome = formatOutcome({ ok: false, error: serializeError(new CancelledError(reason)) });
    if (!(await cancelRun(rt, this.id, outcome, now))) {
      const r = await this.client.getRun(this.id);
      if (!r) throw new ConfigurationError(`no run ${this.id} (not started yet, expired, or another stack)`);
      return;
    }
    // The root is marked ended (so a root still in its first execution never fans out), its first
    // page of children cancelled here and the rest swept by the coordinator, a page at a time.
    if (!(await endCounter(rt, this.id))) return;
    const next = await sweepPage(rt, sweepOf(this.id, this.id, reason));
    await sendToCoordinator(
      rt,
      next.map((msg) => ({ msg })),
    );
  }

  /** Sends signal `name` to this run (see {@link AloftClient.signal}). */
  async signal(name: string, payload?: unknown): Promise<void> {
    await this.client.signal(this.id, name, payload);
  }

  progress(): GroupProgress[] {
    return (this.last?.groups ?? []).map((g) => ({
      runId: this.id,
      group: g.group,
      total: g.total,
      done: Object.entries(g.byStatus).reduce((n, [s, c]) => n + (TERMINAL.has(s) ? c : 0), 0),
      failed: (g.byStatus["FAILED"] ?? 0) + (g.byStatus["TIMED_OUT"] ?? 0),
    }));
  }

  /** Replays of the run's root after its first execution (for tests and benchmarks). */
  async replays(): Promise<number> {
    return (await readCounter(this.client.rt, this.id))?.rp ?? 0;
  }
}
