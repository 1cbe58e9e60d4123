/**
 * What a replay decides (its calls, traces, and a result, a failure or a suspension), and how the
 * replay yields to the event loop.
 */
import type { SerializedError } from "../errors.ts";
import type { Payload } from "../serde.ts";
import type { CallId, CallRecord, TraceRecord } from "./history.ts";
import type { Wait } from "./wait.ts";

export type Decision = {
  /** Calls made for the first time by this replay, to persist and dispatch. */
  calls: CallRecord[];
  /**
   * Calls this replay cancelled (recorded among its traces): the adapter stops them and their
   * descendants. Some may be among `calls` (made and cancelled before they were ever sent).
   */
  cancels: CallId[];
  /** Trace results recorded for the first time by this replay. */
  traces: TraceRecord[];
  /** Things the user should know (I/O outside trace, calls never awaited). */
  warnings: string[];
  /** Milliseconds the body's first synchronous segment took (with an injected clock; else 0). */
  bodyMs?: number;
} & (
  | { kind: "completed"; value: Payload }
  | { kind: "failed"; error: SerializedError }
  /** Resume when any of `waits` is satisfied. */
  | { kind: "suspended"; waits: Wait[] }
);

/** How the engine yields to the event loop: injected, so tests and adapters control time. */
export interface Scheduler {
  /** Resolves after pending microtasks and one macrotask turn. */
  turn(): Promise<void>;
  sleep(ms: number): Promise<void>;
}

export const defaultScheduler: Scheduler = {
  turn: () => new Promise((r) => setImmediate(r)),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

/**
 * The embedded engine's: every replay waiting for a turn now shares one immediate, not one each (a
 * gather's children each wait a turn, 256 at a time on the engine's thread). Each still waits from
 * its call to the next check phase, as with an immediate of its own; a turn asked for while the
 * shared one is being delivered is the next one. The Lambda handlers keep an immediate per replay.
 */
let nextTurn: Promise<void> | undefined;

function endTurn(resolve: () => void): void {
  nextTurn = undefined;
  resolve();
}

export const sharedTurnScheduler: Scheduler = {
  turn: () => (nextTurn ??= new Promise<void>((r) => setImmediate(endTurn, r))),
  sleep: defaultScheduler.sleep,
};
