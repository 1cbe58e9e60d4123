/**
 * The local halves of `aloft run`, `resume` and `recover`: the embedded engine's modules, loaded
 * by main.ts only for these commands. They load before the task module, so that once tsx is
 * registered for it (load-module.ts) they do not go through its hooks.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { init, openLocalFor, recover, resume, run, shutdown } from "../run.ts";
import type { InitOptions } from "../run.ts";
import { checkRecoverable } from "../core/recover.ts";
import { Store } from "../local/store.ts";
import type { RunRow } from "../local/store.ts";
import type { Task } from "../task.ts";
import { loadModule } from "./load-module.ts";
import { fail, follow } from "./output.ts";
import "../local/backend.ts";

export function openRead(storePath: string): Store {
  const abs = resolve(storePath);
  if (!existsSync(abs)) fail(`no store at ${abs}: no run has been made here yet (aloft run ...)`);
  return new Store(abs);
}

export function findRun(store: Store, id: string): RunRow {
  const exact = store.getRun(id);
  if (exact) return exact;
  const found = store.findRuns(id);
  if (found.length === 1) return found[0]!;
  if (found.length > 1) fail(`run id ${id} is ambiguous: ${found.map((r) => r.id).join(", ")}`);
  return fail(`no run ${id} in ${store.path}; list runs with: aloft runs`);
}

/** A run's row, read from the store and the store closed again (the engine opens it next). */
function readRun(storePath: string, id: string): RunRow {
  const s = openRead(storePath);
  try {
    return findRun(s, id);
  } finally {
    s.close();
  }
}

const workersOf = (o: { workers?: string }): { workers?: number } =>
  o.workers ? { workers: Number(o.workers) } : {};

/** `aloft run`'s start: the engine opens while the task module loads. */
export async function startRun(
  store: string,
  module: string,
  o: { workers?: string; memory?: boolean },
): Promise<void> {
  await loadWithEngine(module, { store: o.memory ? ":memory:" : store, ...workersOf(o) });
}

/**
 * Loads the task module with the engine starting beside it: the workers load the module while
 * this thread does, rather than after (sdk/run.ts openLocalFor).
 */
async function loadWithEngine(module: string, opts: InitOptions): Promise<void> {
  await init(opts);
  if (existsSync(resolve(module))) openLocalFor([resolve(module)]);
  await loadModule(module);
}

/** `aloft run`: the task module and the engine are loaded by then (main.ts, startRun). */
export async function runLocal(
  task: Task<(...a: unknown[]) => unknown>,
  args: unknown[],
  o: { json?: boolean },
): Promise<void> {
  const r = await run(task, ...args);
  if (!o.json) process.stderr.write(`run ${r.id} (${task.taskName})\n`);
  process.exitCode = await follow(r, Boolean(o.json));
  await shutdown();
}

export async function resumeLocal(storePath: string, id: string, o: { workers?: string }): Promise<void> {
  const row = readRun(storePath, id);
  if (row.module) await loadWithEngine(row.module, { store: storePath, ...workersOf(o) });
  else await init({ store: storePath, ...workersOf(o) });
  const r = await resume(row.id);
  process.stderr.write(`resuming run ${r.id} (${row.task})\n`);
  process.exitCode = await follow(r, false);
  await shutdown();
}

export async function recoverLocal(
  storePath: string,
  id: string,
  o: { workers?: string; json?: boolean },
): Promise<void> {
  const row = readRun(storePath, id);
  checkRecoverable(row);
  if (row.module) await loadWithEngine(row.module, { store: storePath, ...workersOf(o) });
  else await init({ store: storePath, ...workersOf(o) });
  const r = await recover(row.id);
  process.stderr.write(`run ${r.id} (${row.task}) recovers ${row.id}\n`);
  process.exitCode = await follow(r, Boolean(o.json));
  await shutdown();
}
