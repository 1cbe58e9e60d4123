/**
 * A synchronous task, and an async workflow calling it with `.aio()` to fan it out.
 *
 *   npx aloft run examples/sync-and-aio.ts modernWorkflow '[1,2,3,4]'
 */
import { TaskEnvironment } from "aloft";

const env = new TaskEnvironment({ name: "legacy" });

export const legacyComputation = env.task(function legacyComputation(x: number) {
  // Existing synchronous function works unchanged.
  return x * x + 2 * x + 1;
});

export const modernWorkflow = env.task(async function modernWorkflow(numbers: number[]) {
  return Promise.all(numbers.map((n) => legacyComputation.aio(n)));
});
