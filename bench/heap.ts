/**
 * What a gather holds per child: a gather of N no-op children on the engine's thread (no workers),
 * with the heap measured after a full collection at two points of the parent's life: its first
 * replay with every call made (the futures of all N children), and its last replay once
 * `Promise.all` has settled (the history of all N beside their futures). Prints one JSON line.
 *
 *   node --expose-gc --import tsx bench/heap.ts 20000 [--snapshot DIR]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import v8 from "node:v8";
import { init, run, TaskEnvironment } from "aloft";
import { shutdown } from "../sdk/run.ts";

const n = Number(process.argv[2] ?? 20_000);
const at = process.argv.indexOf("--snapshot");
const snapshots = at > 0 ? process.argv[at + 1] : undefined;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with node --expose-gc");

/** Heap in use after a full collection, in MB (and a heap snapshot, if asked). */
function heapMB(name: string): number {
  gc!();
  if (snapshots) v8.writeHeapSnapshot(join(snapshots, `${name}.heapsnapshot`));
  return process.memoryUsage().heapUsed / 2 ** 20;
}

const env = new TaskEnvironment({ name: "heap" });
const noop = env.task(async function noop(i: number) {
  return i;
});
const heap: { baseline?: number; firstReplay?: number; lastReplay?: number } = {};
const gather = env.task(async function gather(count: number) {
  const all = Promise.all(Array.from({ length: count }, (_, i) => noop(i)));
  // The first replay has no outcome yet; the last has them all.
  if (heap.firstReplay === undefined) heap.firstReplay = heapMB("first-replay");
  const out = await all;
  heap.lastReplay ??= heapMB("last-replay");
  return out.length;
});

const dir = mkdtempSync(join(tmpdir(), "aloft-heap-"));
await init({ store: join(dir, "heap.db"), workers: 0 });
heap.baseline = heapMB("baseline");
const r = await run(gather, n);
if ((await r.result()) !== n) throw new Error(`gather of ${n} did not return ${n}`);
await shutdown();
rmSync(dir, { recursive: true, force: true });
const perChild = (mb: number): number => Math.round(((mb - heap.baseline!) * 2 ** 20) / n);
console.log(
  JSON.stringify({
    n,
    baselineMB: +heap.baseline.toFixed(1),
    firstReplayMB: +heap.firstReplay!.toFixed(1),
    lastReplayMB: +heap.lastReplay!.toFixed(1),
    firstReplayBytesPerChild: perChild(heap.firstReplay!),
    lastReplayBytesPerChild: perChild(heap.lastReplay!),
    peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
  }),
);
