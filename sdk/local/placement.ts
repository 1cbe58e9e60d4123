/**
 * Placement: a root and a parent's replays are orchestration, and a task whose body has proved
 * cheap (its synchronous segment averaging under CHEAP_MS over CHEAP_AFTER runs) costs more to ship
 * to a worker than to run: these run on the engine's thread. Everything else, CPU-bound bodies above
 * all, runs on the worker pool, truly in parallel.
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
