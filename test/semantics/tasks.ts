/**
 * Tasks exercised by the semantic suite, on every backend. Side effects that must be counted
 * across processes and Lambdas (executions, attempts) go to files under ALOFT_TEST_DIR.
 */
import { appendFileSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { NonRecoverableError, TaskEnvironment, group, map, trace } from "aloft";

const env = new TaskEnvironment({ name: "sem" });
const slowEnv = new TaskEnvironment({ name: "sem_slow", timeout: "30s" });

function dir(): string {
  const d = process.env["ALOFT_TEST_DIR"];
  if (!d) throw new Error("ALOFT_TEST_DIR is not set");
  return d;
}

/** Appends a line to a counter file; returns how many lines it now has. */
export function bump(name: string): number {
  const f = join(dir(), `${name}.count`);
  appendFileSync(f, "x\n");
  return readFileSync(f, "utf8").split("\n").length - 1;
}

/** A switch a test flips between runs (a file), read by task bodies in any process. */
export function setFlag(name: string, on = true): void {
  const f = join(dir(), `${name}.flag`);
  if (on) writeFileSync(f, "");
  else rmSync(f, { force: true });
}

export function hasFlag(name: string): boolean {
  return existsSync(join(dir(), `${name}.flag`));
}

export function count(name: string): number {
  const f = join(dir(), `${name}.count`);
  return existsSync(f) ? readFileSync(f, "utf8").split("\n").length - 1 : 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const double = env.task(async function double(x: number) {
  bump(`double-${x}`);
  return x * 2;
});

export const gather = env.task(async function gather(n: number) {
  return Promise.all(Array.from({ length: n }, (_, i) => double(i)));
});

export const gatherArrows = env.task(async function gatherArrows(n: number) {
  return Promise.all(Array.from({ length: n }, async (_, i) => (await double(i)) + 1));
});

/** Two stages per item: the second call is made after the gather was built. */
export const twoStage = env.task(async function twoStage(n: number) {
  return Promise.all(Array.from({ length: n }, async (_, i) => double(await double(i))));
});

export const square = env.task(function square(x: number) {
  return x * x;
});

export const sumOfSquares = env.task(function sumOfSquares(xs: number[]) {
  let total = 0;
  for (const x of xs) total += square(x) as number; // sync calls: the replay suspends until each exists
  return total;
});

export const aioSquares = env.task(async function aioSquares(xs: number[]) {
  return Promise.all(xs.map((x) => square.aio(x)));
});

export const nested = env.task(async function nested(n: number) {
  const [a, b] = await Promise.all([gather(n), aioSquares([1, 2, 3])]);
  return { a, b };
});

/** A windowed map whose items are parents: each suspends, resumes, and only then frees its slot. */
export const mapOfParents = env.task(async function mapOfParents(n: number, concurrency: number) {
  const out: number[][] = [];
  for await (const r of map.aio(
    aioSquares,
    Array.from({ length: n }, (_, i) => [i, i + 1]),
    { concurrency },
  )) {
    if (r instanceof Error) throw r;
    out.push(r);
  }
  return out;
});

export const mapSync = env.task(function mapSync(n: number) {
  const out: (number | string)[] = [];
  for (const r of map(
    flaky,
    Array.from({ length: n }, (_, i) => i),
  ))
    out.push(r instanceof Error ? `error:${r.name}` : r);
  return out;
});

export const mapAio = env.task(async function mapAio(n: number, concurrency: number) {
  const out: number[] = [];
  for await (const r of map.aio(
    slowDouble,
    Array.from({ length: n }, (_, i) => i),
    { concurrency, group: "doubling" },
  )) {
    if (r instanceof Error) throw r;
    out.push(r);
  }
  return out;
});

export const mapThrows = env.task(async function mapThrows(n: number) {
  const out: number[] = [];
  for await (const r of map.aio(
    flaky,
    Array.from({ length: n }, (_, i) => i),
    { returnExceptions: false },
  ))
    out.push(r as number);
  return out;
});

/** Fails for multiples of 3 (a NonRecoverableError: never retried). */
export const flaky = env.task(async function flaky(i: number) {
  if (i % 3 === 0) throw new NonRecoverableError(`item ${i} is a multiple of 3`);
  return i;
});

export const slowDouble = env.task(async function slowDouble(i: number) {
  await sleep(20);
  return i * 2;
});

export const race = env.task(async function race() {
  // The loser sleeps long enough to still be running when the winner has resumed the parent and
  // ended it, also on a loaded machine (the suite checks that it was cancelled).
  // 5 s: on the deployed shape (sandbox processes, IAM proxy) a resume takes longer than locally.
  return Promise.race([sleepy(5000, "slow"), sleepy(10, "fast")]);
});

export const anyOf = env.task(async function anyOf() {
  return Promise.any([boom("first"), sleepy(20, "second")]);
});

export const settled = env.task(async function settled() {
  const rs = await Promise.allSettled([boom("x"), sleepy(1, "ok")]);
  return rs.map((r) => (r.status === "fulfilled" ? r.value : `${(r.reason as Error).name}`));
});

export const sleepy = slowEnv.task(async function sleepy(ms: number, label: string) {
  await sleep(ms);
  return label;
});

export const boom = env.task(async function boom(message: string) {
  throw new TypeError(message);
});

export const catchesChild = env.task(async function catchesChild() {
  try {
    await boom("child broke");
    return "unreachable";
  } catch (e) {
    const te = e as { name: string; task: string; errorName: string; attempts: number; message: string };
    return { name: te.name, task: te.task, errorName: te.errorName, attempts: te.attempts };
  }
});

export const failsThrough = env.task(async function failsThrough() {
  return Promise.all([double(1), boom("gather member failed")]);
});

/** Fails its first two attempts, then succeeds. */
export const retried = env.task(
  async function retried(key: string) {
    const n = bump(`retried-${key}`);
    if (n < 3) throw new Error(`attempt ${n} fails`);
    return n;
  },
  { retries: { count: 3, backoff: { base: "10ms", factor: 2, max: "100ms" } } },
);

export const callsRetried = env.task(async function callsRetried(key: string) {
  return retried(key);
});

export const nonRecoverable = env.task(
  async function nonRecoverable(key: string) {
    bump(`nonrec-${key}`);
    throw new NonRecoverableError("bad input: retrying will not help");
  },
  { retries: 5 },
);

export const tooSlow = env.task(
  async function tooSlow() {
    await sleep(5_000);
    return "late";
  },
  { timeout: "300ms" },
);

export const callsTooSlow = env.task(async function callsTooSlow() {
  try {
    await tooSlow();
    return "no timeout";
  } catch (e) {
    return (e as Error).name;
  }
});

export const longChild = slowEnv.task(async function longChild(key: string, i: number) {
  bump(`long-${key}`);
  await sleep(3_000);
  return i;
});

export const longParent = env.task(async function longParent(key: string, n: number) {
  return Promise.all(Array.from({ length: n }, (_, i) => longChild(key, i)));
});

export const cachedWork = env.task(
  async function cachedWork(key: string, x: number) {
    bump(`cached-${key}`);
    return x + 1;
  },
  { cache: "auto" },
);

export const usesCache = env.task(async function usesCache(key: string) {
  return Promise.all([cachedWork(key, 1), cachedWork(key, 2)]);
});

const recordVisit = trace(async function recordVisit(key: string) {
  return bump(`trace-${key}`);
});

export const traced = env.task(async function traced(key: string) {
  const visits = await recordVisit(key); // recorded once, returned from history on every replay
  const doubled = await Promise.all([double(visits), double(visits + 1)]);
  return { visits, doubled };
});

export const badArgument = env.task(async function badArgument() {
  return double((() => 1) as unknown as number);
});

export const throwsString = env.task(async function throwsString() {
  throw "a string, not an Error";
});

export const grouped = env.task(async function grouped() {
  const a = await group("first", () => Promise.all([double(1), double(2)]));
  const b = await group("second", () => Promise.all([double(3)]));
  return [...a, ...b];
});

export const echo = env.task(async function echo<T>(value: T) {
  return value;
});

export const roundTrip = env.task(async function roundTrip() {
  const value = {
    when: new Date("2026-01-02T03:04:05.000Z"),
    m: new Map<string, bigint>([["big", 12345678901234567890n]]),
    s: new Set([1, 2]),
    bytes: new Uint8Array([1, 2, 255]),
    nothing: undefined,
  };
  return echo(value);
});

export const nonDeterministic = env.task(async function nonDeterministic() {
  // Math.random in a parent body: a different child on every replay.
  const a = await double(Math.floor(Math.random() * 1_000_000));
  const b = await double(a);
  return b;
});

export const joinBatch = env.task(async function joinBatch(items: string[]) {
  return items.join("+");
});

/**
 * Flyte's `basic_as_completed.py` in JavaScript: a race over promises derived from the futures
 * (`f.then(...)`), reducing batches of two as items arrive. Items finish last-called first.
 */
export const asCompleted = env.task(async function asCompleted(n: number) {
  const futures = Array.from({ length: n }, (_, i) => sleepy((n - i) * 100, `item${i}`));
  const pending = new Map(futures.map((f, i) => [i, f.then((v) => ({ i, v }))]));
  const reduced: string[] = [];
  let batch: string[] = [];
  while (pending.size) {
    const { i, v } = await Promise.race(pending.values());
    pending.delete(i);
    batch.push(v);
    if (batch.length === 2 || pending.size === 0) {
      reduced.push(await joinBatch(batch));
      batch = [];
    }
  }
  return reduced;
});
