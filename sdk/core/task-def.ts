/**
 * The engine's view of a registered task: a name, a body, and the settings that adapters enforce
 * (retries, timeout, cache). Free of I/O so the replay core and every adapter can share it.
 */
import { digest } from "../serde.ts";

export interface RetryPolicy {
  /** Retries after the first attempt (0 = run once). */
  count: number;
  backoff: { baseMs: number; factor: number; capMs: number; jitter?: number };
}

export type CacheSetting = false | "auto" | { version: string };

export interface TaskDef {
  /** Stable registered name, `<env>.<function>` unless given. */
  name: string;
  /** Name of the `TaskEnvironment` it belongs to. */
  env: string;
  fn: (...args: any[]) => unknown;
  /** True for `async function` bodies: calls inside a task return durable futures. */
  isAsync: boolean;
  retries: RetryPolicy;
  /** Per-attempt timeout; undefined = none. */
  timeoutMs: number | undefined;
  /** Version key of the cache, or false when results are not reused across runs. */
  cacheVersion: string | false;
  /** File that registered the task (what a worker or Lambda must import to find it). */
  module: string | undefined;
}

/**
 * Settings one call site gives a child (`task.override(...)`), recorded with the call so that every
 * adapter, and every later replay or retry, applies the same ones. They never enter the call's
 * identity (docs/identity.md).
 */
export interface CallSettings {
  retries?: RetryPolicy;
  timeoutMs?: number;
  cacheVersion?: string | false;
  memoryMiB?: number;
}

/** The task as one call runs it: its registered settings with the call's overrides on top. */
export function withSettings(def: TaskDef, s: CallSettings | undefined): TaskDef {
  if (!s) return def;
  const out: TaskDef = { ...def };
  if (s.retries !== undefined) out.retries = s.retries;
  if (s.timeoutMs !== undefined) out.timeoutMs = s.timeoutMs;
  if (s.cacheVersion !== undefined) out.cacheVersion = s.cacheVersion;
  return out;
}

/** Delay before retry `attempt` (1-based count of failures so far). */
export function retryDelayMs(p: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const { baseMs, factor, capMs, jitter } = p.backoff;
  const d = Math.min(capMs, baseMs * Math.pow(factor, Math.max(0, attempt - 1)));
  return jitter ? d * (1 - jitter * random()) : d;
}

/**
 * Error codes a task does not retry: a child's failure surfacing in its parent (the child had its
 * own retries, and replaying the same history fails the same way: no retry storms), and failures
 * no second attempt can mend. Shared by every adapter.
 */
export const NOT_RETRIED: ReadonlySet<string> = new Set([
  "TASK_FAILED",
  "TASK_TIMEOUT",
  "CANCELLED",
  "MAP_FAILED",
  "NON_DETERMINISM",
  "SERIALIZATION",
  "CONFIGURATION",
  "HISTORY",
]);

/** A completed result is reused for the same task, cache version and inputs (both engines). */
export function cacheKey(def: TaskDef, args: string): string {
  return digest(def.name, String(def.cacheVersion), digest(args));
}
