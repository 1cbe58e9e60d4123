/**
 * `init` and `run`: start a task as a run and follow it. Local mode (the default) runs on the
 * embedded engine in this process, with state in `.aloft/aloft.db` (or in memory).
 */
import { availableParallelism } from "node:os";
import { extname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigurationError } from "./errors.ts";
import { checkOptions, initOptionsSchema } from "./options.ts";
import type { SerializedError } from "./errors.ts";
import { serializeArgs } from "./core/calls.ts";
import type { Engine } from "./local/engine.ts";
import type { LocalBackend } from "./local/backend.ts";
import { IN_WORKER } from "./local/in-worker.ts";
import { findTask, listTasks } from "./registry.ts";
import { checkRecoverable } from "./core/recover.ts";
import { runResult } from "./result.ts";
import type { Task } from "./task.ts";
import type { AloftClient, AloftClientConfig } from "./aws/client.ts";
import { isTask } from "./task.ts";
import { completionOutcome, failureOutcome, parseCallbackId } from "./core/callbacks.ts";
import { shownId } from "./core/durable-waits.ts";
import { withinGrace } from "./callback.ts";
import type { Outcome } from "./core/history.ts";
import type { Run } from "./run-handle.ts";
export type { ActionNode, GroupProgress, Run, RunState, RunStatus } from "./run-handle.ts";

export interface InitOptions {
  /** `"local"` (default): the embedded engine. `"aws"`: a deployed stack (see AloftClient). */
  mode?: "local" | "aws";
  /** SQLite file of the local store, or `":memory:"`. Default `.aloft/aloft.db` in the working directory. */
  store?: string;
  /** Worker threads for task bodies; 0 runs them on the main thread. Default: one per core. */
  workers?: number;
  /** `mode: "aws"`: the stack's outputs (default: read from aloft-outputs.json or ALOFT_* variables). */
  aws?: AloftClientConfig;
  /** `mode: "aws"`: the `cdk deploy --outputs-file` file to read. */
  outputsFile?: string;
}

type AnyFn = (...args: any[]) => any;

let options: InitOptions = {};
let backend: Promise<LocalBackend> | undefined;
/** An engine whose workers could not load the tasks, being closed: the next one opens after. */
let closing: Promise<void> = Promise.resolve();

/**
 * Configures where runs go. Optional: without it, runs use the embedded engine and `.aloft/`.
 * @example
 * await init({ mode: "local", store: ":memory:", workers: 0 });
 */
export async function init(opts: InitOptions = {}): Promise<void> {
  if (opts.mode !== undefined && opts.mode !== "local" && opts.mode !== "aws") {
    throw new ConfigurationError(`init: mode must be "local" or "aws", got ${JSON.stringify(opts.mode)}`);
  }
  checkOptions(initOptionsSchema, opts, "init");
  await shutdown();
  options = { ...opts };
  aws = undefined;
}

let aws: Promise<AloftClient> | undefined;

/** The client of the deployed stack, for `init({ mode: "aws" })`. */
function awsClient(): Promise<AloftClient> {
  aws ??= import("./aws/client.ts").then(
    ({ AloftClient: Client }) =>
      new Client(options.aws, options.outputsFile ? { outputsFile: options.outputsFile } : {}),
  );
  aws.catch(() => (aws = undefined));
  return aws;
}

/**
 * Stops the local engine (workers, store lock) and the AWS client of `init({ mode: "aws" })`.
 * Optional: a process whose runs have ended exits by itself. Runs still in progress stop here and
 * can be resumed later (`aloft resume`).
 * @example
 * const r = await run(total, 10);
 * console.log(await r.result());
 * await shutdown();
 */
export async function shutdown(): Promise<void> {
  const client = aws;
  aws = undefined;
  if (client) (await client.catch(() => undefined))?.destroy();
  const b = backend;
  backend = undefined;
  if (!b) return;
  const x = await b.catch(() => undefined);
  if (x) await (await localModule()).closeLocal(x);
}

type LocalModule = typeof import("./local/backend.ts");
let local: Promise<LocalModule> | undefined;

/**
 * The embedded engine's module, loaded on first use. Its specifier is computed, not a literal, so
 * bundlers (esbuild in the CDK construct) leave it out: a Lambda bundle of a task module that
 * imports "aloft" carries no SQLite engine or worker pool.
 */
function localModule(): Promise<LocalModule> {
  const ext = extname(fileURLToPath(import.meta.url)); // .ts from source, .js when built
  const specifier = new URL(`./local/backend${ext}`, import.meta.url).href;
  local ??= import(specifier) as Promise<LocalModule>;
  return local;
}

function storePath(): string {
  return options.store === ":memory:" ? ":memory:" : resolve(options.store ?? ".aloft/aloft.db");
}

/**
 * The local engine, opened on first use; its workers import `modules` (default: every task's).
 * It takes runs at once: their roots run on this thread while the workers load (LocalBackend.ready).
 */
function openBackend(modules?: string[]): Promise<LocalBackend> {
  if (backend) return backend;
  const opening = (async () => {
    await closing;
    const path = storePath();
    modules ??= [...new Set(listTasks().flatMap((t) => (t.module ? [t.module] : [])))];
    const m = await localModule();
    const b = m.openLocal(path, options.workers ?? availableParallelism(), modules);
    // No worker could load the task modules (the engine failed its runs with why): this engine
    // is closed, and the next run opens another.
    b.ready.catch(() => {
      if (backend !== opening) return; // shutdown() closes it
      backend = undefined;
      closing = m.closeLocal(b).catch(() => undefined);
    });
    return b;
  })();
  backend = opening;
  opening.catch(() => {
    if (backend === opening) backend = undefined;
  });
  return opening;
}

/**
 * Opens the local engine before its tasks are registered, its workers importing `modules` while
 * the caller imports them too: the CLI knows its task module before loading it, and the workers'
 * start-up then overlaps the main thread's (docs/performance.md, start-up). Not public API.
 */
export function openLocalFor(modules: string[]): void {
  void openBackend(modules).catch(() => undefined);
}

/**
 * A worker imports the user's module to find its tasks: a top-level `run()`, `getEngine()`,
 * `recover()` or `resume()` stops there (the worker skips the marked error), rather than start an
 * engine inside the worker, whose own workers would import the module again.
 */
function notInWorker(what: string): void {
  if ((globalThis as Record<symbol, unknown>)[IN_WORKER])
    throw Object.assign(new Error(`${what} is not available inside an Aloft worker`), {
      aloftInWorker: true,
    });
}

/** The local engine (created on first use): for the CLI and tests. */
export async function getEngine(): Promise<Engine> {
  notInWorker("getEngine()");
  const { engine } = await openBackend();
  await engine.started(); // every worker, not only the first (openLocal): a bench times after it
  return engine;
}

/** A local run row's result: its value, or its recorded error thrown (sdk/result.ts). */
export function resultOf<R>(row: {
  status: string;
  result: string | null;
  error: string | null;
  task: string;
}): R {
  return runResult<R>(
    row.task,
    row.status,
    row.status === "SUCCEEDED"
      ? { ok: true, value: row.result ?? "null" }
      : { ok: false, error: JSON.parse(row.error ?? "{}") as SerializedError },
  );
}

/**
 * Starts `task` as a run. Typed end to end: `args` are the task's parameters, `result()` its value.
 * @example
 * const r = await run(parallelPipeline, ["a", "b", "c"]);
 * console.log(await r.result());
 */
export async function run<F extends AnyFn>(
  task: Task<F>,
  ...args: Parameters<F>
): Promise<Run<Awaited<ReturnType<F>>>> {
  notInWorker("run()");
  if (!isTask(task)) throw new ConfigurationError("run() needs a task registered with env.task");
  if (options.mode === "aws")
    return (await awsClient()).run(task, ...args) as unknown as Run<Awaited<ReturnType<F>>>;
  const payload = serializeArgs(task.def.name, args);
  const b = await openBackend();
  const { keepAliveUntilEnded, makeRun } = await localModule();
  const id = b.engine.startRun(task.def, payload);
  keepAliveUntilEnded(b, id);
  await b.ready; // the run started meanwhile; if no worker can load the tasks, it failed with why
  return makeRun(b, id, resultOf<Awaited<ReturnType<F>>>);
}

/**
 * Recovers a run that ended `FAILED`, `CANCELLED` or `TIMED_OUT`: starts a new run of the same task
 * with the same inputs, in which every call (at any depth) that succeeded in the source run — or in
 * the runs it recovered — returns its recorded outcome without running; the rest run with the code
 * as it is now (docs/recover.md). The task's module must be loaded (imported) in this process.
 * @example
 * const r = await recover("r-1a2b3c4d-5e6f");
 * console.log(r.id, await r.result());
 */
export async function recover<R = unknown>(runId: string): Promise<Run<R>> {
  notInWorker("recover()");
  if (options.mode === "aws") return (await awsClient()).recover(runId) as unknown as Run<R>;
  const b = await openBackend();
  const { keepAliveUntilEnded, makeRun } = await localModule();
  const row = b.store.getRun(runId);
  if (!row) throw new ConfigurationError(`no run ${runId} in ${b.store.path} to recover; see aloft runs`);
  checkRecoverable(row);
  const def = findTask(row.task);
  if (!def) {
    throw new ConfigurationError(
      `run ${runId} ran task ${row.task}, which is not registered in this process: import the module ` +
        `that defines it${row.module ? ` (${row.module})` : ""} before recover(), or use aloft recover ${runId}`,
    );
  }
  const id = b.engine.startRun(def, row.args, row.id);
  keepAliveUntilEnded(b, id);
  await b.ready;
  return makeRun(b, id, resultOf<R>);
}

/** Resumes a stored run after a crash (`aloft resume`). */
export async function resume(runId: string): Promise<Run> {
  notInWorker("resume()");
  const b = await openBackend();
  const { keepAliveUntilEnded, makeRun } = await localModule();
  // Resumed once a worker has loaded the tasks: a run whose workers cannot load them stays RUNNING,
  // to be resumed when they can.
  await b.ready;
  const row = b.store.getRun(runId);
  if (!row) throw new ConfigurationError(`no run ${runId} in ${b.store.path}; see aloft runs`);
  if (row.status === "RUNNING") {
    b.engine.resumeRun(runId);
    keepAliveUntilEnded(b, runId);
  }
  return makeRun(b, runId, resultOf);
}

/**
 * Completes callback `id` (a task's `createCallback().id`) with `payload`: its `await cb` resolves
 * with it. Goes where `init` says (the local store by default: a running engine in this process
 * delivers it at once, one in another process within a quarter of a second). The first completion
 * wins: a second one is a `CallbackCompletedError`, an unknown id an `UnknownCallbackError`, a run
 * that ended a `RunEndedError`.
 * @example
 * await completeCallback(req.query.id, { approved: true, by: "ana" });
 */
export async function completeCallback(id: string, payload?: unknown): Promise<void> {
  await settleCallback(
    id,
    (what) => completionOutcome(payload, what),
    (c) => c.completeCallback(id, payload),
  );
}

/**
 * Fails callback `id` with `message`: its `await cb` rejects with a `TaskError` carrying it. Same
 * rules as {@link completeCallback}.
 * @example
 * await failCallback(id, "payment declined");
 */
export async function failCallback(id: string, message: string): Promise<void> {
  await settleCallback(
    id,
    (what) => failureOutcome(message, what),
    (c) => c.failCallback(id, message),
  );
}

async function settleCallback(
  id: string,
  outcomeOf: (what: string) => Outcome,
  viaAws: (c: AloftClient) => Promise<void>,
): Promise<void> {
  if (options.mode === "aws") return viaAws(await awsClient());
  const { run, secret } = parseCallbackId(id);
  const outcome = outcomeOf(`callback ${shownId(run, secret)}`);
  if ((globalThis as Record<symbol, unknown>)[IN_WORKER])
    throw new ConfigurationError(
      "completeCallback/failCallback in a task running on a local worker thread: complete callbacks from " +
        "outside the run (a webhook handler, a script, aloft callback), or run with workers: 0",
    );
  await withinGrace(async () => {
    if (backend) return (await backend).engine.completeCallback(id, outcome);
    // No engine here: write the store (no lock needed); the engine running the run polls it.
    const { completeInStore } = await localModule();
    completeInStore(storePath(), id, outcome, Date.now());
  });
}
