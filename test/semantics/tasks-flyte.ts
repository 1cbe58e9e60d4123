/**
 * Tasks for the semantic scenarios of Flyte 2's async model beyond the basics (issue 19): per-call
 * overrides, traced generators, cancelling one future, maps over bound tasks and with completion
 * rules. Counters go to files under ALOFT_TEST_DIR, as in tasks.ts.
 */
import { TaskEnvironment, map, trace } from "aloft";
import { bump, double } from "./tasks.ts";

const env = new TaskEnvironment({ name: "flyte" });
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
