/**
 * The seed's parallel pipeline: `Promise.all` over task calls fans the chunks out, each on its own
 * worker (locally) or Lambda (on AWS), and the parent resumes once they have all finished.
 *
 *   npx aloft run examples/parallel-pipeline.ts parallelPipeline '["a","b","c"]'
 */
import { TaskEnvironment } from "aloft";

const env = new TaskEnvironment({ name: "data_pipeline", memoryMiB: 1024, timeout: "5m", retries: 2 });

export const processChunk = env.task(async function processChunk(chunkId: number, data: string) {
  await new Promise((r) => setTimeout(r, 100)); // simulating work
  return `Processed chunk ${chunkId}: ${data}`;
});

export const parallelPipeline = env.task(async function parallelPipeline(chunks: string[]) {
  return Promise.all(chunks.map((c, i) => processChunk(i, c))); // fan-out, gathered
});
