/**
 * `sleep` and `waitForSignal`: what a task body waits on besides its children — time, and a signal
 * sent to its run from outside (`run.signal`, `client.signal`, `aloft signal`). Both are durable:
 * the wait is a call in the parent's history (sdk/core/durable-waits.ts), the parent suspends
 * without holding a worker or a Lambda, and a replay of a fired timer or a received signal returns
 * at once. See docs/sleep-signals.md.
 */
import { ConfigurationError } from "./errors.ts";
import { callAsync } from "./core/calls.ts";
import { SIGNAL_DEF, SLEEP_DEF, checkSignalName } from "./core/durable-waits.ts";
import { currentScope } from "./core/state.ts";
import type { Scope } from "./core/state.ts";
import { checkOptions, durationSchema, parseDuration } from "./options.ts";
import type { Duration } from "./options.ts";
import type { Future } from "./task.ts";
import { z } from "zod";

const waitOptionsSchema = z.strictObject({ timeout: durationSchema.optional() });

export interface WaitForSignalOptions {
  /** Reject with `TaskTimeoutError` if no signal of that name arrives within this time. */
  timeout?: Duration;
}

/** The calling task's scope (undefined outside any task); refused inside a function `map` binds. */
export function inTask(what: string): Scope | undefined {
  const scope = currentScope();
  if (scope?.capture)
    throw new ConfigurationError(
      `${what} was called in a function map binds: that function must call exactly one task; sleep or wait in the task it calls`,
    );
  return scope;
}

/**
 * A durable timer: inside a task, a future that settles once `duration` has passed. The task
 * suspends without holding compute and resumes after the time (late, never early); a replay of a
 * fired timer returns at once. Outside any task, a plain timer.
 * @example
 * const first = await Promise.race([fetchQuote(symbol), sleep("10s").then(() => "timed out")]);
 */
export function sleep(duration: Duration): Future<void> {
  const ms = duration === 0 ? 0 : parseDuration(duration, "sleep");
  const scope = inTask("sleep");
  if (!scope) return Object.assign(new Promise<void>((r) => setTimeout(r, ms)), { cancel: () => {} });
  return callAsync(scope, SLEEP_DEF, [ms]) as unknown as Future<void>;
}

/**
 * Inside a task: the payload of the next signal named `name` sent to this run (`run.signal(name,
 * payload)`, `client.signal(runId, name, payload)`, `aloft signal <run> <name> [json]`). Signals are
 * kept until consumed, taken in the order sent, each by exactly one wait. With `timeout`, rejects
 * with `TaskTimeoutError` when none arrives in time.
 * @example
 * const { approved } = await waitForSignal<{ approved: boolean }>("approve", { timeout: "2h" });
 */
export function waitForSignal<T = unknown>(name: string, options: WaitForSignalOptions = {}): Future<T> {
  checkSignalName(name, "waitForSignal");
  checkOptions(waitOptionsSchema, options, "waitForSignal");
  const timeoutMs =
    options.timeout === undefined ? undefined : parseDuration(options.timeout, "waitForSignal timeout");
  const scope = inTask("waitForSignal");
  if (!scope)
    throw new ConfigurationError(
      `waitForSignal(${JSON.stringify(name)}) was called outside any task: signals are sent to a run; call it in a task body`,
    );
  const args = timeoutMs === undefined ? [name] : [name, timeoutMs];
  return callAsync(scope, SIGNAL_DEF, args) as unknown as Future<T>;
}
