/**
 * Aloft: Flyte 2's asynchronous task model in TypeScript.
 * @example
 * import { TaskEnvironment, run } from "aloft";
 * const env = new TaskEnvironment({ name: "demo" });
 * export const square = env.task(async function square(x: number) { return x * x; });
 * const r = await (await run(square, 3)).result(); // 9
 */
// Importing this module has no side effects: the Promise combinator patch is installed by the
// first replay of a task body, the embedded engine (SQLite, workers) loads on the first local
// run, and the AWS client lives in "aloft/client".
export { TaskEnvironment, isTask } from "./task.ts";
export type {
  Task,
  TaskOptions,
  EnvironmentOptions,
  Duration,
  Retries,
  Future,
  OverrideOptions,
} from "./task.ts";
export { map } from "./map.ts";
export type { MapOptions } from "./map.ts";
export { group } from "./group.ts";
export { trace } from "./trace.ts";
export { sleep, waitForSignal } from "./sleep.ts";
export type { WaitForSignalOptions } from "./sleep.ts";
export { init, run, recover, shutdown, getEngine } from "./run.ts";
export type { InitOptions } from "./run.ts";
export type { Run, RunStatus, RunState, ActionNode, GroupProgress } from "./run-handle.ts";
export {
  AloftError,
  TaskError,
  TaskTimeoutError,
  CancelledError,
  NonDeterminismError,
  SerializationError,
  NonRecoverableError,
  HistoryError,
  ConfigurationError,
  MapFailedError,
  DeadLetterError,
  StalledRunError,
  StoreLockedError,
  RunEndedError,
} from "./errors.ts";
export type { SerializedError } from "./errors.ts";
