/**
 * Durable timers (`sleep`) and signal waits (`waitForSignal`) as the replay core sees them: calls of
 * two built-in tasks that no body runs. Each is a child call like any other — identity, history,
 * delivery order, combinators (`Promise.race([child(x), sleep("10s")])`), cancel and suspension all
 * follow from that — and the adapter, instead of running a body, completes it:
 *
 * - `aloft:sleep(ms)` succeeds (with `undefined`) once `ms` have passed since the call was first
 *   dispatched; the adapter records when it fires with the call, so a restart fires it late, never
 *   early.
 * - `aloft:signal(name, timeoutMs?)` succeeds with the payload of the next unconsumed signal of that
 *   name sent to the run (each signal consumed by exactly one wait; several waits of one name take
 *   signals in the order they were recorded), or fails with `TaskTimeoutError` after `timeoutMs`.
 *
 * - `aloft:callback(secret, timeoutMs?)` succeeds with the payload of `completeCallback(id, payload)`
 *   or fails with what `failCallback(id, message)` gave, whichever comes first; or fails with
 *   `TaskTimeoutError` after `timeoutMs` (sdk/core/callbacks.ts: the id and its secret).
 *
 * So a fired timer or a received signal is an outcome in the parent's history, and a replay returns
 * it at once. The names are reserved: `env.task` refuses any name starting with `aloft:`.
 */
import { ConfigurationError, TaskTimeoutError, serializeError } from "../errors.ts";
import { deserialize, serialize } from "../serde.ts";
import type { Payload } from "../serde.ts";
import { TERMINAL } from "./history.ts";
import type { Outcome } from "./history.ts";
import type { TaskDef } from "./task-def.ts";

/** Prefix of built-in task names; `env.task` refuses it. */
export const BUILTIN_PREFIX = "aloft:";
export const SLEEP_TASK = `${BUILTIN_PREFIX}sleep`;
export const SIGNAL_TASK = `${BUILTIN_PREFIX}signal`;
export const CALLBACK_TASK = `${BUILTIN_PREFIX}callback`;

/** What a built-in call asks its adapter for. */
export type DurableWait =
  | { kind: "timer"; ms: number }
  | { kind: "signal"; name: string; timeoutMs?: number }
  | { kind: "callback"; secret: string; timeoutMs?: number };

function builtinDef(name: string): TaskDef {
  return {
    name,
    env: "aloft",
    fn: () => {
      throw new Error(`${name} is completed by the engine, never run`);
    },
    isAsync: true,
    retries: { count: 0, backoff: { baseMs: 0, factor: 1, capMs: 0 } },
    timeoutMs: undefined,
    cacheVersion: false,
    module: undefined,
  };
}

export const SLEEP_DEF = builtinDef(SLEEP_TASK);
export const SIGNAL_DEF = builtinDef(SIGNAL_TASK);
export const CALLBACK_DEF = builtinDef(CALLBACK_TASK);

export function isBuiltin(task: string): boolean {
  return task.startsWith(BUILTIN_PREFIX);
}

/** The durable wait a call of `task` with serialised `args` asks for (undefined: a user task). */
export function durableWaitOf(task: string, args: Payload): DurableWait | undefined {
  if (task === SLEEP_TASK) {
    const [ms] = deserialize(args) as [number];
    return { kind: "timer", ms };
  }
  if (task === SIGNAL_TASK) {
    const [name, timeoutMs] = deserialize(args) as [string, number | undefined];
    return timeoutMs === undefined ? { kind: "signal", name } : { kind: "signal", name, timeoutMs };
  }
  if (task === CALLBACK_TASK) {
    const [secret, timeoutMs] = deserialize(args) as [string, number | undefined];
    return timeoutMs === undefined ? { kind: "callback", secret } : { kind: "callback", secret, timeoutMs };
  }
  return undefined;
}

/** When a durable wait dispatched at `dispatchedAt` stops waiting: a timer fires, a signal wait times out. */
export function dueAt(w: DurableWait, dispatchedAt: number): number | undefined {
  if (w.kind === "timer") return dispatchedAt + w.ms;
  return w.timeoutMs === undefined ? undefined : dispatchedAt + w.timeoutMs;
}

/** The outcome of a wait that reached its due time: a fired timer, or a signal or callback wait's timeout. */
export function dueOutcome(w: DurableWait): Outcome {
  if (w.kind === "timer") return { ok: true, value: serialize(undefined) };
  const what =
    w.kind === "signal"
      ? `no signal ${JSON.stringify(w.name)} arrived`
      : `callback ${shownSecret(w.secret)} was not completed`;
  return { ok: false, error: serializeError(new TaskTimeoutError(`${what} within ${w.timeoutMs} ms`)) };
}

/** Characters of a callback's secret that status and messages show (the rest stays unguessable). */
const SHOWN_SECRET = 6;

/** A callback's secret as messages show it: its first characters. */
export function shownSecret(secret: string): string {
  return `${secret.slice(0, SHOWN_SECRET)}…`;
}

/** A callback's id as messages show it: its run and the first characters of its secret. */
export function shownId(run: string, secret: string): string {
  return `cb.${run}.${shownSecret(secret)}`;
}

/** The terminal status of a wait that reached its due time. */
export function dueStatus(w: DurableWait): "SUCCEEDED" | "TIMED_OUT" {
  return w.kind === "timer" ? "SUCCEEDED" : "TIMED_OUT";
}

/** What a wait shows in a status tree: `sleep 90s`, `waitForSignal "approve"`. */
export function describeWait(w: DurableWait): string {
  if (w.kind === "timer") return `sleep ${formatMs(w.ms)}`;
  return w.kind === "signal" ? `waitForSignal ${JSON.stringify(w.name)}` : "createCallback";
}

function formatMs(ms: number): string {
  for (const [unit, n] of [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1000],
  ] as const)
    if (ms >= n && ms % n === 0) return `${ms / n}${unit}`;
  return `${ms}ms`;
}

/** Signal names: what `waitForSignal` and every sender accept. */
export function checkSignalName(name: unknown, what: string): string {
  if (typeof name !== "string" || name.length < 1 || name.length > 256 || /[\u0000-\u001f]/.test(name))
    throw new ConfigurationError(
      `${what}: a signal name is a string of 1 to 256 characters with no control characters, got ${JSON.stringify(name)}`,
    );
  return name;
}

/**
 * What a wait not yet over waits for, as a status tree shows it. `name` is a signal's name or a
 * callback's secret (of which only a prefix is shown); `callback` the callback's run and since when
 * it waits.
 */
export function waitingText(
  kind: string,
  name: string | null | undefined,
  due: number | null | undefined,
  callback?: { run: string; since: number | undefined },
): string {
  const at = due === null || due === undefined ? undefined : new Date(due).toISOString();
  const timesOut = at ? `, times out at ${at}` : "";
  if (kind === "timer") return `timer fires at ${at ?? "?"}`;
  if (kind === "callback") {
    const since = callback?.since === undefined ? "" : ` since ${new Date(callback.since).toISOString()}`;
    return `callback ${shownId(callback?.run ?? "?", name ?? "")}${since}${timesOut}`;
  }
  return `signal ${JSON.stringify(name ?? "")}${timesOut}`;
}

/**
 * The state a status shows for a call: a built-in call not yet over (a sleep, a signal or callback
 * wait; whatever the engine completes instead of a body) is WAITING, not QUEUED — it waits for time
 * or for someone, not for a worker.
 */
export function shownStatus(task: string, status: string): string {
  return isBuiltin(task) && !TERMINAL.has(status) ? "WAITING" : status;
}
