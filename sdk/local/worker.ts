/**
 * A worker thread of the embedded engine: imports the user's task modules, runs the replays it is
 * sent (many at once: async bodies interleave, CPU-bound ones take turns), and posts decisions
 * back in batches.
 */
import { parentPort, workerData } from "node:worker_threads";
import { pathToFileURL } from "node:url";
import { serializeError } from "../errors.ts";
import { LogBuffer, execute, failedDecision } from "./run-body.ts";
import type { Decision } from "../core/replay.ts";
import type { ExecItem, LogBatch } from "./run-body.ts";
import { IN_WORKER } from "./in-worker.ts";

export type ToWorker = { type: "exec"; items: ExecItem[] };
export type FromWorker =
  | { type: "ready"; error?: string }
  | { type: "decisions"; results: [actionId: string, token: number, decision: Decision][] }
  /** Bodies whose synchronous segment has run, how long it took (their decisions leave it out). */
  | { type: "measured"; bodies: [task: string, ms: number][] }
  | { type: "logs"; batch: LogBatch[] };

const port = parentPort!;
const logs = new LogBuffer((batch) => port.postMessage({ type: "logs", batch } satisfies FromWorker));
(globalThis as Record<symbol, unknown>)[IN_WORKER] = true;

let out: [string, number, Decision][] = [];
let measured: [string, number][] = [];
let flushing = false;
function post(id: string, token: number, d: Decision): void {
  out.push([id, token, d]);
  flushSoon();
}

/**
 * A body's synchronous segment has run: the engine learns how long it took now, not when the body
 * ends (an async body awaiting I/O may take minutes), and places its task by it (placement.ts).
 */
function measure(task: string, ms: number): void {
  measured.push([task, ms]);
  flushSoon();
}

function flushSoon(): void {
  if (flushing) return;
  flushing = true;
  setImmediate(() => {
    flushing = false;
    if (measured.length) {
      port.postMessage({ type: "measured", bodies: measured } satisfies FromWorker);
      measured = [];
    }
    if (!out.length) return;
    const batch = out;
    out = [];
    logs.flush(); // an action's lines reach the engine before its decision
    port.postMessage({ type: "decisions", results: batch } satisfies FromWorker);
  });
}

async function load(): Promise<void> {
  for (const m of (workerData as { modules: string[] }).modules) {
    try {
      await import(pathToFileURL(m).href);
    } catch (e) {
      // A module that calls run() at top level stops there in a worker; its tasks are registered.
      if ((e as { aloftInWorker?: boolean }).aloftInWorker) continue;
      throw e;
    }
  }
}

const loaded = load();
loaded.then(
  () => port.postMessage({ type: "ready" } satisfies FromWorker),
  (e: unknown) =>
    port.postMessage({ type: "ready", error: String((e as Error)?.stack ?? e) } satisfies FromWorker),
);

port.on("message", (msg: ToWorker) => {
  for (const item of msg.items) {
    // Items can arrive while the modules are still loading (a freshly respawned worker).
    loaded
      .then(() => {
        // execute returns once the body's synchronous segment has run.
        const t0 = performance.now();
        const decided = execute(item, logs);
        measure(item.task, performance.now() - t0);
        return decided;
      })
      .then(
        (d) => {
          d.bodyMs = undefined; // measured already
          post(item.actionId, item.token, d);
        },
        (e: unknown) => post(item.actionId, item.token, failedDecision(serializeError(e))),
      );
  }
});
