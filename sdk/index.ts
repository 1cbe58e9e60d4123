/**
 * Aloft: Flyte 2's asynchronous task model in TypeScript.
 * @example
 * import { TaskEnvironment, run } from "aloft";
 * const env = new TaskEnvironment({ name: "demo" });
 * export const square = env.task(async function square(x: number) { return x * x; });
 * const r = await (await run(square, 3)).result(); // 9
 */
import { installCombinators } from "./core/futures.ts";

installCombinators();

export { TaskEnvironment, isTask } from "./task.ts";
export type { Task, TaskOptions, EnvironmentOptions, Duration, Retries } from "./task.ts";
export { map } from "./map.ts";
export type { MapOptions } from "./map.ts";
export { group } from "./group.ts";
export { trace } from "./trace.ts";
export { init, run, getEngine } from "./run.ts";
export { AloftClient } from "./aws/client.ts";
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
  DeadLetterError,
  StalledRunError,
  StoreLockedError,
} from "./errors.ts";
export type { SerializedError } from "./errors.ts";
