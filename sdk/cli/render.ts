/**
 * Text views for the CLI: the status tree of a run (children gathered by group, so a fan-out of
 * 100,000 stays one line per group) and the list of runs.
 */
import type { RunRow } from "../local/store.ts";
import type { ActionNode, RunStatus } from "../run-handle.ts";

export function duration(ms: number | undefined): string {
  if (ms === undefined) return "-";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
}

function counts(nodes: ActionNode[]): string {
  const by: Record<string, number> = {};
  let reused = 0;
  for (const n of nodes) {
    by[n.status] = (by[n.status] ?? 0) + 1;
    if (n.reusedFrom) reused++;
  }
  return [
    ...Object.entries(by).map(([k, v]) => `${v} ${k.toLowerCase()}`),
    ...(reused ? [`${reused} reused`] : []),
  ].join(", ");
}

const SHOW = 5;

function tree(n: ActionNode, indent: string, out: string[]): void {
  const extra = [
    n.attempts > 1 ? `${n.attempts} attempts` : "",
    n.cached ? "cached" : "",
    n.reusedFrom ? `reused from ${n.reusedFrom}` : "",
  ]
    .filter(Boolean)
    .join(", ");
  out.push(
    `${indent}${n.task}  ${n.status}  ${duration(n.durationMs)}${extra ? `  (${extra})` : ""}` +
      (n.waiting ? `  waiting: ${n.waiting}` : ""),
  );
  const byGroup = new Map<string, ActionNode[]>();
  for (const c of n.children) {
    const list = byGroup.get(c.group) ?? [];
    list.push(c);
    byGroup.set(c.group, list);
  }
  for (const [g, list] of byGroup) {
    let inner = `${indent}  `;
    if (g) {
      out.push(`${indent}  [${g}] ${list.length} call(s): ${counts(list)}`);
      inner = `${indent}    `;
    }
    const shown = list.filter((c) => c.status !== "SUCCEEDED" || c.children.length > 0).slice(0, SHOW);
    const rest = list.length - shown.length;
    for (const c of shown) tree(c, inner, out);
    if (rest > 0 && list.length <= SHOW)
      for (const c of list.filter((x) => !shown.includes(x))) tree(c, inner, out);
    else if (rest > 0)
      out.push(`${inner}... ${rest} more (${counts(list.filter((x) => !shown.includes(x)))})`);
  }
}

export function renderStatus(s: RunStatus): string {
  const out = [
    `run ${s.id}  ${s.task}  ${s.state}  started ${s.createdAt.toISOString()}` +
      (s.endedAt ? `  took ${duration(s.endedAt.getTime() - s.createdAt.getTime())}` : ""),
  ];
  if (s.recoveredFrom) out.push(`recovered from ${s.recoveredFrom}`);
  if (s.recoveries?.length) out.push(`recovered by ${s.recoveries.join(", ")}`);
  if (s.root) tree(s.root, "", out);
  return `${out.join("\n")}\n`;
}

/** `note` adds a remark to a row (e.g. that a run's process stopped). */
export function renderRuns(rows: RunRow[], note: (r: RunRow) => string = () => ""): string {
  if (!rows.length) return "no runs yet\n";
  const lines = rows.map(
    (r) =>
      `${r.id}  ${r.status.padEnd(9)}  ${new Date(r.created).toISOString()}  ${duration(r.ended === null ? undefined : r.ended - r.created).padStart(7)}  ${r.task}${r.recovered_from ? `  (recovers ${r.recovered_from})` : ""}${note(r)}`,
  );
  return `${lines.join("\n")}\n`;
}
