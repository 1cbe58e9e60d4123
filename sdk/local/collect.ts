/**
 * A large fan-out makes short-lived garbage faster than V8 collects it, and the heap (so peak RSS)
 * grows ahead of what is live. A full collection when the heap in use has grown by a share of what
 * was live after the last one keeps it near the live size. Scaled to the heap, the collections cost
 * the same per unit of work at any size: a fixed cadence (every 10,000 results, before) walked a
 * million-child heap a hundred times, most of that run's CPU beyond linear.
 */
import v8 from "node:v8";
import vm from "node:vm";

/** Units of work (results, calls) between two looks at the heap: a look costs about 2 µs. */
const LOOK_EVERY = 1_000;
/** Collect once the heap in use exceeds what was live after the last collection by this share... */
const GROWTH = 0.5;
/** ...and by at least this many bytes: a small heap is left to V8's own collections. */
const SLACK = 48 * 2 ** 20;

let fullGc: (() => void) | undefined | null = null;
/**
 * V8's full collection, reached without --expose-gc on the command line. Looked up at the first
 * collection, not at import: setting a V8 flag is not something `import "aloft"` may do.
 */
function gc(): (() => void) | undefined {
  if (fullGc !== null) return fullGc;
  try {
    v8.setFlagsFromString("--expose-gc");
    fullGc = vm.runInNewContext("gc") as () => void;
  } catch {
    fullGc = undefined;
  }
  return fullGc;
}

const used = (): number => v8.getHeapStatistics().used_heap_size;

export class Collector {
  /** Work done since the last look at the heap. */
  private churn = 0;
  /** Heap in use after the last full collection (at first: when the engine started). */
  private live = used();

  add(work: number): void {
    this.churn += work;
    if (this.churn < LOOK_EVERY) return;
    this.churn = 0;
    if (used() < this.live * (1 + GROWTH) + SLACK) return;
    const collect = gc();
    if (!collect) return;
    collect();
    this.live = used();
  }
}
