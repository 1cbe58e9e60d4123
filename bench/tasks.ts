/** Tasks the benchmarks run: no-op children gathered, awaited in turn or mapped, and a CPU-bound child. */
import { TaskEnvironment, map } from "aloft";

const env = new TaskEnvironment({ name: "bench" });

export const noop = env.task(async function noop(i: number) {
  return i;
});

export const gather = env.task(async function gather(n: number) {
  const out = await Promise.all(Array.from({ length: n }, (_, i) => noop(i)));
  return out.length;
});

/** Children one after another: every child suspends the parent, and every resume continues it. */
export const sequential = env.task(async function sequential(n: number) {
  let count = 0;
  for (let i = 0; i < n; i++) if ((await noop(i)) === i) count++;
  return count;
});

export const mapped = env.task(async function mapped(n: number, concurrency?: number) {
  let count = 0;
  for await (const r of map.aio(
    noop,
    Array.from({ length: n }, (_, i) => i),
    concurrency ? { concurrency } : {},
  )) {
    if (r instanceof Error) throw r;
    count++;
  }
  return count;
});

/** A fraction of a second of pure CPU on these machines. */
export const burn = env.task(function burn(seed: number) {
  let x = seed;
  for (let i = 0; i < 20_000_000; i++) x = (x * 1103515245 + 12345) % 2147483648;
  return x;
});

export const cpuFanOut = env.task(async function cpuFanOut(n: number) {
  return Promise.all(Array.from({ length: n }, (_, i) => burn.aio(i)));
});
