/**
 * The local halves of the commands that read or write a run in the store without running it:
 * status, runs, cancel, signal, callback, watch, logs, result. Loaded by main.ts only for these.
 */
import { resolve } from "node:path";
import { getEngine, init, resultOf, shutdown } from "../run.ts";
import type { AloftError } from "../errors.ts";
import { StoreLock } from "../local/lock.ts";
import type { RunRow } from "../local/store.ts";
import { runStatus } from "../local/status.ts";
import { WaitStore } from "../local/wait-store.ts";
import { shownId } from "../core/durable-waits.ts";
import { completionOutcome, failureOutcome, parseCallbackId } from "../core/callbacks.ts";
import { completeInStore } from "../local/complete-callback.ts";
import { withinGrace } from "../callback.ts";
import { serialize } from "../serde.ts";
import { renderStatus, renderRuns } from "./render.ts";
import { LOG_PAGE, formatLog, localLogs, resolveAction } from "./logs.ts";
import { fail, jsonReplacer, printError } from "./output.ts";
import { findRun, openRead } from "./local-runs.ts";

export function status(storePath: string, id: string, json: boolean): void {
  const store = openRead(storePath);
  const s = runStatus(store, findRun(store, id));
  process.stdout.write(json ? `${JSON.stringify(s, null, 2)}\n` : renderStatus(s));
  store.close();
}

export function runs(storePath: string, limit: number): void {
  const store = openRead(storePath);
  // A RUNNING run whose store no process holds will not progress until it is resumed.
  const held = StoreLock.holder(store.path) !== undefined;
  const note = (r: RunRow): string =>
    r.status === "RUNNING" && !held ? `  (its process stopped: aloft resume ${r.id})` : "";
  process.stdout.write(renderRuns(store.listRuns(limit), note));
  store.close();
}

export async function cancel(storePath: string, id: string): Promise<void> {
  const store = openRead(storePath);
  const row = findRun(store, id);
  if (row.status !== "RUNNING") {
    process.stdout.write(`run ${row.id} already ended ${row.status}\n`);
    store.close();
    return;
  }
  store.requestCancel(row.id);
  store.close();
  // If no engine holds the store, nobody will see the request: cancel it here.
  try {
    await init({ store: storePath, workers: 0 });
    const engine = await getEngine();
    engine.resumeRun(row.id, false);
    engine.cancelRun(row.id, "cancelled by aloft cancel");
    await engine.waitRun(row.id);
    await shutdown();
  } catch (e) {
    if ((e as AloftError).code !== "STORE_LOCKED") throw e;
    // The engine running it polls for the request and stops every descendant.
  }
  const deadline = Date.now() + 5000;
  for (;;) {
    const s = openRead(storePath);
    const now = s.getRun(row.id)!;
    s.close();
    if (now.status !== "RUNNING") {
      process.stdout.write(`run ${row.id} ${now.status}\n`);
      return;
    }
    if (Date.now() > deadline)
      fail(`cancel requested for ${row.id}; the engine running it has not confirmed yet`, 1);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function signal(storePath: string, id: string, name: string, payload: unknown): void {
  const store = openRead(storePath);
  try {
    const row = findRun(store, id);
    // A running engine polls the store for signals, as for cancels; else `aloft resume` finds it.
    new WaitStore(store.db).send(row.id, name, serialize(payload, `payload of signal ${name}`), Date.now());
    const held = StoreLock.holder(store.path) !== undefined;
    process.stdout.write(
      `signal ${JSON.stringify(name)} sent to run ${row.id}` +
        (held ? "\n" : ` (its process stopped: it is delivered when you run aloft resume ${row.id})\n`),
    );
  } finally {
    store.close();
  }
}

export async function callback(
  storePath: string,
  id: string,
  payload: unknown,
  failure: string | undefined,
): Promise<void> {
  const { run, secret } = parseCallbackId(id);
  const outcome =
    failure === undefined
      ? completionOutcome(payload, `callback ${shownId(run, secret)}`)
      : failureOutcome(failure, `callback ${shownId(run, secret)}`);
  const path = resolve(storePath);
  // The engine running the run polls the store for completions, as for signals.
  await withinGrace(async () => completeInStore(path, id, outcome, Date.now()));
}

export async function watch(storePath: string, id: string, intervalMs: number): Promise<void> {
  for (;;) {
    const store = openRead(storePath);
    const s = runStatus(store, findRun(store, id));
    store.close();
    if (process.stdout.isTTY) process.stdout.write("\x1b[2J\x1b[H");
    process.stdout.write(renderStatus(s));
    if (s.state !== "RUNNING") return;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export async function logs(
  storePath: string,
  id: string,
  action: string | undefined,
  follow: boolean,
  write: (s: string) => void,
): Promise<void> {
  let last = 0;
  for (;;) {
    const store = openRead(storePath);
    const row = findRun(store, id);
    const only = action ? resolveAction(store, row.id, action) : undefined;
    const page = localLogs(store, row.id, only, last);
    store.close();
    for (const e of page.entries) write(formatLog(e));
    last = page.last;
    // A full page: there is more already; a run still going: more may come.
    if (page.entries.length >= LOG_PAGE) continue;
    if (!follow || row.status !== "RUNNING") return;
    await new Promise((r) => setTimeout(r, 500));
  }
}

export function result(storePath: string, id: string): void {
  const store = openRead(storePath);
  const row = findRun(store, id);
  store.close();
  if (row.status === "RUNNING") return fail(`run ${row.id} is still running`, 1);
  try {
    process.stdout.write(`${JSON.stringify(resultOf(row), jsonReplacer, 2)}\n`);
  } catch (e) {
    printError(e);
    process.exitCode = 1;
  }
}
