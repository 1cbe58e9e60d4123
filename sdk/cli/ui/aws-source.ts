/**
 * The UI's view of a stack (deployed, LocalStack or `aloft dev`), through AloftClient. A run's
 * tree is read as `aloft status --aws` reads it (every parent's calls and results: a read that
 * grows with the run, so it is cached for a second and shared by the requests of one refresh);
 * the views cut it as the local source does.
 */
import { shownArgs } from "../../core/callbacks.ts";
import { deserialize } from "../../serde.ts";
import { parseOutcome } from "../../core/history.ts";
import type { AloftClient } from "../../aws/client.ts";
import { resolvePayload } from "../../aws/payloads.ts";
import { decodeChunk, loadActionItems } from "../../aws/store/history.ts";
import { readAction } from "../../aws/store/results.ts";
import type { ActionNode, RunStatus } from "../../run-handle.ts";
import { awsLogs, logEntryOf } from "../logs.ts";
import { dedupeTaskLogs } from "../../aws/task-log.ts";
import { INLINE_CHILDREN, MAX_PAGE, readable } from "./source.ts";
import type {
  ActionDetail,
  ActionSummary,
  ChildGroup,
  RunFilter,
  RunSummary,
  RunView,
  TimelineRow,
  UiSource,
} from "./source.ts";

const summary = (n: ActionNode): ActionSummary => ({
  id: n.id,
  task: n.task,
  group: n.group,
  status: n.status,
  attempts: n.attempts,
  cached: n.cached,
  reusedFrom: n.reusedFrom ?? null,
  startedAt: n.startedAt ?? null,
  endedAt: n.endedAt ?? null,
  hasChildren: n.children.length > 0,
});

interface Tree {
  at: number;
  status: RunStatus;
  nodes: Map<string, { node: ActionNode; parent: string | null }>;
}

export class AwsSource implements UiSource {
  readonly kind = "aws";
  private readonly trees = new Map<string, Promise<Tree>>();

  constructor(private readonly client: AloftClient) {}

  async runs(f: RunFilter): Promise<RunSummary[]> {
    const rows = await this.client.listRuns(f.status || f.task ? Math.max(f.limit, 200) : f.limit);
    return rows
      .filter((r) => (!f.status || r.status === f.status) && (!f.task || r.task.includes(f.task)))
      .slice(0, f.limit)
      .map((r) => ({ ...r, stopped: false }));
  }

  private tree(runId: string): Promise<Tree> {
    const cached = this.trees.get(runId);
    const now = Date.now();
    if (cached) return cached.then((t) => (now - t.at < 1000 ? t : this.load(runId)));
    return this.load(runId);
  }

  private load(runId: string): Promise<Tree> {
    const p = this.client
      .attach(runId)
      .status()
      .then((status) => {
        const nodes: Tree["nodes"] = new Map();
        const walk = (n: ActionNode, parent: string | null): void => {
          nodes.set(n.id, { node: n, parent });
          for (const c of n.children) walk(c, n.id);
        };
        if (status.root) walk(status.root, null);
        return { at: Date.now(), status, nodes };
      });
    this.trees.set(runId, p);
    p.catch(() => this.trees.delete(runId));
    return p;
  }

  async run(id: string): Promise<RunView | undefined> {
    const row = await this.client.getRun(id);
    if (!row) return undefined;
    const t = await this.tree(id);
    const byStatus: Record<string, number> = {};
    for (const g of t.status.groups)
      for (const [k, v] of Object.entries(g.byStatus)) byStatus[k] = (byStatus[k] ?? 0) + v;
    const timeline: TimelineRow[] = [
      { label: row.task, count: 1, status: row.status, startedAt: row.created, endedAt: row.ended ?? null },
    ];
    for (const { node } of t.nodes.values()) {
      if (timeline.length >= 100) break;
      for (const g of this.groupsOf(node)) {
        timeline.push({
          label: g.group
            ? `[${g.group}]`
            : g.total === 1
              ? (node.children.find((c) => c.group === "")?.task ?? "")
              : "…",
          count: g.total,
          status:
            (g.byStatus["RUNNING"] ?? 0) + (g.byStatus["QUEUED"] ?? 0) + (g.byStatus["WAITING"] ?? 0) > 0
              ? "RUNNING"
              : g.byStatus["FAILED"]
                ? "FAILED"
                : "SUCCEEDED",
          startedAt: g.startedAt,
          endedAt: g.endedAt,
        });
      }
    }
    return {
      run: {
        id: row.run,
        task: row.task,
        status: row.status,
        created: row.created,
        ended: row.ended ?? null,
        stopped: false,
      },
      root: t.status.root && summary(t.status.root),
      byStatus,
      actions: t.status.actions,
      timeline,
      ...(row.rec?.length ? { recoveredFrom: row.rec[0] } : {}),
      recoveries: row.recoveries ?? [],
    };
  }

  private groupsOf(parent: ActionNode): ChildGroup[] {
    const groups = new Map<string, ChildGroup>();
    for (const c of parent.children) {
      let g = groups.get(c.group);
      if (!g)
        groups.set(c.group, (g = { group: c.group, total: 0, byStatus: {}, startedAt: null, endedAt: null }));
      g.total++;
      g.byStatus[c.status] = (g.byStatus[c.status] ?? 0) + 1;
      if (c.startedAt !== undefined) g.startedAt = Math.min(g.startedAt ?? c.startedAt, c.startedAt);
      if (c.endedAt !== undefined) g.endedAt = Math.max(g.endedAt ?? c.endedAt, c.endedAt);
    }
    return [...groups.values()];
  }

  async children(runId: string, parent: string): Promise<ChildGroup[]> {
    const p = (await this.tree(runId)).nodes.get(parent)?.node;
    if (!p) return [];
    return this.groupsOf(p).map((g) =>
      g.total <= INLINE_CHILDREN
        ? { ...g, items: p.children.filter((c) => c.group === g.group).map(summary) }
        : g,
    );
  }

  async page(
    runId: string,
    parent: string,
    group: string,
    o: { status?: string; offset: number; limit: number },
  ): Promise<{ total: number; items: ActionSummary[] }> {
    const p = (await this.tree(runId)).nodes.get(parent)?.node;
    const all = (p?.children ?? []).filter((c) => c.group === group && (!o.status || c.status === o.status));
    return {
      total: all.length,
      items: all.slice(o.offset, o.offset + Math.min(o.limit, MAX_PAGE)).map(summary),
    };
  }

  async action(runId: string, id: string): Promise<ActionDetail | undefined> {
    const entry = (await this.tree(runId)).nodes.get(id);
    if (!entry) return undefined;
    const rt = this.client.rt;
    const d: ActionDetail = { ...summary(entry.node), inputs: "", logs: [] };
    const item = await readAction(rt, runId, entry.parent, id);
    if (entry.parent === null)
      d.inputs = readable(
        await resolvePayload(rt.payloads, String(item && "args" in item ? item.args : "[]")),
        deserialize,
      );
    else {
      const calls = (await loadActionItems(rt, entry.parent))
        .filter((it) => String(it["sk"]).startsWith("C#"))
        .flatMap((it) => decodeChunk(it));
      const call = calls.find((c) => c.id === id);
      if (call)
        d.inputs = readable(shownArgs(call.task, await resolvePayload(rt.payloads, call.args)), deserialize);
    }
    if (item?.outcome) {
      const o = parseOutcome(`outcome of ${id}`, await resolvePayload(rt.payloads, item.outcome));
      if (o.ok) d.output = readable(o.value, deserialize);
      else d.error = o.error;
    }
    try {
      d.logs = dedupeTaskLogs(await awsLogs(this.client, runId, { action: id })).map(logEntryOf);
    } catch (e) {
      d.logs = [
        {
          at: Date.now(),
          action: id,
          task: d.task,
          attempt: 0,
          level: "warn",
          text: `[aloft ui] logs unavailable: ${(e as Error).message}`,
        },
      ];
    }
    return d;
  }

  async fingerprint(runId: string): Promise<string> {
    const t = await this.tree(runId);
    return JSON.stringify([t.status.state, t.status.groups, t.status.actions]);
  }

  async cancel(runId: string): Promise<string> {
    await this.client.attach(runId).cancel("cancelled from aloft ui");
    return `run ${runId} ${(await this.client.getRun(runId))?.status ?? "not found"}`;
  }

  async recover(runId: string): Promise<{ message: string; run: string }> {
    const r = await this.client.recover(runId);
    return { message: `started ${r.id}, a recovery of ${runId}`, run: r.id };
  }

  close(): void {
    this.client.destroy();
  }
}
