/**
 * How far V8 lets the heap grow between two full collections. A large fan-out makes short-lived
 * garbage faster than V8's default growth collects it: after a full collection V8 lets the old
 * generation grow to between 1.1 and 4 times what was live, and a gather of 100,000 children
 * peaked at 430 MB of RSS against 200 MB for 1,000, most of the difference garbage.
 *
 * The embedded engine asks V8 for a growth of 50% instead (`--heap-growing-percent`), for its
 * process, when it starts. V8 still decides when to collect, concurrently and incrementally as it
 * does; nothing forces a collection. The peak at 100,000 children falls to about 340 MB, and the
 * run is no slower (docs/performance.md). A process whose command line or NODE_OPTIONS sets the
 * flag keeps its own value.
 */
import v8 from "node:v8";

const FLAG = "--heap-growing-percent";
/** Old generation may grow by this share of what was live before V8 collects it again. */
export const HEAP_GROWING_PERCENT = 50;

let tuned = false;

/** Sets the heap growth for this process, once, unless the process was started with its own. */
export function tuneHeapGrowth(): void {
  if (tuned) return;
  tuned = true;
  const given = [...process.execArgv, ...(process.env["NODE_OPTIONS"] ?? "").split(/\s+/)];
  // (V8 reads `_` and `-` alike in a flag's name.)
  if (given.some((a) => a.replaceAll("_", "-").startsWith(FLAG))) return;
  v8.setFlagsFromString(`${FLAG}=${HEAP_GROWING_PERCENT}`);
}
