/**
 * The UI's view of a stack (deployed, LocalStack or `aloft dev`), through AloftClient.
 *
 * A page of a group's children is read server-side, a few call chunks at a time from a cursor, with
 * only the results of that page's calls (sdk/aws/status.ts childrenPage): opening page 1,000 of a
 * 100,000-child group reads a few chunks, not the group. The counts by group and state (and which
 * action is whose child, for a deep link to one) need every child's state: they come from a walk of
 * the tree without outcomes (childrenOf), kept per run and read again at most every
 * max(1 s, 4x the last walk's time) while the run is in flight, never once it has ended.
 */
import { shownArgs } from "../../core/callbacks.ts";
import { deserialize } from "../../serde.ts";
import { TERMINAL, parseOutcome } from "../../core/history.ts";
import { RECOVERABLE } from "../../core/recover.ts";
import type { AloftClient, AwsRunRow } from "../../aws/client.ts";
import { resolvePayload } from "../../aws/payloads.ts";
import { readAction } from "../../aws/store/results.ts";
import { childOf, childrenOf, childrenPage } from "../../aws/status.ts";
import type { RunItem } from "../../aws/store/table.ts";
import type { ActionNode } from "../../run-handle.ts";
import { awsLogs, logEntryOf } from "../logs.ts";
import { dedupeTaskLogs } from "../../aws/task-log.ts";
import { INLINE_CHILDREN, MAX_PAGE, readable } from "./source.ts";
import type {
  ActionDetail,
  ActionSummary,
  ChildGroup,
  GroupPage,
  RunFilter,
  RunSummary,
  RunView,
  TimelineRow,
  UiSource,
} from "./source.ts";

/** Runs whose walk is kept (the ones pages are open on). */
const KEPT_RUNS = 8;

/** What the views need of a run, from one walk of its tree. */
interface Walk {
  at: number;
  /** The run had ended when the walk began: it is final. */
  final: boolean;
  ms: number;
  row: RunItem;
  root: ActionSummary;
  /** Per parent, its children's groups in call order (small groups with their children). */
  groups: Map<string, ChildGroup[]>;
  /** Each action's parent (null for the root). */
  parentOf: Map<string, string | null>;
  byStatus: Record<string, number>;
  actions: number;
  timeline: TimelineRow[];
}

const summary = (n: ActionNode, hasChildren: boolean): ActionSummary => ({
  id: n.id,
  task: n.task,
  group: n.group,
  status: n.status,
  attempts: n.attempts,
  cached: n.cached,
  reusedFrom: n.reusedFrom ?? null,
  startedAt: n.startedAt ?? null,
  endedAt: n.endedAt ?? null,
  hasChildren,
  ...(n.waiting ? { waiting: n.waiting } : {}),
});

/** A run as the list and its page show it (no AWS run needs a resume). */
const runSummary = (r: AwsRunRow): RunSummary => ({
  id: r.id,
  task: r.task,
  status: r.status,
  created: r.created,
  ended: r.ended,
  stopped: false,
  recoverable: RECOVERABLE.has(r.status),
});

export class AwsSource implements UiSource {
  readonly kind = "aws";
  private readonly walks = new Map<string, Promise<Walk | undefined>>();

  constructor(private readonly client: AloftClient) {}

  async runs(f: RunFilter): Promise<RunSummary[]> {
    const rows = await this.client.listRuns(f.status || f.task ? Math.max(f.limit, 200) : f.limit);
    return rows
      .filter((r) => (!f.status || r.status === f.status) && (!f.task || r.task.includes(f.task)))
      .slice(0, f.limit)
      .map(runSummary);
  }

  /** The run's walk: the kept one while fresh (or final), else a new one shared by concurrent requests. */
  private walk(runId: string): Promise<Walk | undefined> {
    const kept = this.walks.get(runId);
    const fresh = (w: Walk | undefined) => w && (w.final || Date.now() - w.at < Math.max(1000, 4 * w.ms));
    if (!kept) return this.load(runId);
    return kept.then((w) => (fresh(w) ? w : this.load(runId)));
  }

  private load(runId: string): Promise<Walk | undefined> {
    const p = this.read(runId);
    this.walks.delete(runId);
    this.walks.set(runId, p);
    if (this.walks.size > KEPT_RUNS) this.walks.delete(this.walks.keys().next().value!);
    p.catch(() => this.walks.delete(runId));
    return p;
  }

  private async read(runId: string): Promise<Walk | undefined> {
    const started = Date.now();
    const row = await this.client.getRun(runId);
    if (!row) return undefined;
    const rt = this.client.rt;
    const groups = new Map<string, ChildGroup[]>();
    const parentOf = new Map<string, string | null>([[runId, null]]);
    const byStatus: Record<string, number> = {};
    const timeline: TimelineRow[] = [
      { label: row.task, count: 1, status: row.status, startedAt: row.created, endedAt: row.ended ?? null },
    ];
    let actions = 1;
    let level = [runId];
    while (level.length) {
      const next: string[] = [];
      await Promise.all(
        level.map(async (parent) => {
          const kids = await childrenOf(rt, runId, parent, started);
          if (!kids.length) return;
          const byGroup = new Map<string, ChildGroup & { nodes: ActionNode[] }>();
          for (const { node, kids: look } of kids) {
            const status = node.status;
            parentOf.set(node.id, parent);
            actions++;
            byStatus[status] = (byStatus[status] ?? 0) + 1;
            if (look) next.push(node.id);
            let g = byGroup.get(node.group);
            if (!g)
              byGroup.set(
                node.group,
                (g = {
                  group: node.group,
                  total: 0,
                  byStatus: {},
                  startedAt: null,
                  endedAt: null,
                  nodes: [],
                }),
              );
            g.total++;
            g.byStatus[status] = (g.byStatus[status] ?? 0) + 1;
            if (node.startedAt !== undefined)
              g.startedAt = Math.min(g.startedAt ?? node.startedAt, node.startedAt);
            if (node.endedAt !== undefined) g.endedAt = Math.max(g.endedAt ?? node.endedAt, node.endedAt);
            if (g.total <= INLINE_CHILDREN) g.nodes.push(node);
          }
          groups.set(
            parent,
            [...byGroup.values()].map(({ nodes, ...g }) => ({
              ...g,
              ...(g.total <= INLINE_CHILDREN ? { items: nodes.map((n) => summary(n, false)) } : {}),
            })),
          );
        }),
      );
      level = next;
    }
    // Whether a child has children is known once every parent is read.
    for (const gs of groups.values())
      for (const g of gs) for (const it of g.items ?? []) it.hasChildren = groups.has(it.id);
    for (const gs of groups.values()) {
      for (const g of gs) {
        if (timeline.length >= 100) break;
        const open = Object.entries(g.byStatus).some(([s, n]) => n > 0 && !TERMINAL.has(s));
        timeline.push({
          label: g.group ? `[${g.group}]` : g.total === 1 ? (g.items?.[0]?.task ?? "") : "…",
          count: g.total,
          status: open ? "RUNNING" : g.byStatus["FAILED"] || g.byStatus["TIMED_OUT"] ? "FAILED" : "SUCCEEDED",
          startedAt: g.startedAt,
          endedAt: open ? null : g.endedAt,
        });
      }
    }
    const root: ActionSummary = {
      id: row.run,
      task: row.task,
      group: "",
      status: row.status,
      cached: false,
      attempts: row.attempt ?? 1,
      startedAt: row.created,
      endedAt: row.ended ?? null,
      hasChildren: groups.has(runId),
    };
    return {
      at: Date.now(),
      final: row.status !== "RUNNING",
      ms: Date.now() - started,
      row,
      root,
      groups,
      parentOf,
      byStatus,
      actions,
      timeline,
    };
  }

  async run(id: string): Promise<RunView | undefined> {
    const kept = this.walks.get(id)?.catch(() => undefined);
    const w = await this.walk(id);
    if (!w) return undefined;
    // A walk this request made has just read the run item; a kept one's is read again (one GetItem):
    // its recoveries grow after it ended.
    const row = w === (await kept) ? await this.client.getRun(id) : w.row;
    if (!row) return undefined;
    return {
      run: runSummary({ ...row, id: row.run, ended: row.ended ?? null }),
      root: w.root,
      byStatus: w.byStatus,
      actions: w.actions,
      timeline: w.timeline,
      ...(row.rec?.length ? { recoveredFrom: row.rec[0] } : {}),
      recoveries: row.recoveries ?? [],
    };
  }

  async children(runId: string, parent: string): Promise<ChildGroup[]> {
    return (await this.walk(runId))?.groups.get(parent) ?? [];
  }

  async page(
    runId: string,
    parent: string,
    group: string,
    o: { status?: string; after?: string; limit: number },
  ): Promise<GroupPage> {
    const [w, p] = await Promise.all([
      this.walk(runId),
      childrenPage(this.client.rt, runId, parent, group, {
        ...(o.status ? { match: (n: ActionNode) => n.status === o.status } : {}),
        after: o.after,
        limit: Math.min(o.limit, MAX_PAGE),
        now: Date.now(),
      }),
    ]);
    return {
      items: p.nodes.map(({ node }) => summary(node, w?.groups.has(node.id) ?? false)),
      ...(p.next ? { next: p.next } : {}),
    };
  }

  async action(runId: string, id: string): Promise<ActionDetail | undefined> {
    const w = await this.walk(runId);
    const parent = w?.parentOf.get(id);
    if (!w || parent === undefined) return undefined;
    const rt = this.client.rt;
    let d: ActionDetail;
    let item: { outcome?: string } | undefined;
    if (parent === null) {
      const run = await readAction(rt, runId, null, id);
      item = run;
      d = {
        ...w.root,
        inputs: readable(
          await resolvePayload(rt.payloads, String(run && "args" in run ? run.args : "[]")),
          deserialize,
        ),
        logs: [],
      };
    } else {
      const c = await childOf(rt, runId, parent, id, Date.now());
      if (!c) return undefined;
      item = c.result;
      d = {
        ...summary(c.node, w.groups.has(id)),
        inputs: readable(shownArgs(c.call.task, await resolvePayload(rt.payloads, c.call.args)), deserialize),
        logs: [],
      };
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
    const w = await this.walk(runId);
    return JSON.stringify([w?.row.status, w?.byStatus, w?.actions]);
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
