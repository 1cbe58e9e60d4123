/**
 * A large fan-out makes short-lived garbage faster than V8 collects it, and the heap (so peak RSS)
 * grows ahead of what is live. A full collection every {@link COLLECT_EVERY} units of work (results,
 * calls) keeps it near the live size; it costs a few ms each time.
 */
import v8 from "node:v8";
import vm from "node:vm";

const COLLECT_EVERY = 10_000;
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

export class Collector {
  /** Work done since the last full collection. */
  private churn = 0;

  add(work: number): void {
    this.churn += work;
    if (this.churn < COLLECT_EVERY) return;
    this.churn = 0;
    gc()?.();
  }
}
