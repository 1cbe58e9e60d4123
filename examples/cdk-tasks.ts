/**
 * The tasks the example stack deploys (`npx cdk deploy`): two environments, so two executors.
 * `data_pipeline` is the seed's parallel pipeline; `cpu` holds a CPU-bound task on bigger
 * functions, at most 50 running at once.
 *
 *   npx aloft run examples/cdk-tasks.ts parallelPipeline '["a","b","c"]'          # locally
 *   npx aloft run examples/cdk-tasks.ts parallelPipeline '["a","b","c"]' --aws    # on the stack
 */
import { TaskEnvironment } from "aloft";

const pipeline = new TaskEnvironment({ name: "data_pipeline", memoryMiB: 1024, timeout: "5m", retries: 2 });

export const processChunk = pipeline.task(async function processChunk(chunkId: number, data: string) {
  return `Processed chunk ${chunkId}: ${data}`;
});

export const parallelPipeline = pipeline.task(async function parallelPipeline(chunks: string[]) {
  return Promise.all(chunks.map((c, i) => processChunk(i, c))); // fan-out, gathered
});

const cpu = new TaskEnvironment({ name: "cpu", memoryMiB: 2048, concurrency: 50 });

/** Sums the square roots of 1..n: CPU work, with no I/O, for the bigger executor. */
export const heavy = cpu.task(function heavy(n: number) {
  let sum = 0;
  for (let i = 1; i <= n; i++) sum += Math.sqrt(i);
  return sum;
});
