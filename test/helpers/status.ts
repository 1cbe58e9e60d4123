/** Reading a run's status tree in tests: its nodes, how many ran at once, which states are final. */
import assert from "node:assert/strict";
import type { ActionNode } from "aloft";

/** The states an action or run ends in (the product's own set). */
export { TERMINAL } from "../../sdk/aws/store/table.ts";

/** The node and all its descendants, depth first (none for no node). */
export function flatten(n: ActionNode | undefined, out: ActionNode[] = []): ActionNode[] {
  if (!n) return out;
  out.push(n);
  for (const c of n.children) flatten(c, out);
  return out;
}

/**
 * The most nodes running at once, from their start and end times; each node must have both. A node
 * ending when another starts does not overlap it.
 */
export function maxOverlap(nodes: ActionNode[]): number {
  const ev: [number, number][] = [];
  for (const n of nodes) {
    assert.ok(
      n.startedAt !== undefined && n.endedAt !== undefined,
      `${n.task} ${n.id} (${n.status}) has no start or end time: started ${n.startedAt}, ended ${n.endedAt}`,
    );
    ev.push([n.startedAt, 1], [n.endedAt, -1]);
  }
  ev.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let cur = 0;
  let max = 0;
  for (const [, d] of ev) max = Math.max(max, (cur += d));
  return max;
}
