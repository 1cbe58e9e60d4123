/**
 * Tasks for the semantic scenarios of Flyte 2's async model beyond the basics (issue 19): per-call
 * overrides, traced generators, cancelling one future, maps over bound tasks and with completion
 * rules. Counters go to files under ALOFT_TEST_DIR, as in tasks.ts.
 */
import { TaskEnvironment, map, trace } from "aloft";
import { bump, count, double } from "./tasks.ts";

// 2048 MiB: a further executor size, for task.override({ memoryMiB }).
const env = new TaskEnvironment({ name: "flyte", memorySizesMiB: [2048] });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ── task.override ──────────────────────────────────────────────────────────────────────────────

/** Fails its first two attempts; registered without retries. */
export const failsTwice = env.task(async function failsTwice(key: string) {
  const n = bump(`twice-${key}`);
  if (n < 3) throw new Error(`attempt ${n} fails`);
  return n;
});

export const callsFailsTwice = env.task(async function callsFailsTwice(key: string, retries: number) {
  return retries
    ? failsTwice.override({ retries: { count: retries, backoff: { base: "10ms", factor: 1 } } })(key)
    : failsTwice(key);
});

/** The memory of the Lambda it runs in (AWS sets AWS_LAMBDA_FUNCTION_MEMORY_SIZE); "-" elsewhere. */
export const memoryHere = env.task(async function memoryHere() {
  return process.env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] ?? "-";
});

/** Its environment's own size, then 1500 MiB asked for: the 2048 MiB executor's. */
export const asksForMemory = env.task(async function asksForMemory() {
  return Promise.all([memoryHere(), memoryHere.override({ memoryMiB: 1500 })()]);
});

/** More memory than the environment deploys. */
export const asksForTooMuch = env.task(async function asksForTooMuch() {
  return memoryHere.override({ memoryMiB: 8192 })();
});

/** A windowed map over an override: items the window releases later keep the call's settings. */
export const mapsOverridden = env.task(async function mapsOverridden(key: string) {
  const retried = failsTwice.override({ retries: { count: 3, backoff: { base: "10ms", factor: 1 } } });
  const out: unknown[] = [];
  for await (const r of map.aio(retried, [`${key}-0`, `${key}-1`, `${key}-2`], { concurrency: 1 }))
    out.push(r instanceof Error ? r.message : r);
  return out;
});

/** No timeout of its own. */
export const lingers = env.task(async function lingers(ms: number) {
  await sleep(ms);
  return "late";
});

export const overridesTimeout = env.task(async function overridesTimeout() {
  try {
    await lingers.override({ timeout: "300ms" })(3_000);
    return "no timeout";
  } catch (e) {
    return (e as Error).name;
  }
});

/** Not cached by its registration. */
export const counted = env.task(async function counted(key: string, x: number) {
  bump(`counted-${key}`);
  return x + 1;
});

export const cachesByOverride = env.task(async function cachesByOverride(key: string) {
  return counted.override({ cache: "auto" }).aio(key, 1);
});

// ── trace of a generator ───────────────────────────────────────────────────────────────────────

const readLines = trace(function* readLines(key: string) {
  bump(`gen-${key}`);
  yield "a";
  yield "b";
  return 2;
});

const streamNumbers = trace(async function* streamNumbers(key: string) {
  bump(`agen-${key}`);
  for (const x of [1, 2, 3]) {
    await sleep(5);
    yield x;
  }
});

export const tracesGenerators = env.task(async function tracesGenerators(key: string) {
  const lines: string[] = [];
  for (const l of readLines(key)) lines.push(l);
  const nums: number[] = [];
  for await (const x of streamNumbers(key)) nums.push(x);
  const doubled = await double(nums.length); // suspends: the next replay reads both from history
  return { lines, nums, doubled };
});

// ── map over bound tasks ───────────────────────────────────────────────────────────────────────

export const score = env.task(async function score(id: number, name: string, scale: number) {
  if (id === 3) throw new Error("no score for 3");
  return `${name}:${id * scale}`;
});

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const shown = (r: unknown): unknown =>
  r instanceof Error ? `${r.name}:${(r as { task?: string }).task}` : r;

export const mapsBound = env.task(async function mapsBound(n: number) {
  const out: unknown[] = [];
  for await (const r of map.aio((id: number) => score.aio(id, "s", 10), range(n), { concurrency: 2 }))
    out.push(shown(r));
  return out;
});

export const mapsBoundSync = env.task(function mapsBoundSync(n: number) {
  return [...map((id: number) => score(id, "t", 1), range(n))].map(shown);
});

export const mapsTwoTasks = env.task(async function mapsTwoTasks() {
  const out: unknown[] = [];
  for await (const r of map.aio(
    (id: number) => {
      void double(id);
      return double.aio(id + 1);
    },
    [1, 2],
  ))
    out.push(r);
  return out;
});

export const mapsNoTask = env.task(async function mapsNoTask() {
  const out: unknown[] = [];
  for await (const r of map.aio(async (id: number) => id * 2, [1, 2])) out.push(r);
  return out;
});

// ── future.cancel() ────────────────────────────────────────────────────────────────────────────

/** Marks that it started, then runs long (a cancel finds it running). */
export const longRunning = env.task(async function longRunning(key: string, i: number) {
  bump(`started-${key}`);
  await sleep(3_000);
  bump(`finished-${key}`);
  return i;
});

/** Returns once `n` longRunning children of `key` have started (a parent awaits it to cancel then). */
export const started = env.task(async function started(key: string, n: number) {
  const deadline = Date.now() + 20_000;
  while (count(`started-${key}`) < n) {
    if (Date.now() > deadline) throw new Error(`fewer than ${n} children of ${key} started`);
    await sleep(20);
  }
  return n;
});

const reason = async (f: Promise<unknown>): Promise<string> =>
  f.then(
    (v) => `value:${String(v)}`,
    (e: Error) => e.name,
  );

/** A future cancelled before it was ever sent: it never starts. */
export const cancelsQueued = env.task(async function cancelsQueued(key: string) {
  const f = longRunning.aio(key, 0);
  f.cancel();
  return [await reason(f), await double(1)];
});

/** A running child, cancelled once it has started. */
export const cancelsRunning = env.task(async function cancelsRunning(key: string) {
  const f = longRunning(key, 0);
  await started(key, 1);
  f.cancel();
  return reason(f);
});

/** A child with children of its own, cancelled once they all run. */
export const longParent = env.task(async function longParent(key: string) {
  return Promise.all([longRunning(key, 0), longRunning(key, 1)]);
});

export const cancelsParent = env.task(async function cancelsParent(key: string) {
  const f = longParent(key);
  await started(key, 2);
  f.cancel();
  return reason(f);
});

/** A future the body has seen settle: cancel() is a no-op. */
export const cancelsDone = env.task(async function cancelsDone() {
  const f = double(2);
  const v = await f;
  f.cancel();
  return [v, await reason(f)];
});

/** A sibling fails: cancel the rest (Flyte's cancel_tasks.py, a circuit breaker). */
export const circuitBreaker = env.task(async function circuitBreaker(key: string) {
  const slow = [longRunning(key, 0), longRunning(key, 1)];
  try {
    await boomSoon();
    return "no failure";
  } catch {
    for (const f of slow) f.cancel();
    return Promise.all(slow.map(reason));
  }
});

export const boomSoon = env.task(async function boomSoon() {
  await sleep(50);
  throw new Error("tripped");
});

// ── leaving a map.aio loop early ───────────────────────────────────────────────────────────────

/** Item 0 returns at once; the others run until the test says stop (so the map's window stays full). */
export const tick = env.task(async function tick(key: string, i: number) {
  bump(`tick-${key}-${i}`);
  const deadline = Date.now() + 20_000;
  while (i > 0 && count(`stop-${key}`) === 0 && Date.now() < deadline) await sleep(20);
  return i;
});

export const leavesMapEarly = env.task(async function leavesMapEarly(key: string, n: number) {
  for await (const r of map.aio((i: number) => tick.aio(key, i), range(n), { concurrency: 2 })) {
    return r; // leaves the loop after the first item
  }
  return -1;
});

// ── completion rules ───────────────────────────────────────────────────────────────────────────

/** Fails for the items in `fails`; items in `slow` take 3 s (still running when the map ends). */
export const judge = env.task(async function judge(i: number, fails: number[], slow: number[]) {
  await sleep(slow.includes(i) ? 3_000 : 10);
  if (fails.includes(i)) throw new Error(`item ${i} fails`);
  return i;
});

export interface RuleCase {
  n: number;
  fails: number[];
  slow: number[];
  minSuccessful?: number;
  toleratedFailures?: number | `${number}%`;
  aio: boolean;
}

export const mapsWithRules = env.task(async function mapsWithRules(c: RuleCase) {
  const opts = {
    ...(c.minSuccessful === undefined ? {} : { minSuccessful: c.minSuccessful }),
    ...(c.toleratedFailures === undefined ? {} : { toleratedFailures: c.toleratedFailures }),
  };
  const out: unknown[] = [];
  const f = (i: number) => judge.aio(i, c.fails, c.slow);
  if (c.aio) for await (const r of map.aio(f, range(c.n), opts)) out.push(r instanceof Error ? r.name : r);
  else for (const r of map(f, range(c.n), opts)) out.push(r instanceof Error ? r.name : r);
  return out;
});

export const badRules = env.task(async function badRules(opts: Record<string, unknown>) {
  for await (const r of map.aio(double, [1], opts)) return r;
  return undefined;
});
