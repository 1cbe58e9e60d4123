/**
 * The UI's view of the local store. Reads only what a page shows: counts per group and state with
 * GROUP BY over the parent index, children a page at a time, one action's detail by id.
 */
import { shownArgs } from "../../core/callbacks.ts";
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { deserialize } from "../../serde.ts";
import { parseOutcome } from "../../core/history.ts";
import { Store } from "../../local/store.ts";
import type { ActionRow, RunRow } from "../../local/store.ts";
import { StoreLock } from "../../local/lock.ts";
import { RECOVERABLE, checkRecoverable } from "../../core/recover.ts";
import { localLogs } from "../logs.ts";
import { WaitStore } from "../../local/wait-store.ts";
import { BUILTIN_PREFIX, waitingText } from "../../core/durable-waits.ts";
import { TERMINAL } from "../../core/history.ts";
import { INLINE_CHILDREN, MAX_PAGE, readable } from "./source.ts";
import type {
  ActionDetail,
  ActionSummary,
  ChildGroup,
  GroupPage,
  RunSummary,
  RunView,
  TimelineRow,
  UiSource,
} from "./source.ts";

/** How long the UI waits for a process that holds the store (one ending its run) to let it go. */
const RELEASE_MS = 10_000;

type SummaryRow = Pick<
  ActionRow,
  "id" | "seq" | "task" | "grp" | "status" | "attempts" | "cached" | "reused" | "started" | "ended"
> & {
  kids: number;
};

/**
 * shownStatus (sdk/core/durable-waits.ts) in SQL over the store's `actions a`: a built-in call not
 * yet over reads WAITING, whether or not the engine has recorded its wait yet.
 */
const SHOWN_STATUS_SQL = `(CASE WHEN a.task LIKE '${BUILTIN_PREFIX}%' AND a.status NOT IN (${[...TERMINAL]
  .map((s) => `'${s}'`)
  .join(", ")}) THEN 'WAITING' ELSE a.status END)`;

const SUMMARY_COLUMNS = `a.id, a.seq, a.task, a.grp, ${SHOWN_STATUS_SQL} AS status, a.attempts, a.cached, a.reused,
  a.started, a.ended,
  EXISTS (SELECT 1 FROM actions c WHERE c.parent = a.id) AS kids`;

const summary = (r: SummaryRow): ActionSummary => ({
  id: r.id,
  task: r.task,
  group: r.grp,
  status: r.status,
  attempts: r.attempts,
  cached: r.cached === 1,
  reusedFrom: r.reused,
  startedAt: r.started,
  endedAt: r.ended,
  hasChildren: r.kids === 1,
});

/** The `aloft` command beside this module, from the sources or built. */
function aloftBin(): string {
  for (const rel of ["../../../bin/aloft.js", "../../../../bin/aloft.js"]) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(p)) return p;
  }
  throw new Error("aloft ui: cannot find bin/aloft.js beside the package");
}

/** Runs `aloft --store <path> <args>`; resolves with its output once it exits. */
function aloftCommand(store: string, args: string[], wait: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [aloftBin(), "--store", store, ...args], {
      stdio: ["ignore", wait ? "pipe" : "ignore", wait ? "pipe" : "ignore"],
    });
    p.on("error", reject);
    if (!wait) {
      p.unref();
      resolve(`started aloft ${args.join(" ")} (pid ${p.pid})`);
      return;
    }
    let out = "";
    p.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    p.on("close", (code) =>
      code === 0 ? resolve(out.trim()) : reject(new Error(out.trim() || `exit ${code}`)),
    );
  });
}

export class LocalSource implements UiSource {
  readonly kind = "local";
  private readonly store: Store;
  /** Made when a page first shows a wait (it prepares its statements, and creates its tables if missing). */
  private waitStore: WaitStore | undefined;

  constructor(readonly path: string) {
    this.store = new Store(path);
  }

  /** Says what each WAITING one of `items` waits for (the engine records it when it takes the wait over). */
  private withWaits<T extends ActionSummary>(runId: string, items: T[]): T[] {
    if (!items.some((i) => i.status === "WAITING")) return items;
    const waits = (this.waitStore ??= new WaitStore(this.store.db)).waitsOf(runId);
    for (const i of items) {
      const w = i.status === "WAITING" ? waits.get(i.id) : undefined;
      if (w) i.waiting = waitingText(w.kind, w.name, w.due, { run: runId, since: w.since });
    }
    return items;
  }

  private held(): boolean {
    return StoreLock.holder(this.path) !== undefined;
  }

  /**
   * Whether no other process holds the store, waiting up to RELEASE_MS for one to let it go: the
   * process that just ended a run (an `aloft resume` the UI started) is still exiting.
   */
  private async released(): Promise<boolean> {
    const until = Date.now() + RELEASE_MS;
    while (this.held()) {
      if (Date.now() > until) return false;
      await sleep(100);
    }
    return true;
  }

  private runSummary(r: RunRow, held: boolean): RunSummary {
    return {
      id: r.id,
      task: r.task,
      status: r.status,
      created: r.created,
      ended: r.ended,
      stopped: r.status === "RUNNING" && !held,
      recoverable: RECOVERABLE.has(r.status),
    };
  }

  async runs(f: { status?: string; task?: string; limit: number }): Promise<RunSummary[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (f.status) {
      where.push("status = ?");
      params.push(f.status);
    }
    if (f.task) {
      where.push("task LIKE ?");
      params.push(`%${f.task}%`);
    }
    const rows = this.store.db
      .prepare(
        `SELECT * FROM runs ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY created DESC LIMIT ?`,
      )
      .all(...params, f.limit) as RunRow[];
    const held = this.held();
    return rows.map((r) => this.runSummary(r, held));
  }

  async run(id: string): Promise<RunView | undefined> {
    const r = this.store.getRun(id);
    if (!r) return undefined;
    const root = this.store.db.prepare(`SELECT ${SUMMARY_COLUMNS} FROM actions a WHERE a.id = ?`).get(id) as
      SummaryRow | undefined;
    const counts = this.store.db
      .prepare(
        `SELECT ${SHOWN_STATUS_SQL} AS status, COUNT(*) AS n FROM actions a
         WHERE a.run_id = ? AND a.parent IS NOT NULL GROUP BY 1`,
      )
      .all(id) as { status: string; n: number }[];
    const byStatus = Object.fromEntries(counts.map((c) => [c.status, c.n]));
    return {
      run: this.runSummary(r, this.held()),
      root: root && summary(root),
      byStatus,
      actions: 1 + counts.reduce((a, c) => a + c.n, 0),
      timeline: this.timeline(r),
      ...(r.recovered_from ? { recoveredFrom: r.recovered_from } : {}),
      recoveries: this.store.recoveries(id),
    };
  }

  /** The root, then one row per (parent, group) of children: at most 100 rows whatever the run's size. */
  private timeline(r: RunRow): TimelineRow[] {
    const rows = this.store.db
      .prepare(
        `SELECT a.parent, a.grp, MIN(a.task) AS task, COUNT(*) AS n, MIN(a.started) AS s,
                MAX(a.ended) AS e, SUM(a.ended IS NULL) AS open,
                SUM(a.status = 'FAILED' OR a.status = 'TIMED_OUT') AS failed
         FROM actions a WHERE a.run_id = ? AND a.parent IS NOT NULL
         GROUP BY a.parent, a.grp ORDER BY s LIMIT 100`,
      )
      .all(r.id) as {
      grp: string;
      task: string;
      n: number;
      s: number | null;
      e: number | null;
      open: number;
      failed: number;
    }[];
    return [
      { label: r.task, count: 1, status: r.status, startedAt: r.created, endedAt: r.ended },
      ...rows.map((g) => ({
        label: g.grp ? `[${g.grp}]` : g.n === 1 ? g.task : `${g.task} …`,
        count: g.n,
        status: g.open > 0 ? "RUNNING" : g.failed > 0 ? "FAILED" : "SUCCEEDED",
        startedAt: g.s,
        endedAt: g.open > 0 ? null : g.e,
      })),
    ];
  }

  async children(runId: string, parent: string): Promise<ChildGroup[]> {
    const rows = this.store.db
      .prepare(
        `SELECT a.grp, ${SHOWN_STATUS_SQL} AS status, COUNT(*) AS n, MIN(a.started) AS s,
                MAX(a.ended) AS e, MIN(a.seq) AS first
         FROM actions a WHERE a.parent = ? GROUP BY a.grp, 2`,
      )
      .all(parent) as {
      grp: string;
      status: string;
      n: number;
      s: number | null;
      e: number | null;
      first: number;
    }[];
    const groups = new Map<string, ChildGroup & { first: number }>();
    for (const r of rows) {
      let g = groups.get(r.grp);
      if (!g)
        groups.set(
          r.grp,
          (g = { group: r.grp, total: 0, byStatus: {}, startedAt: null, endedAt: null, first: r.first }),
        );
      g.total += r.n;
      g.byStatus[r.status] = r.n;
      g.first = Math.min(g.first, r.first);
      if (r.s !== null) g.startedAt = g.startedAt === null ? r.s : Math.min(g.startedAt, r.s);
      if (r.e !== null) g.endedAt = g.endedAt === null ? r.e : Math.max(g.endedAt, r.e);
    }
    const out = [...groups.values()].sort((a, b) => a.first - b.first);
    for (const g of out) {
      if (g.total <= INLINE_CHILDREN)
        g.items = (await this.page(runId, parent, g.group, { limit: INLINE_CHILDREN })).items;
    }
    return out.map(({ first: _first, ...g }) => g);
  }

  /** Keyset paging on the children's call order (`seq`): the cursor is the last row's seq. */
  async page(
    runId: string,
    parent: string,
    group: string,
    o: { status?: string; after?: string; limit: number },
  ): Promise<GroupPage> {
    const after = o.after === undefined ? -1 : Number(o.after);
    if (!Number.isInteger(after)) throw new Error(`not a page cursor: ${o.after}`);
    const limit = Math.min(o.limit, MAX_PAGE);
    const st = o.status ? `AND ${SHOWN_STATUS_SQL} = ?` : "";
    const rows = this.store.db
      .prepare(
        `SELECT ${SUMMARY_COLUMNS} FROM actions a WHERE a.parent = ? AND a.grp = ? AND a.seq > ? ${st}
         ORDER BY a.seq LIMIT ?`,
      )
      .all(parent, group, after, ...(o.status ? [o.status] : []), limit + 1) as SummaryRow[];
    const items = rows.slice(0, limit);
    return {
      items: this.withWaits(runId, items.map(summary)),
      ...(rows.length > limit ? { next: String(items[items.length - 1]!.seq) } : {}),
    };
  }

  async action(runId: string, id: string): Promise<ActionDetail | undefined> {
    const row = this.store.db
      .prepare(`SELECT ${SUMMARY_COLUMNS}, a.args, a.outcome FROM actions a WHERE a.id = ? AND a.run_id = ?`)
      .get(id, runId) as (SummaryRow & { args: string; outcome: string | null }) | undefined;
    if (!row) return undefined;
    const d: ActionDetail = {
      ...summary(row),
      inputs: readable(shownArgs(row.task, row.args), deserialize),
      logs: [],
    };
    this.withWaits(runId, [d]);
    if (row.outcome) {
      const o = parseOutcome(`outcome of ${id}`, row.outcome);
      if (o.ok) d.output = readable(o.value, deserialize);
      else d.error = o.error;
    }
    d.logs = localLogs(this.store, runId, id).entries;
    return d;
  }

  async fingerprint(runId: string): Promise<string> {
    const r = this.store.getRun(runId);
    const counts = this.store.db
      .prepare(`SELECT status, COUNT(*) AS n FROM actions WHERE run_id = ? GROUP BY status ORDER BY status`)
      .all(runId) as { status: string; n: number }[];
    // The store's schema has the logs table (this connection created it if it was missing).
    const last = this.store.db.prepare(`SELECT MAX(rowid) AS m FROM logs WHERE run_id = ?`).get(runId) as {
      m: number | null;
    };
    return JSON.stringify([r?.status, this.held(), counts, last.m ?? 0]);
  }

  async cancel(runId: string): Promise<string> {
    const r = this.store.getRun(runId);
    if (!r) throw new Error(`no run ${runId}`);
    if (r.status !== "RUNNING") return `run ${runId} already ended ${r.status}`;
    // The engine running it polls for the request; with none, `aloft cancel` ends it itself.
    if (this.held()) {
      this.store.requestCancel(runId);
      return `cancel requested for ${runId}`;
    }
    return aloftCommand(this.path, ["cancel", runId], true);
  }

  async resume(runId: string): Promise<string> {
    const r = this.store.getRun(runId);
    if (!r) throw new Error(`no run ${runId}`);
    if (r.status !== "RUNNING") throw new Error(`run ${runId} already ended ${r.status}`);
    if (this.held()) throw new Error(`run ${runId} is being run by another process (its store is held)`);
    return aloftCommand(this.path, ["resume", runId], false);
  }

  async recover(runId: string): Promise<{ message: string; run: string }> {
    const r = this.store.getRun(runId);
    if (!r) throw new Error(`no run ${runId}`);
    checkRecoverable(r);
    if (!(await this.released()))
      throw new Error(`another process holds the store ${this.path}: recover the run once it has stopped`);
    // `aloft recover` in a process of its own (it loads the run's task module), left running; its
    // output goes to a file beside the store, where its first line names the new run.
    const log = join(dirname(this.path), `recover-${runId}.log`);
    const fd = openSync(log, "w");
    const p = spawn(process.execPath, [aloftBin(), "--store", this.path, "recover", "--json", runId], {
      stdio: ["ignore", fd, fd],
      detached: true,
    });
    closeSync(fd);
    p.unref();
    const exited = new Promise<number | null>((res) => p.once("exit", res));
    for (let i = 0; i < 300; i++) {
      const code = await Promise.race([exited, sleep(100).then(() => undefined)]);
      // Read after the wait: a recovery whose run ends at once prints its line and exits within
      // one wait, and its exit must not hide the line (it did: "aloft recover exited 0").
      const text = existsSync(log) ? readFileSync(log, "utf8") : "";
      const id = /^run (r-[\w-]+) \(.*\) recovers /m.exec(text)?.[1];
      if (id) return { message: `started ${id}, a recovery of ${runId}`, run: id };
      if (code !== undefined) throw new Error(text.trim() || `aloft recover exited ${code}`);
    }
    throw new Error(`aloft recover ${runId} did not start its run in 30 s: see ${log}`);
  }

  close(): void {
    this.store.close();
  }
}
