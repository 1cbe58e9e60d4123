/** The start-up scenario's task: a root whose one child records when it began running. */
import { appendFileSync } from "node:fs";
import { TaskEnvironment } from "aloft";

const env = new TaskEnvironment({ name: "bench-startup" });

export const stamp = env.task(async function stamp() {
  // Wall-clock milliseconds, comparable across processes (bench/startup.ts reads it).
  const file = process.env["ALOFT_BENCH_STAMP"];
  if (file) appendFileSync(file, `${performance.timeOrigin + performance.now()}\n`);
  return 1;
});

export const startup = env.task(async function startup() {
  return stamp();
});
