/**
 * Placement: a root and a parent's replays are orchestration, and a task whose body has proved
 * cheap (its synchronous segment averaging under CHEAP_MS over CHEAP_AFTER runs) costs more to ship
 * to a worker than to run: these run on the engine's thread. Everything else, CPU-bound bodies above
 * all, runs on the worker pool, truly in parallel.
 *
 * A task is measured on the pool, and only as many of its items go there at once as measuring it
 * takes ({@link probes}): a gather's cheap children otherwise went out 128 at a time to workers
 * whose code for them was cold, and their compiling took the second core from the engine's thread
 * (docs/performance.md, eleventh pass). Workers report a body's segment as soon as it has run.
 */
const CHEAP_MS = 0.2;
const CHEAP_AFTER = 32;

export class Placement {
  /** Per task: how long its body's synchronous segment takes, on average. */
  private readonly cost = new Map<string, { n: number; avg: number }>();

  cheap(task: string): boolean {
    const c = this.cost.get(task);
    return c !== undefined && c.n >= CHEAP_AFTER && c.avg < CHEAP_MS;
  }

  /** Whether enough of its bodies were measured to place it. */
  known(task: string): boolean {
    return (this.cost.get(task)?.n ?? 0) >= CHEAP_AFTER;
  }

  /**
   * How many items of a task not yet known may be on a pool of `workers` at once: enough to know
   * it, and one per worker (CPU-bound bodies keep every worker busy while they are measured).
   */
  probes(workers: number): number {
    return Math.max(CHEAP_AFTER, workers);
  }

  measure(task: string, ms: number | undefined): void {
    if (ms === undefined) return;
    const c = this.cost.get(task);
    if (!c) this.cost.set(task, { n: 1, avg: ms });
    else {
      c.n++;
      c.avg += (ms - c.avg) / Math.min(c.n, 64); // a moving average that keeps adapting
    }
  }
}
