/**
 * `map` over a task: sync (in order, errors yielded in place) and async (streamed, with a cap on
 * children in flight).
 *
 *   npx aloft run examples/map.ts syncMapExample 10
 *   npx aloft run examples/map.ts asyncMapExample 100
 */
import { TaskEnvironment, map } from "aloft";

const env = new TaskEnvironment({ name: "mapping" });

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

export const square = env.task(function square(x: number) {
  return x * x + 2 * x + 1;
});

export const syncMapExample = env.task(function syncMapExample(n: number) {
  const out: number[] = [];
  for (const r of map(square, range(n))) {
    if (r instanceof Error) throw r;
    out.push(r);
  }
  return out;
});

export const asyncMapExample = env.task(async function asyncMapExample(n: number) {
  const out: number[] = [];
  for await (const r of map.aio(square, range(n), { concurrency: 10 })) out.push(r as number);
  return out;
});
