/**
 * Every task and environment registered in this process. A worker, a Lambda or the CDK app imports
 * the user's module and finds tasks here by name.
 */
import { ConfigurationError } from "./errors.ts";
import type { TaskDef } from "./core/task-def.ts";
import { BUILTIN_PREFIX } from "./core/durable-waits.ts";

/** Compute settings of a `TaskEnvironment`, as adapters and the CDK construct see them. */
export interface EnvironmentSpec {
  name: string;
  memoryMiB: number;
  timeoutMs: number | undefined;
  /** Upper bound on children of this environment running at once (AWS: the event source's maximum concurrency). */
  concurrency: number | undefined;
  env: Readonly<Record<string, string>>;
  /** AWS: how long a message its executor holds stays invisible between heartbeats (default 60 s). */
  visibilityTimeoutMs?: number | undefined;
  /**
   * Further memory sizes a call may ask for with `task.override({ memoryMiB })`, ascending and
   * without `memoryMiB`: on AWS one more executor (function and queue) each.
   */
  memorySizesMiB?: readonly number[] | undefined;
}

/** One executor an environment deploys: `key` names its queue in the stack's executor queues. */
export interface ExecutorSize {
  key: string;
  memoryMiB: number;
}

/** The executors `spec` deploys: its own (keyed by its name), then `<name>@<MiB>` per further size. */
export function executorSizes(spec: EnvironmentSpec): ExecutorSize[] {
  return [
    { key: spec.name, memoryMiB: spec.memoryMiB },
    ...(spec.memorySizesMiB ?? []).map((m) => ({ key: `${spec.name}@${m}`, memoryMiB: m })),
  ];
}

/**
 * The executor a call of `spec`'s task runs on: the smallest size of at least `memoryMiB` (the
 * environment's own without one); undefined when no deployed size is that large.
 */
export function executorFor(spec: EnvironmentSpec, memoryMiB: number | undefined): ExecutorSize | undefined {
  const sizes = executorSizes(spec);
  if (memoryMiB === undefined) return sizes[0];
  return sizes.filter((s) => s.memoryMiB >= memoryMiB).sort((a, b) => a.memoryMiB - b.memoryMiB)[0];
}

const tasks = new Map<string, TaskDef>();
/** The callable `env.task` returned for each name (typed `unknown` here to keep this module below task.ts). */
const handles = new Map<string, unknown>();
const environments = new Map<string, EnvironmentSpec>();

export function registerEnvironment(spec: EnvironmentSpec): void {
  if (environments.has(spec.name)) {
    throw new ConfigurationError(
      `a TaskEnvironment named ${JSON.stringify(spec.name)} is already registered; environment names must be unique`,
    );
  }
  environments.set(spec.name, spec);
}

export function registerTask(def: TaskDef, handle: unknown): void {
  if (def.name.startsWith(BUILTIN_PREFIX))
    throw new ConfigurationError(
      `task name ${JSON.stringify(def.name)} starts with ${BUILTIN_PREFIX}, which Aloft reserves for its own waits (sleep, waitForSignal); choose another name`,
    );
  const prior = tasks.get(def.name);
  if (prior) {
    throw new ConfigurationError(
      `duplicate task name ${JSON.stringify(def.name)} (registered in ${prior.module ?? "?"} and ${def.module ?? "?"}); ` +
        `give one of them a distinct function name or pass { name } to env.task`,
    );
  }
  tasks.set(def.name, def);
  handles.set(def.name, handle);
}

/**
 * The registered callable for `name`: the full name (`env.fn`) or, when unambiguous, the function's
 * short name. Throws a ConfigurationError listing the registered tasks (or the ambiguous ones).
 */
export function resolveTask(name: string): unknown {
  if (handles.has(name)) return handles.get(name);
  const matches = [...tasks.keys()].filter((t) => t.endsWith(`.${name}`));
  if (matches.length > 1)
    throw new ConfigurationError(`task name ${name} is ambiguous: ${matches.join(", ")}`);
  return handles.get(matches[0] ?? getTask(name).name);
}

/** The task registered under `name`, or a ConfigurationError listing what is registered. */
export function getTask(name: string): TaskDef {
  const def = tasks.get(name);
  if (!def) {
    const known = [...tasks.keys()];
    throw new ConfigurationError(
      `unknown task ${JSON.stringify(name)}; registered: ${known.length ? known.join(", ") : "(none: was the task module imported?)"}`,
    );
  }
  return def;
}

/**
 * The error that ends an action whose task this deployment does not register: a message in flight
 * from before an upgrade that removed or renamed the task or its TaskEnvironment.
 */
export function removedTaskError(name: string): ConfigurationError {
  const known = [...tasks.keys()];
  return new ConfigurationError(
    `task ${JSON.stringify(name)} is not registered in this deployment: it (or its TaskEnvironment) was ` +
      `removed or renamed while this run was in flight, so its action fails (start the run again). Keep a ` +
      `task and its TaskEnvironment deployed until no run in flight uses them. Registered: ` +
      `${known.length ? known.join(", ") : "(none: was the task module imported?)"}`,
  );
}

export function findTask(name: string): TaskDef | undefined {
  return tasks.get(name);
}

export function listTasks(): TaskDef[] {
  return [...tasks.values()];
}

export function findEnvironment(name: string): EnvironmentSpec | undefined {
  return environments.get(name);
}

export function listEnvironments(): EnvironmentSpec[] {
  return [...environments.values()];
}
