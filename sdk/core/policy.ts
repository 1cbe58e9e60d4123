/**
 * The orchestration policy: what happens when an attempt fails or overruns, what an ending action
 * does to its descendants, and when a result comes from the cache. Pure functions, shared by the
 * embedded engine (sdk/local) and the AWS handlers (lambdas/): the adapters only carry them out.
 */
import { CancelledError, TaskTimeoutError, isNonRecoverable, serializeError } from "../errors.ts";
import type { SerializedError } from "../errors.ts";
import type { RetryPolicy, TaskDef } from "./task-def.ts";
import { NOT_RETRIED, cacheKey, retryDelayMs } from "./task-def.ts";

/** What an adapter does after an attempt failed or ran past its timeout. */
export type AfterFailure =
  | { kind: "retry"; /** The next attempt's number. */ attempt: number; delayMs: number }
  | { kind: "end"; status: "FAILED" | "TIMED_OUT"; error: SerializedError };

export interface FailedAttempt {
  /** The task's retry policy; undefined when the task is no longer registered (never retried). */
  retries: RetryPolicy | undefined;
  /** The attempt that failed, 1-based. */
  attempt: number;
  /** What it failed with (for a timeout: the TaskTimeoutError, see timedOut). */
  error: SerializedError;
  /** It ran past its timeout rather than throwing. */
  timedOut: boolean;
  /**
   * It made child calls (recorded a suspension). Such an action is not retried: its children had
   * their own retries, and a replay of the same history fails the same way (no retry storms).
   */
  hasChildren: boolean;
  random?: () => number;
}

/** Whether an error may be mended by running the attempt again: not marked non-recoverable, not a code that never is. */
export function isRetryable(error: SerializedError): boolean {
  return !isNonRecoverable(error) && !NOT_RETRIED.has(error.code);
}

/**
 * The rule for a failed attempt: retried after its backoff while attempts remain, when the error
 * is retryable (a timeout always is) and the action never made child calls; else its final outcome,
 * with the number of attempts made.
 */
export function afterFailure(f: FailedAttempt): AfterFailure {
  const retryable = f.timedOut || isRetryable(f.error);
  if (f.retries && retryable && !f.hasChildren && f.attempt <= f.retries.count) {
    return { kind: "retry", attempt: f.attempt + 1, delayMs: retryDelayMs(f.retries, f.attempt, f.random) };
  }
  return {
    kind: "end",
    status: f.timedOut ? "TIMED_OUT" : "FAILED",
    error: { ...f.error, attempts: f.attempt },
  };
}

/** The error an attempt that ran past its timeout ends with. */
export function timeoutError(task: string, timeoutMs: number, attempt?: number): SerializedError {
  const which = attempt === undefined ? "" : ` (attempt ${attempt})`;
  return serializeError(new TaskTimeoutError(`task ${task} timed out after ${timeoutMs} ms${which}`));
}

/**
 * Whether a finished body ran past its timeout, measured from when the attempt began. Such an
 * attempt is not recorded as ended by its body: it is timed out (or retried) as if it had died.
 */
export function overran(timeoutMs: number | undefined, begunAt: number, now: number): boolean {
  return timeoutMs !== undefined && now - begunAt > timeoutMs;
}

/**
 * Why the unsettled descendants of an action that ended are cancelled: every child (at any depth)
 * still queued, running or waiting ends CANCELLED with this reason; children that finished keep
 * their outcome.
 */
export function descendantsReason(task: string, status: string): string {
  return status === "TIMED_OUT" ? `its parent ${task} timed out` : `its parent ${task} ended ${status}`;
}

/** The outcome a cancelled action records. */
export function cancelledError(reason: string): SerializedError {
  return serializeError(new CancelledError(`cancelled: ${reason}`));
}

/**
 * The cache key under which `def`'s result for `args` is reused, or undefined when the task is not
 * cached. Only a first execution reads it (a resumed parent continues its own history), and only a
 * success is written.
 */
export function cacheLookup(def: TaskDef, args: string): string | undefined {
  return def.cacheVersion === false ? undefined : cacheKey(def, args);
}
