/**
 * Aloft's typed errors. Every error that crosses a process boundary (a worker, a queue, the store)
 * is turned into a {@link SerializedError} and back, keeping its `name`, `code`, message, stack and
 * cause chain, so a parent sees exactly what its child threw.
 */

/** The JSON form of any error recorded in history or sent between processes. */
export interface SerializedError {
  name: string;
  code: string;
  message: string;
  stack?: string;
  /** Task that failed, for {@link TaskError}. */
  task?: string;
  /** Attempts made before giving up, for {@link TaskError}. */
  attempts?: number;
  /** True when the error must not be retried. */
  nonRecoverable?: boolean;
  cause?: SerializedError;
  /** Extra structured detail (e.g. the two calls of a non-determinism). */
  details?: Record<string, unknown>;
}

/** Base of every Aloft error: a stable `code`, a `cause` chain, and a JSON round trip. */
export class AloftError extends Error {
  readonly code: string = "ALOFT_ERROR";
  details?: Record<string, unknown>;

  constructor(message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    if (options?.details) this.details = options.details;
  }

  toJSON(): SerializedError {
    return serializeError(this);
  }
}

/**
 * A child task failed. Carries the child's task name, the original error's name, message and stack,
 * and how many attempts were made.
 * @example
 * try { await risky(1); } catch (e) { if (e instanceof TaskError) console.log(e.task, e.attempts); }
 */
export class TaskError extends AloftError {
  override readonly code: string = "TASK_FAILED";
  /** Name of the error the child threw (e.g. `TypeError`). */
  readonly errorName: string;
  constructor(
    readonly task: string,
    readonly original: SerializedError,
    readonly attempts: number,
  ) {
    super(`task ${task} failed after ${attempts} attempt(s): ${original.name}: ${original.message}`, {
      cause: deserializeError(original),
    });
    this.errorName = original.name;
    if (original.stack) this.stack = `${this.name}: ${this.message}\n  child stack:\n${original.stack}`;
  }
}

/** A task ran past its timeout. Its compute is reclaimed; the parent sees this rejection. */
export class TaskTimeoutError extends AloftError {
  override readonly code: string = "TASK_TIMEOUT";
}

/** The run (or an ancestor) was cancelled before this task finished. */
export class CancelledError extends AloftError {
  override readonly code: string = "CANCELLED";
}

/**
 * On replay, a task body made calls that differ from its recorded history: the body is not
 * deterministic. Move randomness, clocks and I/O into `trace(...)` or a child task.
 */
export class NonDeterminismError extends AloftError {
  override readonly code: string = "NON_DETERMINISM";
}

/**
 * A map with `toleratedFailures` had more failures than it tolerates: its remaining children were
 * cancelled. `details` holds the counts (`total`, `succeeded`, `failed`, `cancelled`, `tolerated`).
 * @example
 * try { for (const r of map(score, ids, { toleratedFailures: "10%" })) use(r); } catch (e) { if (e instanceof MapFailedError) report(e.details); }
 */
export class MapFailedError extends AloftError {
  override readonly code: string = "MAP_FAILED";
}

/** A value cannot be serialised (or deserialised) as a task input or output. */
export class SerializationError extends AloftError {
  override readonly code: string = "SERIALIZATION";
}

/**
 * Thrown by user code to fail a task at once, skipping its remaining retries.
 * @example
 * if (!input.valid) throw new NonRecoverableError("input is malformed; retrying will not help");
 */
export class NonRecoverableError extends AloftError {
  override readonly code: string = "NON_RECOVERABLE";
}

/** A stored history record is unreadable, or written by a newer Aloft. */
export class HistoryError extends AloftError {
  override readonly code: string = "HISTORY";
}

/** Invalid configuration or registration (duplicate task names, unknown tasks, bad options). */
export class ConfigurationError extends AloftError {
  override readonly code: string = "CONFIGURATION";
}

/**
 * A queue message about this action (or its run) failed every delivery and dead-lettered: the
 * action is failed with this, naming the message kind, the action, the receive count and the
 * last error its handler reported (lambdas/dead-letter.ts).
 */
export class DeadLetterError extends AloftError {
  override readonly code: string = "DEAD_LETTER";
}

/**
 * A run made no progress past the liveness bound and nothing could be nudged: it is failed with
 * this, naming the stalled parent and what it waits on (lambdas/reconcile.ts).
 */
export class StalledRunError extends AloftError {
  override readonly code: string = "STALLED";
}

/** The local store is held by another process. */
export class StoreLockedError extends AloftError {
  override readonly code: string = "STORE_LOCKED";
}

/**
 * A signal or a callback completion for a run that has ended (or, for a signal, does not exist):
 * no wait can ever take it.
 */
export class RunEndedError extends AloftError {
  override readonly code: string = "RUN_ENDED";
}

/**
 * A callback id that no callback has: malformed, mistyped, or from a run that never created it
 * (the id is the whole string `cb.id` gave). Also a run that does not exist.
 */
export class UnknownCallbackError extends AloftError {
  override readonly code: string = "UNKNOWN_CALLBACK";
}

/**
 * A completion of a callback that is over: completed or failed before (the first completion
 * wins), timed out, or cancelled with the task that created it.
 */
export class CallbackCompletedError extends AloftError {
  override readonly code: string = "CALLBACK_COMPLETED";
}

/** What `failCallback(id, message)` records: `await cb` rejects with a TaskError caused by it. */
export class CallbackFailedError extends AloftError {
  override readonly code: string = "CALLBACK_FAILED";
}

/** A thrown value that was not an `Error` (e.g. `throw "boom"`), wrapped so it keeps a stack. */
export class NonErrorThrown extends AloftError {
  override readonly code: string = "NON_ERROR_THROWN";
}

const known: Record<string, new (message: string) => AloftError> = {
  AloftError,
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
  NonErrorThrown,
  MapFailedError,
  RunEndedError,
  UnknownCallbackError,
  CallbackCompletedError,
  CallbackFailedError,
};

/** Turns anything thrown into an `Error`; non-Error values are wrapped in {@link NonErrorThrown}. */
export function toError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  let shown: string;
  try {
    shown = typeof thrown === "string" ? JSON.stringify(thrown) : String(thrown);
  } catch {
    shown = Object.prototype.toString.call(thrown);
  }
  return new NonErrorThrown(
    `a task threw a non-Error value (${typeof thrown}: ${shown}); throw an Error so its stack is kept`,
  );
}

export function serializeError(thrown: unknown, depth = 0): SerializedError {
  const e = toError(thrown);
  const out: SerializedError = {
    name: e.name,
    code: e instanceof AloftError ? e.code : "USER_ERROR",
    message: e.message,
  };
  if (e.stack) out.stack = e.stack;
  if (e instanceof TaskError) {
    out.task = e.task;
    out.attempts = e.attempts;
    out.details = { original: e.original };
  } else if (e instanceof AloftError && e.details) out.details = e.details;
  if (e instanceof NonRecoverableError) out.nonRecoverable = true;
  if (e.cause !== undefined && depth < 8) out.cause = serializeError(e.cause, depth + 1);
  return out;
}

/** Rebuilds an error from its JSON form: Aloft's own classes by name, anything else as an `Error`. */
export function deserializeError(s: SerializedError): Error {
  if (s.name === "TaskError" && s.task !== undefined) {
    const original = (s.details?.["original"] as SerializedError | undefined) ?? {
      name: "Error",
      code: "USER_ERROR",
      message: s.message,
    };
    return new TaskError(s.task, original, s.attempts ?? 1);
  }
  const Ctor = known[s.name];
  const e: Error = Ctor ? new Ctor(s.message) : new Error(s.message);
  if (!Ctor) e.name = s.name;
  if (s.stack) e.stack = s.stack;
  if (s.details && e instanceof AloftError) e.details = s.details;
  if (s.cause) (e as { cause?: unknown }).cause = deserializeError(s.cause);
  return e;
}

/** True when an error must not be retried (thrown `NonRecoverableError`, anywhere in its cause chain). */
export function isNonRecoverable(s: SerializedError): boolean {
  for (let c: SerializedError | undefined = s; c; c = c.cause) if (c.nonRecoverable) return true;
  return false;
}
