/**
 * What a history read back in call order saves a replay (docs/aws.md: the AWS store's histories say
 * so): the replay core alone, in one process, replays a gather of N children from its full
 * history, once marked `inCallOrder` (each call matched to the next record by position) and once
 * not (each call's inputs digest, identity digest and count made again), taking turns, 12 times
 * each, and prints the medians.
 *   node --import tsx bench/replay-order.ts [n=10000]
 */
import { TaskEnvironment } from "aloft";
import { replay } from "../sdk/core/replay.ts";
import { emptyHistory } from "../sdk/core/history.ts";
import type { History } from "../sdk/core/history.ts";

const env = new TaskEnvironment({ name: "order" });
const double = env.task(async function double(x: number) {
  return x * 2;
});
const gather = env.task(async function gather(n: number) {
  return (await Promise.all(Array.from({ length: n }, (_, i) => double(i)))).length;
});

const n = Number(process.argv[2] ?? 10_000);
const args = `[${n}]`;
const first = await replay({ task: gather.def, args, actionId: "p", history: emptyHistory() });
if (first.kind !== "suspended") throw new Error(`the first replay ${first.kind}`);

/** The parent's whole history, every child succeeded; fresh records each time (a replay may fill in their digests). */
const history = (inCallOrder: boolean): History => ({
  calls: new Map(first.calls.map((c) => [c.id, { ...c }])),
  outcomes: new Map(first.calls.map((c, i) => [c.id, { ok: true as const, value: String(i * 2) }])),
  traces: new Map(),
  inCallOrder,
});

async function once(inCallOrder: boolean): Promise<number> {
  const h = history(inCallOrder);
  const t0 = performance.now();
  const d = await replay({ task: gather.def, args, actionId: "p", history: h });
  const ms = performance.now() - t0;
  if (d.kind !== "completed") throw new Error(`the replay ${d.kind}`);
  return ms;
}

const times = { unordered: [] as number[], ordered: [] as number[] };
for (let r = 0; r < 12; r++) {
  times.unordered.push(await once(false));
  times.ordered.push(await once(true));
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const [u, o] = [median(times.unordered), median(times.ordered)];
console.log(
  JSON.stringify({ n, unorderedMs: u, inCallOrderMs: o, savedMicrosPerCall: ((u - o) * 1000) / n }),
);
