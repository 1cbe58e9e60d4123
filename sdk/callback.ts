/**
 * `createCallback`: a wait that a system outside the run completes — a person pressing "approve",
 * a payment provider's webhook — knowing nothing of the run but the callback's id. The wait is an
 * `aloft:callback` call in the parent's history (sdk/core/durable-waits.ts) and its id a capability
 * (sdk/core/callbacks.ts); completing it: `completeCallback` / `failCallback` (sdk/run.ts),
 * `AloftClient`, `aloft callback`. See docs/callbacks.md.
 */
import { randomBytes } from "node:crypto";
import { z } from "zod";
import { ConfigurationError, UnknownCallbackError } from "./errors.ts";
import { callAsync } from "./core/calls.ts";
import { CALLBACK_DEF } from "./core/durable-waits.ts";
import { SECRET_BYTES, callbackId } from "./core/callbacks.ts";
import { checkOptions, durationSchema, parseDuration } from "./options.ts";
import type { Duration } from "./options.ts";
import { inTask } from "./sleep.ts";
import type { Future } from "./task.ts";
import { trace } from "./trace.ts";

const callbackOptionsSchema = z.strictObject({ timeout: durationSchema.optional() });

export interface CallbackOptions {
  /** Reject with `TaskTimeoutError` if no completion arrives within this time. */
  timeout?: Duration;
}

/** A durable future that a completion settles; `id` is what the task hands out. */
export type Callback<T> = Future<T> & {
  /** `cb.<run>.<secret>`: whoever holds it can complete the callback, once. */
  readonly id: string;
};

/** The secret, minted once: a trace records it, so every replay reads back the same one. */
const mintSecret = trace(function mintSecret(): string {
  return randomBytes(SECRET_BYTES).toString("base64url");
}, "aloft:callback-secret");

/**
 * Inside a task: a durable future that settles with the payload of `completeCallback(cb.id,
 * payload)`, or rejects with a `TaskError` carrying the message of `failCallback(cb.id, message)`
 * (or with `TaskTimeoutError` after `timeout`). The first completion wins; one that arrives before
 * the task awaits is kept. Hand `cb.id` out through a child task or a `trace`.
 * @example
 * const cb = createCallback<{ approved: boolean }>({ timeout: "2h" });
 * await askInChat(`approve? aloft callback ${cb.id} '{"approved":true}'`);
 * const { approved } = await cb;
 */
export function createCallback<T = unknown>(options: CallbackOptions = {}): Callback<T> {
  checkOptions(callbackOptionsSchema, options, "createCallback");
  const timeoutMs =
    options.timeout === undefined ? undefined : parseDuration(options.timeout, "createCallback timeout");
  const scope = inTask("createCallback");
  if (!scope)
    throw new ConfigurationError(
      "createCallback() was called outside any task: a callback is a wait of a task's run; call it in a task body",
    );
  const secret = mintSecret();
  const f = callAsync(scope, CALLBACK_DEF, timeoutMs === undefined ? [secret] : [secret, timeoutMs]);
  return Object.defineProperty(f, "id", {
    value: callbackId(scope.state.runId, secret),
    enumerable: true,
  }) as unknown as Callback<T>;
}

/**
 * How long a completer looks again for a callback its run does not show yet. A task may hand an id
 * out through a `trace` that runs before the step that created the callback is recorded (it is
 * recorded when the body suspends): a completion that quick is held back, not refused.
 */
export const CALLBACK_GRACE_MS = 3000;

/**
 * Runs a completion, again while it fails with an UnknownCallbackError for a run that is running,
 * up to `graceMs`; then the error stands.
 */
export async function withinGrace<T>(
  attempt: () => Promise<T>,
  graceMs = CALLBACK_GRACE_MS,
  pause: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<T> {
  let waited = 0;
  for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
    try {
      return await attempt();
    } catch (e) {
      const running = e instanceof UnknownCallbackError && e.details?.["running"] === true;
      if (!running || waited >= graceMs) throw e;
    }
    await pause(delay);
    waited += delay;
  }
}
