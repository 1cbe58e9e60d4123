/**
 * What the semantic suite needs from a backend (the embedded engine, or the AWS handlers on local
 * emulators): start a run, and read what it did.
 */
import type { Run } from "aloft";
import type { Task } from "../../sdk/task.ts";

export interface Backend {
  readonly name: string;
  run<F extends (...args: any[]) => any>(
    task: Task<F>,
    ...args: Parameters<F>
  ): Promise<Run<Awaited<ReturnType<F>>>>;
  /** Recovers an ended run (`recover`, docs/recover.md). */
  recover(runId: string): Promise<Run>;
  /** AWS handlers on the dev stack: messages each executor queue (keyed as the stack keys them) received. */
  executorMessages?(): Record<string, number>;
  /** Replays of a run's actions after their first execution (resumes). */
  replays(runId: string): Promise<number>;
  close(): Promise<void>;
}
