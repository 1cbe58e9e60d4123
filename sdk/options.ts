/**
 * The options objects Aloft takes, as zod schemas: each rejects unknown keys with an error naming
 * the key and the valid ones, and every duration takes the same forms (`"10ms"`, `"90s"`, `"5m"`,
 * `"2h"`, `"7d"`, or milliseconds).
 */
import { z } from "zod";
import { ConfigurationError } from "./errors.ts";

const UNITS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/** A duration: milliseconds, or a string such as `"500ms"`, `"30s"`, `"5m"`, `"1h"`, `"7d"`. */
export type Duration = number | `${number}${keyof typeof UNITS}`;

const HOW = 'use milliseconds or a string such as "10ms", "90s", "5m", "2h" or "7d"';

const NOT = `not a duration; ${HOW}`;
export const durationSchema = z.union(
  [
    z.number({ error: NOT }).finite().nonnegative({ error: NOT }),
    z.string({ error: NOT }).regex(DURATION, { error: NOT }),
  ],
  { error: NOT },
);

/** Milliseconds of a duration; `what` names it in the error. */
export function parseDuration(d: Duration, what: string): number {
  if (typeof d === "number" && Number.isFinite(d) && d > 0) return d;
  const m = typeof d === "string" ? DURATION.exec(d) : null;
  if (!m) throw new ConfigurationError(`${what}: ${JSON.stringify(d)} is not a duration; ${HOW}`);
  return Number(m[1]) * UNITS[m[2] as keyof typeof UNITS];
}

export const backoffSchema = z.strictObject({
  /** Delay before the first retry. */
  base: durationSchema.optional(),
  /** Each retry waits `factor` times longer than the one before (>= 1). */
  factor: z.number().min(1).optional(),
  /** Longest delay. */
  max: durationSchema.optional(),
  /** Fraction (0..1) of each delay drawn at random, so retries of many tasks spread out. */
  jitter: z.number().min(0).max(1).optional(),
  /** Older name of `base` (milliseconds), still accepted. */
  baseMs: z.number().nonnegative().optional(),
  /** Older name of `max` (milliseconds), still accepted. */
  capMs: z.number().nonnegative().optional(),
});

export const retriesSchema = z.union([
  z.number().int().min(0),
  z.strictObject({ count: z.number().int().min(0), backoff: backoffSchema.optional() }),
]);

export const cacheSchema = z.union([
  z.literal(false),
  z.literal("auto"),
  z.strictObject({ version: z.union([z.string(), z.number()]) }),
]);

const shared = {
  retries: retriesSchema.optional(),
  timeout: durationSchema.optional(),
  cache: cacheSchema.optional(),
};

export const taskOptionsSchema = z.strictObject({ name: z.string().min(1).optional(), ...shared });

export const environmentOptionsSchema = z.strictObject({
  name: z.string(),
  ...shared,
  memoryMiB: z.number().optional(),
  concurrency: z.number().int().min(1).optional(),
  env: z.record(z.string(), z.string()).optional(),
  /** The lease its executor holds messages by (lambdas/visibility.ts). */
  visibilityTimeout: durationSchema.optional(),
  memorySizesMiB: z.array(z.number().int().min(128).max(10240)).optional(),
});

/** `task.override(...)`: settings for one call site. */
export const overrideOptionsSchema = z.strictObject({
  ...shared,
  memoryMiB: z.number().int().min(128).max(10240).optional(),
});

const PERCENT = /^(\d+(?:\.\d+)?)%$/;
const NOT_TOLERANCE = 'a count of failures (a whole number >= 0) or a percentage of the items such as "10%"';

export const mapOptionsSchema = z.strictObject({
  concurrency: z.number().optional(),
  returnExceptions: z.boolean().optional(),
  group: z.string().optional(),
  /** End the map once this many items succeeded (the rest are cancelled). */
  minSuccessful: z
    .number({ error: "must be a whole number >= 0" })
    .int({ error: "must be a whole number >= 0" })
    .min(0, { error: "must be a whole number >= 0" })
    .optional(),
  /** Fail the map once more items than this failed (the rest are cancelled). */
  toleratedFailures: z
    .union(
      [
        z
          .number({ error: `must be ${NOT_TOLERANCE}` })
          .int({ error: `must be ${NOT_TOLERANCE}` })
          .min(0, { error: `must be ${NOT_TOLERANCE}` }),
        z
          .string({ error: `must be ${NOT_TOLERANCE}` })
          .refine((s) => PERCENT.test(s) && Number(PERCENT.exec(s)![1]) <= 100, {
            error: `must be ${NOT_TOLERANCE}, at most 100%`,
          }),
      ],
      { error: `must be ${NOT_TOLERANCE}` },
    )
    .optional(),
});

export const initOptionsSchema = z.strictObject({
  mode: z.enum(["local", "aws"]).optional(),
  store: z.string().optional(),
  workers: z.number().int().min(0).optional(),
  aws: z.record(z.string(), z.unknown()).optional(),
  outputsFile: z.string().optional(),
});

type Issue = z.core.$ZodIssue;

/** The keys an object schema at `path` of `schema` accepts (through optionals and unions). */
function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  const def = (schema as unknown as { def: Record<string, unknown> }).def;
  if (def["type"] === "optional") return keysAt(def["innerType"] as z.ZodType, path);
  if (def["type"] === "union")
    return [...new Set((def["options"] as z.ZodType[]).flatMap((o) => keysAt(o, path)))];
  if (def["type"] !== "object") return [];
  const shape = def["shape"] as Record<string, z.ZodType>;
  if (path.length === 0) return Object.keys(shape);
  const next = shape[String(path[0])];
  return next ? keysAt(next, path.slice(1)) : [];
}

/** The issue to report: inside a union, the branch whose shape the value took. */
function pick(issue: Issue): Issue {
  if (issue.code !== "invalid_union" || !issue.errors.length) return issue;
  const branch =
    issue.errors.find(
      (b) => b.length > 0 && !b.some((i) => i.code === "invalid_type" && i.path.length === 0),
    ) ?? issue.errors[0]!;
  return pick({ ...branch[0]!, path: [...issue.path, ...branch[0]!.path] } as Issue);
}

/**
 * Checks `value` against `schema`, or throws a ConfigurationError naming what is wrong (an unknown
 * key with the valid ones, a wrong duration, a wrong type), prefixed with `what`.
 * @example
 * const opts = checkOptions(mapOptionsSchema, raw, "map(sem.double) options");
 */
export function checkOptions<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = pick(r.error.issues[0]!);
  const at = issue.path.length ? ` ${issue.path.join(".")}` : "";
  if (issue.code === "unrecognized_keys") {
    const prefix = issue.path.length ? `${issue.path.join(".")}.` : "";
    const valid = keysAt(schema, issue.path);
    throw new ConfigurationError(
      `${what}: unknown option ${issue.keys.map((k) => `"${prefix}${k}"`).join(", ")}; ` +
        `valid options${at ? ` of${at}` : ""} are ${valid.join(", ")}`,
    );
  }
  throw new ConfigurationError(`${what}:${at || " options"}: ${issue.message}`);
}

/** `new AloftClient(config, options)`: a deployed stack's outputs. */
export const clientConfigSchema = z.strictObject({
  table: z.string(),
  bucket: z.string().optional(),
  coordinatorQueue: z.string(),
  executorQueues: z.record(z.string(), z.string()),
  region: z.string().optional(),
  retentionDays: z.number().int().min(1).optional(),
  executorLogGroups: z.record(z.string(), z.string()).optional(),
  taskLogFile: z.string().optional(),
  functionLogDir: z.string().optional(),
});

export const clientOptionsSchema = z.strictObject({ outputsFile: z.string().optional() });
