/**
 * `init` and `run`: start a task as a run and follow it. Local mode (the default) runs on the
 * embedded engine in this process, with state in `.aloft/aloft.db` (or in memory).
 */
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import { ConfigurationError } from "./errors.ts";
import { checkOptions, initOptionsSchema } from "./options.ts";
import type { SerializedError } from "./errors.ts";
import { serializeArgs } from "./core/calls.ts";
import { Engine } from "./local/engine.ts";
import { IN_WORKER } from "./local/in-worker.ts";
import { StoreLock } from "./local/lock.ts";
import { runStatus } from "./local/status.ts";
import { Store } from "./local/store.ts";
import { listTasks } from "./registry.ts";
import { runResult } from "./result.ts";
import type { Task } from "./task.ts";
import type { AloftClient, AloftClientConfig } from "./aws/client.ts";
import { isTask } from "./task.ts";
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

interface LocalBackend {
  engine: Engine;
  store: Store;
  lock: StoreLock | undefined;
  active: number;
  keepAlive: NodeJS.Timeout | undefined;
}

let options: InitOptions = {};
let backend: Promise<LocalBackend> | undefined;

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

/** Stops the local engine (workers, store lock). Runs still in progress can be resumed later. */
export async function shutdown(): Promise<void> {
  const b = backend;
  backend = undefined;
  if (!b) return;
  const x = await b.catch(() => undefined);
  if (!x) return;
  clearInterval(x.keepAlive);
  await x.engine.close();
  x.store.close();
  x.lock?.release();
}

function openBackend(): Promise<LocalBackend> {
  backend ??= (async () => {
    const path = options.store === ":memory:" ? ":memory:" : resolve(options.store ?? ".aloft/aloft.db");
    const lock = path === ":memory:" ? undefined : StoreLock.acquire(path);
    try {
      const store = new Store(path);
      const modules = [...new Set(listTasks().flatMap((t) => (t.module ? [t.module] : [])))];
      const engine = new Engine({ store, workers: options.workers ?? availableParallelism(), modules });
      await engine.started();
      return { engine, store, lock, active: 0, keepAlive: undefined };
    } catch (e) {
      lock?.release();
      throw e;
    }
  })();
  backend.catch(() => (backend = undefined));
  return backend;
}

/** The local engine (created on first use): for the CLI and tests. */
export async function getEngine(): Promise<Engine> {
  return (await openBackend()).engine;
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

function makeRun<R>(b: LocalBackend, id: string): Run<R> {
  const run: Run<R> = {
    id,
    async result() {
      return resultOf<R>(await b.engine.waitRun(id));
    },
    async status() {
      return runStatus(b.store, b.store.getRun(id)!);
    },
    async *watch(intervalMs = 500) {
      for (;;) {
        const s = await run.status();
        yield s;
        if (s.state !== "RUNNING") return;
        await Promise.race([new Promise((r) => setTimeout(r, intervalMs)), b.engine.waitRun(id)]);
      }
    },
    async cancel() {
      b.engine.cancelRun(id);
      await b.engine.waitRun(id);
    },
    progress() {
      return b.engine.progressOf(id);
    },
  };
  return run;
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
  if ((globalThis as Record<symbol, unknown>)[IN_WORKER]) {
    // A worker imports the user's module to find its tasks; its top-level run() stops here.
    throw Object.assign(new Error("run() is not available inside an Aloft worker"), { aloftInWorker: true });
  }
  if (!isTask(task)) throw new ConfigurationError("run() needs a task registered with env.task");
  if (options.mode === "aws")
    return (await awsClient()).run(task, ...args) as unknown as Run<Awaited<ReturnType<F>>>;
  const payload = serializeArgs(task.def.name, args);
  const b = await openBackend();
  const id = b.engine.startRun(task.def, payload);
  keepAliveUntilEnded(b, id);
  return makeRun(b, id);
}

/** Keeps the process alive while runs are in progress (workers and timers are unref'd). */
function keepAliveUntilEnded(b: LocalBackend, id: string): void {
  if (b.active++ === 0) b.keepAlive = setInterval(() => undefined, 1 << 30);
  void b.engine.waitRun(id).then(() => {
    if (--b.active === 0) clearInterval(b.keepAlive);
  });
}

/** Resumes a stored run after a crash (`aloft resume`). */
export async function resume(runId: string): Promise<Run> {
  const b = await openBackend();
  const row = b.store.getRun(runId);
  if (!row) throw new ConfigurationError(`no run ${runId} in ${b.store.path}; see aloft runs`);
  if (row.status === "RUNNING") {
    b.engine.resumeRun(runId);
    keepAliveUntilEnded(b, runId);
  }
  return makeRun(b, runId);
}
