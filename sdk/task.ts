/**
 * `TaskEnvironment` and `env.task`: how users declare tasks.
 */
import { fileURLToPath } from "node:url";
import { ConfigurationError } from "./errors.ts";
import { callAsync, callSync, captureCall } from "./core/calls.ts";
import { currentScope } from "./core/state.ts";
import type { CacheSetting, CallSettings, RetryPolicy, TaskDef } from "./core/task-def.ts";
import {
  executorFor,
  executorSizes,
  findEnvironment,
  registerEnvironment,
  registerTask,
} from "./registry.ts";
import { digest } from "./serde.ts";
import {
  checkOptions,
  environmentOptionsSchema,
  overrideOptionsSchema,
  parseDuration,
  taskOptionsSchema,
} from "./options.ts";
import type { Duration } from "./options.ts";

export { parseDuration };
export type { Duration };

/** Exponential backoff between attempts: `base`, then `base * factor^n`, at most `max`. */
export interface Backoff {
  base?: Duration;
  factor?: number;
  max?: Duration;
  /** Fraction (0..1) of each delay drawn at random. */
  jitter?: number;
  /** @deprecated older name of `base` (milliseconds). */
  baseMs?: number;
  /** @deprecated older name of `max` (milliseconds). */
  capMs?: number;
}

export type Retries = number | { count: number; backoff?: Backoff };

export interface TaskOptions {
  /** Registered name; default `<env>.<function name>`. */
  name?: string;
  /** Retries after the first attempt, or a policy with exponential backoff. */
  retries?: Retries;
  /** Per-attempt timeout. */
  timeout?: Duration;
  /** `"auto"` (keyed by the body's source), `{ version }`, or false: reuse results across runs. */
  cache?: CacheSetting;
}

export interface EnvironmentOptions extends Omit<TaskOptions, "name"> {
  name: string;
  /** Memory for this environment's executor (AWS Lambda memory size). Default 1024. */
  memoryMiB?: number;
  /** Children of this environment running at once (local pool share; AWS maximum concurrency). */
  concurrency?: number;
  /** Environment variables for this environment's executor. */
  env?: Record<string, string>;
  /**
   * AWS: how long a message an executor holds stays invisible unless its heartbeat renews it — about
   * the time before a crashed executor's work runs again. Default 60 s.
   */
  visibilityTimeout?: Duration;
  /**
   * Further memory sizes (MiB, 128..10240) a call may ask for with `task.override({ memoryMiB })`:
   * on AWS the construct deploys one more executor of each size, and such a call runs on the
   * smallest that is at least what it asks for.
   */
  memorySizesMiB?: number[];
}

/** Settings for one call site: `task.override({ retries: 5 })(...args)`. */
export interface OverrideOptions extends Omit<TaskOptions, "name"> {
  /**
   * Memory for this call's compute: on AWS it runs on its environment's smallest executor of at
   * least this size (its `memoryMiB` or one of its `memorySizesMiB`); a size above all of them is a
   * `ConfigurationError` at `override`, on every backend (docs/async.md).
   */
  memoryMiB?: number;
}

type AnyFn = (...args: any[]) => any;

/**
 * What an async task call returns: a promise that, inside a task, is a durable future. `cancel()`
 * stops the child and its descendants and rejects the promise with `CancelledError` (a no-op once
 * the body has seen it settle, and outside any task).
 */
export type Future<T> = Promise<T> & { cancel(): void };

/** What calling a task returns inside a task: an async task's promise is a {@link Future}. */
type Called<F extends AnyFn> = ReturnType<F> extends Promise<infer T> ? Future<T> : ReturnType<F>;

/**
 * A registered task: call it like the function (inside a task, an async task returns a durable
 * future and a sync task its value), or `.aio(...)` for a promise either way.
 */
export type Task<F extends AnyFn> = ((...args: Parameters<F>) => Called<F>) &
  F & {
    /** Always returns a promise (a durable future inside a task). */
    aio(...args: Parameters<F>): Future<Awaited<ReturnType<F>>>;
    /**
     * The same task with other settings for one call site (Flyte's `.override`): the call's identity
     * does not change.
     * @example
     * const r = await fetchPage.override({ retries: 5, timeout: "2m" })(url);
     */
    override(options: OverrideOptions): Task<F>;
    readonly taskName: string;
    /** @internal The engine's view. */
    readonly def: TaskDef;
    /** @internal Settings of an override, recorded with each call. */
    readonly settings?: CallSettings;
  };

const DEFAULT_BACKOFF = { baseMs: 1000, factor: 2, capMs: 60_000 };

function retryPolicy(r: Retries | undefined, what: string): RetryPolicy {
  if (r === undefined) return { count: 0, backoff: DEFAULT_BACKOFF };
  if (typeof r === "number") return { count: r, backoff: DEFAULT_BACKOFF };
  const b = r.backoff ?? {};
  const ms = (d: Duration | undefined, old: number | undefined, dflt: number, name: string): number =>
    d !== undefined ? parseDuration(d, `${what} retries.backoff.${name}`) : (old ?? dflt);
  const backoff: RetryPolicy["backoff"] = {
    baseMs: ms(b.base, b.baseMs, DEFAULT_BACKOFF.baseMs, "base"),
    factor: b.factor ?? DEFAULT_BACKOFF.factor,
    capMs: ms(b.max, b.capMs, DEFAULT_BACKOFF.capMs, "max"),
  };
  if (b.jitter !== undefined) backoff.jitter = b.jitter;
  return { count: r.count, backoff };
}

/** The file that called into Aloft, read off the stack (what a worker must import to find the task). */
function callerModule(): string | undefined {
  const stack = new Error().stack?.split("\n").slice(1) ?? [];
  for (const line of stack) {
    const m = /\(?((?:file:\/\/)?\/[^():]+?\.[cm]?[jt]s):\d+:\d+\)?\s*$/.exec(line);
    if (!m?.[1]) continue;
    const file = m[1].startsWith("file://") ? fileURLToPath(m[1]) : m[1];
    if (file.includes("/node_modules/") || file.startsWith(SDK_DIR)) continue;
    return file;
  }
  return undefined;
}
const SDK_DIR = fileURLToPath(new URL(".", import.meta.url));

/**
 * A group of tasks sharing compute settings. On AWS each environment gets its own executor
 * function and queue.
 * @example
 * const env = new TaskEnvironment({ name: "data_pipeline", memoryMiB: 1024, timeout: "5m", retries: 2 });
 */
export class TaskEnvironment {
  readonly name: string;
  private readonly defaults: Omit<TaskOptions, "name">;

  constructor(options: EnvironmentOptions) {
    if (!options || typeof options.name !== "string" || !/^[A-Za-z][\w-]{0,62}$/.test(options.name)) {
      throw new ConfigurationError(
        `TaskEnvironment needs a name of letters, digits, _ or - (starting with a letter), got ${JSON.stringify(options?.name)}`,
      );
    }
    this.name = options.name;
    checkOptions(environmentOptionsSchema, options, `TaskEnvironment ${this.name}`);
    const { name: _n, memoryMiB, concurrency, env, visibilityTimeout, memorySizesMiB, ...defaults } = options;
    this.defaults = defaults;
    if (memoryMiB !== undefined && (!Number.isInteger(memoryMiB) || memoryMiB < 128 || memoryMiB > 10240)) {
      throw new ConfigurationError(
        `TaskEnvironment ${this.name}: memoryMiB must be 128..10240, got ${memoryMiB}`,
      );
    }
    registerEnvironment({
      name: this.name,
      memoryMiB: memoryMiB ?? 1024,
      timeoutMs:
        defaults.timeout === undefined
          ? undefined
          : parseDuration(defaults.timeout, `TaskEnvironment ${this.name} timeout`),
      concurrency,
      env: { ...env },
      visibilityTimeoutMs:
        visibilityTimeout === undefined
          ? undefined
          : parseDuration(visibilityTimeout, `TaskEnvironment ${this.name} visibilityTimeout`),
      memorySizesMiB: [...new Set(memorySizesMiB)]
        .filter((m) => m !== (memoryMiB ?? 1024))
        .sort((a, b) => a - b),
    });
  }

  /**
   * Registers `fn` as a task named `<env>.<fn.name>` (or `options.name`).
   * @example
   * export const square = env.task(function square(x: number) { return x * x; });
   */
  task<F extends AnyFn>(fn: F, options: TaskOptions = {}): Task<F> {
    if (typeof fn !== "function") {
      throw new ConfigurationError(`env.task needs a function, got ${typeof fn}`);
    }
    const short = options.name ?? fn.name;
    if (!short) {
      throw new ConfigurationError(
        `env.task(${this.name}): the function has no name; use a named function or pass { name }`,
      );
    }
    const name = options.name ?? `${this.name}.${short}`;
    checkOptions(taskOptionsSchema, options, `task ${name}`);
    const o = { ...this.defaults, ...options };
    const cache = o.cache ?? false;
    const def: TaskDef = {
      name,
      env: this.name,
      fn,
      isAsync: fn.constructor?.name === "AsyncFunction",
      retries: retryPolicy(o.retries, `task ${name}`),
      timeoutMs: o.timeout === undefined ? undefined : parseDuration(o.timeout, `task ${name} timeout`),
      cacheVersion:
        cache === false ? false : cache === "auto" ? digest(fn.toString()) : String(cache.version),
      module: callerModule(),
    };
    const task = makeTask<F>(def, short, undefined);
    registerTask(def, task);
    return task;
  }
}

/** The callable a task is: `def` run with `settings` (an override's) at every call. */
function makeTask<F extends AnyFn>(def: TaskDef, short: string, settings: CallSettings | undefined): Task<F> {
  const fn = def.fn;
  const call = (...args: unknown[]): unknown => {
    const scope = currentScope();
    if (!scope) return fn(...args); // outside any task: a plain function call
    if (scope.capture) return captureCall(scope, def, args, settings);
    return def.isAsync ? callAsync(scope, def, args, settings) : callSync(scope, def, args, settings);
  };
  const aio = (...args: unknown[]): Promise<unknown> => {
    const scope = currentScope();
    if (!scope)
      return Object.assign(
        Promise.resolve().then(() => fn(...args)),
        { cancel: () => {} },
      );
    if (scope.capture) return captureCall(scope, def, args, settings);
    return callAsync(scope, def, args, settings);
  };
  const override = (o: OverrideOptions): Task<F> =>
    makeTask<F>(def, short, { ...settings, ...callSettings(def, o) });
  Object.defineProperty(call, "name", { value: short });
  return Object.assign(call, {
    aio,
    override,
    taskName: def.name,
    def,
    ...(settings ? { settings } : {}),
  }) as unknown as Task<F>;
}

/** The recorded form of an override's options (validated: unknown keys and bad values say so). */
function callSettings(def: TaskDef, o: OverrideOptions): CallSettings {
  const what = `${def.name}.override`;
  checkOptions(overrideOptionsSchema, o, what);
  const s: CallSettings = {};
  if (o.retries !== undefined) s.retries = retryPolicy(o.retries, what);
  if (o.timeout !== undefined) s.timeoutMs = parseDuration(o.timeout, `${what} timeout`);
  if (o.cache !== undefined)
    s.cacheVersion =
      o.cache === false ? false : o.cache === "auto" ? digest(def.fn.toString()) : String(o.cache.version);
  if (o.memoryMiB !== undefined) {
    const env = findEnvironment(def.env);
    if (env && !executorFor(env, o.memoryMiB)) {
      const sizes = executorSizes(env).map((e) => e.memoryMiB);
      const all = [...sizes].sort((a, b) => a - b);
      throw new ConfigurationError(
        `${what}: memoryMiB ${o.memoryMiB} is more than environment ${JSON.stringify(env.name)} deploys ` +
          `(${all.join(", ")} MiB); add it to the environment's sizes: ` +
          `new TaskEnvironment({ name: ${JSON.stringify(env.name)}, ..., memorySizesMiB: [${[...sizes.slice(1), o.memoryMiB].join(", ")}] })`,
      );
    }
    s.memoryMiB = o.memoryMiB;
  }
  return s;
}

/** True if `v` is a registered task (what `env.task` returned). */
export function isTask(v: unknown): v is Task<AnyFn> {
  return typeof v === "function" && typeof (v as { taskName?: unknown }).taskName === "string" && "def" in v;
}
