/**
 * Callback ids and what a completion records (docs/callbacks.md). A callback is an `aloft:callback`
 * call (durable-waits.ts) whose first argument is a secret of SECRET_BYTES random bytes, minted once
 * by a trace (so it is in the parent's history and a replay reads it back, never mints another).
 * Its id, `cb.<run>.<secret>`, names its run (where a completer looks) and is a capability: whoever
 * holds it may complete the wait, and nobody can guess it.
 */
import { CallbackFailedError, SerializationError, UnknownCallbackError, serializeError } from "../errors.ts";
import { serialize } from "../serde.ts";
import type { Outcome } from "./history.ts";
import { CALLBACK_TASK, shownSecret } from "./durable-waits.ts";

/** Random bytes of a secret: 192 bits, of which status shows 36. */
export const SECRET_BYTES = 24;
/** Largest completion payload, serialised (Step Functions' task-token output limit, 256 KiB). */
export const CALLBACK_PAYLOAD_BYTES = 256 * 1024;
/** Longest failure message (Step Functions' `cause` limit). */
export const CALLBACK_MESSAGE_CHARS = 32_768;

const SECRET = /^[A-Za-z0-9_-]{32}$/;

export function callbackId(run: string, secret: string): string {
  return `cb.${run}.${secret}`;
}

/** The run and secret an id names; a string that is no callback id is an UnknownCallbackError. */
export function parseCallbackId(id: unknown): { run: string; secret: string } {
  const s = typeof id === "string" ? id : "";
  const dot = s.lastIndexOf(".");
  const run = s.slice(3, dot);
  const secret = s.slice(dot + 1);
  if (!s.startsWith("cb.") || dot < 4 || !SECRET.test(secret) || /[\s.]/.test(run))
    throw new UnknownCallbackError(
      `${JSON.stringify(typeof id === "string" ? shown(id) : id)} is not a callback id: pass the whole ` +
        `string a task's createCallback() gave as cb.id (cb.<run>.<32 characters>)`,
    );
  return { run, secret };
}

function shown(s: string): string {
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

/** What `completeCallback(id, payload)` records: the payload, within CALLBACK_PAYLOAD_BYTES. */
export function completionOutcome(payload: unknown, what: string): Outcome & { ok: true } {
  const value = serialize(payload, `payload of ${what}`);
  const bytes = Buffer.byteLength(value);
  if (bytes > CALLBACK_PAYLOAD_BYTES)
    throw new SerializationError(
      `payload of ${what} is ${bytes} bytes serialised; a callback carries at most ${CALLBACK_PAYLOAD_BYTES}: ` +
        `store a large result elsewhere (S3, a database) and complete the callback with its key`,
    );
  return { ok: true, value };
}

/** What `failCallback(id, message)` records: a CallbackFailedError, which `await cb` sees in a TaskError. */
export function failureOutcome(message: unknown, what: string): Outcome & { ok: false } {
  if (typeof message !== "string" || message.length > CALLBACK_MESSAGE_CHARS)
    throw new SerializationError(
      `failure message of ${what}: a string of at most ${CALLBACK_MESSAGE_CHARS} characters, got ` +
        (typeof message === "string" ? `${message.length} characters` : typeof message),
    );
  const e = serializeError(new CallbackFailedError(message));
  delete e.stack; // the completer's stack says nothing about the run
  return { ok: false, error: e };
}

/** Why a callback takes no completion (how it ended, and when), for CallbackCompletedError. */
export function endedText(state: string | null | undefined, at: number | undefined, id: string): string {
  const when = at === undefined ? "" : ` at ${new Date(at).toISOString()}`;
  switch (state) {
    case "SUCCEEDED":
      return `callback ${id} was already completed${when}: the first completion wins`;
    case "FAILED":
      return `callback ${id} was already failed${when}: the first completion wins`;
    case "TIMED_OUT":
      return `callback ${id} timed out${when}: its task no longer waits for it`;
    default:
      return `callback ${id} was cancelled${when}: the task that created it stopped waiting for it`;
  }
}

/**
 * A call's arguments as a viewer shows them: a callback's secret cut to its shown prefix (the
 * table or store holds it; a page that shows an action need not).
 */
export function shownArgs(task: string, args: string): string {
  if (task !== CALLBACK_TASK) return args;
  return args.replace(/"([A-Za-z0-9_-]{32})"/, (_m, s: string) => JSON.stringify(shownSecret(s)));
}
