/**
 * The embedded engine's durable state: one SQLite file (or `:memory:`). Every decision and every
 * child result is applied in one transaction, so a crash between any two writes leaves a state
 * from which `aloft resume` continues without re-running a completed child.
 */
import Database from "better-sqlite3";
import type { Database as Db, Statement } from "better-sqlite3";
import { existsSync } from "node:fs";
import { ConfigurationError, HistoryError, StoreLockedError } from "../errors.ts";
import type { CallId, CallRecord, History, Outcome, TraceRecord, Twin } from "../core/history.ts";
import { HISTORY_VERSION, TERMINAL, formatOutcome, parseCallRecord, parseOutcome } from "../core/history.ts";
import type { Wait } from "../core/wait.ts";
import { ensurePrivateFile } from "./private-files.ts";
import type { RunState } from "../run-handle.ts";
import type { LogLine } from "../log-capture.ts";

export type ActionStatus =
  "QUEUED" | "RUNNING" | "SUSPENDED" | "SUCCEEDED" | "FAILED" | "TIMED_OUT" | "CANCELLED";
export { TERMINAL } from "../core/history.ts";

export interface RunRow {
  id: string;
  task: string;
  module: string | null;
  args: string;
  status: RunState;
  created: number;
  ended: number | null;
  result: string | null;
  error: string | null;
  cancel_requested: number;
  /** The run this one recovers (docs/recover.md), or null. */
  recovered_from: string | null;
}

export interface ActionRow {
  id: string;
  run_id: string;
  parent: string | null;
  task: string;
  grp: string;
  call: string | null;
  args: string;
  status: ActionStatus;
  attempts: number;
  replays: number;
  outcome: string | null;
  waits: string | null;
  started: number | null;
  ended: number | null;
  seq: number;
  window_key: string | null;
  window_idx: number | null;
  window_limit: number | null;
  dispatched: number;
  cached: number;
  /** The source run whose recorded outcome this action reused (a recovery), or null. */
  reused: string | null;
}

/**
 * Page cache a suspension's calls need for their primary-key entries (a 22-character id and its
 * rowid, in pages that random inserts leave about half full), and the most it is widened to.
 */
const INDEX_BYTES_PER_CALL = 64;
const MAX_CACHE_KIB = 256 * 1024;
/** WAL pages at which a commit checkpoints (SQLite's default is 1,000). */
const WAL_CHECKPOINT_PAGES = 8_192;
/** The page cache the store keeps, in KiB. */
const CACHE_KIB = 4_000;

/**
 * The store's layout, in its meta table. 2: an action's call record keeps only what its row has no
 * column for (storedCall). An older Aloft would misread such a record, so it refuses the store.
 */
export const STORE_FORMAT = 2;

/**
 * An action's call column: its call record without the fields its row holds in columns (id, parent,
 * task, group, arguments, map window) and without its inputs digest, which the replay that makes
 * the call again re-makes. A no-op child's row is about half the size (docs/performance.md, ninth
 * pass); a row is inserted once, and rewritten when its result comes after the write that inserted it.
 */
function storedCall(c: CallRecord): string {
  return c.settings === undefined && c.tw === undefined && c.idv !== undefined
    ? `{"v":${c.v},"n":${c.n},"idv":${c.idv}}`
    : JSON.stringify({ v: c.v, n: c.n, idv: c.idv, settings: c.settings, tw: c.tw });
}

/** An action's call record, from its row (every layout: a format-1 record repeats the columns). */
export function callOf(
  row: Pick<ActionRow, "id" | "task" | "grp" | "args" | "window_key" | "window_idx" | "window_limit">,
  call: string,
  parent: CallId,
): CallRecord {
  return parseCallRecord(call, {
    id: row.id,
    parent,
    task: row.task,
    group: row.grp,
    args: row.args,
    window:
      row.window_key === null
        ? undefined
        : { key: row.window_key, index: row.window_idx!, limit: row.window_limit! },
  });
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY, task TEXT NOT NULL, module TEXT, args TEXT NOT NULL, status TEXT NOT NULL,
  created INTEGER NOT NULL, ended INTEGER, result TEXT, error TEXT, cancel_requested INTEGER NOT NULL DEFAULT 0,
  recovered_from TEXT);
CREATE TABLE IF NOT EXISTS actions (
  id TEXT PRIMARY KEY, run_id TEXT NOT NULL, parent TEXT, task TEXT NOT NULL, grp TEXT NOT NULL DEFAULT '',
  call TEXT, args TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
  replays INTEGER NOT NULL DEFAULT 0, outcome TEXT, waits TEXT, started INTEGER, ended INTEGER,
  seq INTEGER NOT NULL DEFAULT 0, window_key TEXT, window_idx INTEGER, window_limit INTEGER,
  dispatched INTEGER NOT NULL DEFAULT 1, cached INTEGER NOT NULL DEFAULT 0, reused TEXT);
CREATE INDEX IF NOT EXISTS actions_parent ON actions(parent, seq);
CREATE INDEX IF NOT EXISTS actions_run ON actions(run_id);
CREATE TABLE IF NOT EXISTS traces (action_id TEXT NOT NULL, key TEXT NOT NULL, rec TEXT NOT NULL, PRIMARY KEY (action_id, key));
CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, value TEXT NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS logs (
  run_id TEXT NOT NULL, action_id TEXT NOT NULL, attempt INTEGER NOT NULL, seq INTEGER NOT NULL,
  at INTEGER NOT NULL, level TEXT NOT NULL, text TEXT NOT NULL, UNIQUE (action_id, attempt, seq));
CREATE INDEX IF NOT EXISTS logs_run ON logs(run_id);
`;

const INSERT_ACTIONS = `INSERT OR IGNORE INTO actions (id, run_id, parent, task, grp, call, args, status, seq, window_key, window_idx, window_limit, dispatched) VALUES`;
/**
 * A row's run and parent are named parameters, bound once for a statement's rows: every row a
 * statement inserts belongs to one suspension. Bound per row, the two strings were a fifth of a
 * row's insert in a scratch benchmark of this schema (docs/performance.md, fifteenth pass).
 */
const ACTION_VALUES = "(?, @run, @parent, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
/** A row's run and parent: the named parameters of INSERT_ACTIONS' and INSERT_DONE's rows. */
interface RowOwner {
  run: string;
  parent: CallId | null;
}
/**
 * Puts a call's values for INSERT_ACTIONS' anonymous parameters (ACTION_COLUMNS of them, which
 * INSERT_DONE's begin with) into `values` at `at`.
 */
function putCall(
  values: unknown[],
  at: number,
  c: CallRecord,
  status: string,
  seq: number,
  dispatched: 0 | 1,
): void {
  const w = c.window;
  values[at] = c.id;
  values[at + 1] = c.task;
  values[at + 2] = c.group;
  values[at + 3] = storedCall(c);
  values[at + 4] = c.args;
  values[at + 5] = status;
  values[at + 6] = seq;
  values[at + 7] = w ? w.key : null;
  values[at + 8] = w ? w.index : null;
  values[at + 9] = w ? w.limit : null;
  values[at + 10] = dispatched;
}

/** A call's row with what it has done since its parent's suspension (sdk/local/writes.ts, deferred rows). */
const INSERT_DONE = `INSERT OR IGNORE INTO actions (id, run_id, parent, task, grp, call, args, status, seq, window_key, window_idx, window_limit, dispatched, attempts, replays, outcome, started, ended) VALUES`;
const DONE_VALUES = "(?, @run, @parent, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
const DONE_COLUMNS = 16;
/**
 * Rows a suspension inserts per statement: SQLite's per-statement work is paid once for them all,
 * about 1 µs a row less than one statement each (docs/performance.md, tenth pass).
 */
const ROWS_PER_INSERT = 32;
const ACTION_COLUMNS = 11;

// An attempt's start and an action's result, written by id (and by rowid, see byRowid).
const START = `UPDATE actions SET status = 'RUNNING', attempts = ?, replays = replays + 1, started = COALESCE(started, ?), dispatched = 1 WHERE id = ?`;
// Chained comparisons, not `NOT IN (...)`: SQLite builds the list's lookup table again at every
// execution of the statement, about 1.5 µs of each result's update (docs/performance.md, tenth pass).
const NOT_ENDED = [...TERMINAL].map((t) => `status <> '${t}'`).join(" AND ");
const COMPLETE = `UPDATE actions SET status = ?, outcome = ?, ended = ?, attempts = ?, waits = NULL WHERE id = ? AND ${NOT_ENDED}`;
const START_COMPLETE = `UPDATE actions SET status = ?, outcome = ?, ended = ?, attempts = ?, waits = NULL, replays = replays + 1, started = COALESCE(started, ?), dispatched = 1 WHERE id = ? AND ${NOT_ENDED}`;
const byRowid = (sql: string): string => sql.replace("WHERE id = ?", "WHERE rowid = ?");

/** A stored line of a task body's console output (sdk/log-capture.ts). */
export interface LogRow {
  /** Increases with every line stored: `aloft logs --follow` reads the lines after the last it saw. */
  rowid: number;
  run_id: string;
  action_id: string;
  task: string;
  attempt: number;
  seq: number;
  at: number;
  level: string;
  text: string;
}

/** A child result waiting to be written. */
export interface Completion {
  id: CallId;
  /** Its row, when the engine knows it (it inserted it): written by rowid, not looked up by id. */
  row: number | undefined;
  status: ActionStatus;
  outcome: Outcome;
  ended: number;
  attempts: number;
}

/**
 * Some of a suspension's calls whose rows were deferred (sdk/local/writes.ts), to insert with what
 * each did since: its attempt's start, its end, or neither.
 */
export interface NewRowBatch {
  readonly runId: string;
  readonly parent: CallId;
  /** All the suspension's calls: the i-th call's seq is firstSeq + i. */
  readonly calls: readonly CallRecord[];
  readonly firstSeq: number;
  /** The calls to insert, by index in `calls`. */
  readonly indexes: readonly number[];
  readonly starts: ReadonlyMap<number, AttemptStart>;
  readonly ends: ReadonlyMap<number, Completion>;
}

/** Deferred rows to insert with a write, and the parents whose wait is written after them. */
export interface NewRows {
  batches: readonly NewRowBatch[];
  suspends: readonly [parent: CallId, waits: Wait[]][];
  /** Filled by the write, per batch and index: the row's rowid, or undefined where it existed. */
  rowids?: (number | undefined)[][];
}

/** An attempt started and not yet written (sdk/local/writes.ts): its number, and when. */
export interface AttemptStart {
  attempts: number;
  at: number;
  /** Its row, when known (see Completion.row). */
  row: number | undefined;
}

export class Store {
  readonly db: Db;
  private readonly s: Record<string, Statement>;

  constructor(
    readonly path: string,
    opts: { readonly?: boolean } = {},
  ) {
    // Owner-only before SQLite opens it: SQLite gives the -wal and -shm files the database's mode.
    if (path !== ":memory:" && !opts.readonly) {
      ensurePrivateFile(path);
      for (const extra of [`${path}-wal`, `${path}-shm`]) if (existsSync(extra)) ensurePrivateFile(extra);
    }
    try {
      this.db = new Database(path, {
        readonly: opts.readonly ?? false,
        fileMustExist: opts.readonly ?? false,
      });
      this.db.pragma("busy_timeout = 2000");
      // Inserts append to the tables and to two of the indexes, and a gather's first resume takes
      // its history from memory: a small cache costs no time, and better-sqlite3's 16 MB (filled by
      // a 100,000-child run) was about 11 MB of that run's peak RSS. Widened for large suspensions
      // (applySuspension).
      this.db.pragma(`cache_size = -${CACHE_KIB}`);
      if (!opts.readonly) {
        this.db.pragma("journal_mode = WAL");
        this.db.pragma("synchronous = NORMAL");
        // A checkpoint copies the WAL's pages into the database and syncs it, inside whichever
        // commit takes the WAL past this many pages: at SQLite's 1,000 (4 MB), a 10,000-child gather
        // paid about 10 ms of its 340 for one. At 8,192 (32 MB) checkpoints come an eighth as often,
        // and a page rewritten meanwhile (a child's row: inserted, started, ended) is copied once.
        this.db.pragma(`wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES}`);
        this.db.exec(SCHEMA);
        // Stores from before actions_run lost its status column: an action's status changes twice
        // (started, ended), each change rewrote that index, and no query looks actions up by it.
        const cols = this.db.prepare("SELECT COUNT(*) AS n FROM pragma_index_info('actions_run')").get() as {
          n: number;
        };
        if (cols.n > 1) this.db.exec("DROP INDEX actions_run; CREATE INDEX actions_run ON actions(run_id)");
        // Stores from before recovery (docs/recover.md) gain its columns.
        this.addColumn("runs", "recovered_from", "TEXT");
        this.addColumn("actions", "reused", "TEXT");
        const v = this.db.prepare("SELECT v FROM meta WHERE k = 'format'").get() as { v: string } | undefined;
        if (v && Number(v.v) > STORE_FORMAT) {
          throw new HistoryError(
            `store ${path} was written by a newer Aloft (format v${v.v}, this is v${STORE_FORMAT}); upgrade Aloft`,
          );
        }
        // A store of an older layout is read as it is; what is written from now on takes this one.
        if (!v || Number(v.v) < STORE_FORMAT)
          this.db
            .prepare("INSERT OR REPLACE INTO meta (k, v) VALUES ('format', ?)")
            .run(String(STORE_FORMAT));
      }
    } catch (e) {
      if ((e as { code?: string }).code === "SQLITE_BUSY") {
        throw new StoreLockedError(`store ${path} is locked by another process; wait for it or stop it`, {
          cause: e,
        });
      }
      const why = String((e as Error).message ?? e);
      if (
        /Could not locate the bindings file|NODE_MODULE_VERSION|compiled against a different Node/.test(why)
      )
        throw new ConfigurationError(
          `the embedded store cannot load better-sqlite3's native module (${why.split("\n")[0]}): its install ` +
            `script did not run, or built it for another Node.js. Run \`npm rebuild better-sqlite3\` in your ` +
            `project; with npm 12 or later, allow that script first: \`npm approve-scripts better-sqlite3\``,
          { cause: e },
        );
      throw e;
    }
    const p = (sql: string): Statement => this.db.prepare(sql);
    this.s = opts.readonly
      ? {}
      : {
          insertRun: p(
            `INSERT INTO runs (id, task, module, args, status, created, recovered_from) VALUES (?, ?, ?, ?, 'RUNNING', ?, ?)`,
          ),
          endRun: p(
            `UPDATE runs SET status = ?, ended = ?, result = ?, error = ? WHERE id = ? AND status = 'RUNNING'`,
          ),
          // Positional parameters: binding thirteen by name costs a property lookup each, per child.
          insertAction: p(`${INSERT_ACTIONS} ${ACTION_VALUES}`),
          // A suspension's calls, ROWS_PER_INSERT to a statement (writeCalls).
          insertActions: p(`${INSERT_ACTIONS} ${Array(ROWS_PER_INSERT).fill(ACTION_VALUES).join(", ")}`),
          insertDone: p(`${INSERT_DONE} ${DONE_VALUES}`),
          insertDones: p(`${INSERT_DONE} ${Array(ROWS_PER_INSERT).fill(DONE_VALUES).join(", ")}`),
          maxRowid: p(`SELECT max(rowid) FROM actions`).pluck(),
          rowidOf: p(`SELECT rowid FROM actions WHERE id = ?`).pluck(),
          start: p(START),
          // The status guard makes a result write idempotent: a duplicate or late result is ignored.
          complete: p(COMPLETE),
          // An attempt that started and ended between two writes: both in one update.
          startComplete: p(START_COMPLETE),
          // The same three by rowid: the engine knows the rows it inserted, and a lookup by id walks
          // an index whose keys (digests) arrive in random order, a page miss each at a million rows.
          startRow: p(byRowid(START)),
          completeRow: p(byRowid(COMPLETE)),
          startCompleteRow: p(byRowid(START_COMPLETE)),
          suspend: p(
            `UPDATE actions SET status = 'SUSPENDED', waits = ? WHERE id = ? AND status = 'RUNNING'`,
          ),
          insertTrace: p(`INSERT OR IGNORE INTO traces (action_id, key, rec) VALUES (?, ?, ?)`),
          children: p(
            `SELECT id, call, outcome, task, grp, args, window_key, window_idx, window_limit, seq FROM actions WHERE parent = ? ORDER BY seq`,
          ),
          traces: p(`SELECT key, rec FROM traces WHERE action_id = ?`),
          hasTraces: p(`SELECT 1 FROM traces WHERE action_id = ? LIMIT 1`),
          getCache: p(`SELECT value FROM cache WHERE key = ?`),
          putCache: p(`INSERT OR REPLACE INTO cache (key, value, created) VALUES (?, ?, ?)`),
          markCached: p(`UPDATE actions SET cached = 1 WHERE id = ?`),
          markReused: p(`UPDATE actions SET reused = ? WHERE id = ?`),
          twinOutcome: p(`SELECT outcome FROM actions WHERE id = ? AND run_id = ? AND status = 'SUCCEEDED'`),
          requestCancel: p(`UPDATE runs SET cancel_requested = 1 WHERE id = ? AND status = 'RUNNING'`),
          // A replay prints again the lines of the replays before it: the first line under each
          // (action, attempt, seq) is kept, the repeats are ignored (sdk/log-capture.ts).
          insertLog: p(
            `INSERT OR IGNORE INTO logs (run_id, action_id, attempt, seq, at, level, text)
             SELECT run_id, ?, ?, ?, ?, ?, ? FROM actions WHERE id = ?`,
          ),
        };
  }

  close(): void {
    this.db.close();
  }

  tx<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  createRun(run: {
    id: string;
    task: string;
    module: string | undefined;
    args: string;
    now: number;
    recoveredFrom?: string;
  }): void {
    this.tx(() => {
      this.s["insertRun"]!.run(
        run.id,
        run.task,
        run.module ?? null,
        run.args,
        run.now,
        run.recoveredFrom ?? null,
      );
      const root: RowOwner = { run: run.id, parent: null };
      this.s["insertAction"]!.run(
        [run.id, run.task, "", null, run.args, "QUEUED", 0, null, null, null, 1],
        root,
      );
    });
  }

  endRun(id: string, status: RunState, now: number, result: string | null, error: string | null): boolean {
    return this.s["endRun"]!.run(status, now, result, error, id).changes > 0;
  }

  startAttempt(id: CallId, attempts: number, now: number): void {
    this.s["start"]!.run(attempts, now, id);
  }

  /**
   * Applies a suspension: new child calls, new traces and the wait, in one transaction. Returns
   * each call's row, in order (undefined for a call whose row existed already). Without `waits`,
   * the first of a large suspension's calls: recorded, the parent still RUNNING, and the rest
   * applied after them (sdk/local/outcome.ts suspend).
   */
  applySuspension(
    runId: string,
    parent: CallId,
    calls: readonly CallRecord[],
    traces: readonly TraceRecord[],
    waits: Wait[] | undefined,
    /** The first call's seq (the rest follow it), or each call's. */
    seqs: number | readonly number[],
    dispatched: (c: CallRecord) => boolean,
  ): (number | undefined)[] {
    let rows: (number | undefined)[] = [];
    this.sizedFor(calls.length, () =>
      this.tx(() => {
        this.writeTraces(parent, traces);
        const put = (i: number, values: unknown[], at: number): void => {
          const c = calls[i]!;
          const seq = typeof seqs === "number" ? seqs + i : seqs[i]!;
          putCall(values, at, c, "QUEUED", seq, dispatched(c) ? 1 : 0);
        };
        const s = this.s;
        rows = this.insertRows(
          calls.length,
          ACTION_COLUMNS,
          { run: runId, parent },
          s["insertAction"]!,
          s["insertActions"]!,
          put,
          (i) => calls[i]!.id,
        );
        if (waits) this.s["suspend"]!.run(JSON.stringify(waits), parent);
      }),
    );
    return rows;
  }

  /**
   * Runs `fn`, a transaction inserting `count` rows, with the page cache sized for them. Ids are
   * digests, so each insert lands at a random place in the primary-key index. Once a suspension's
   * calls outgrow the page cache, each insert evicts a page another one needs and dirty pages spill
   * to the WAL mid-transaction: the per-call cost grows with the run (twice at a million as at
   * 100,000). The cache is sized to the index for this transaction only (docs/performance.md).
   */
  private sizedFor(count: number, fn: () => void): void {
    const need = Math.min(Math.ceil((count * INDEX_BYTES_PER_CALL) / 1024), MAX_CACHE_KIB);
    const widen = need > CACHE_KIB;
    if (widen) this.db.pragma(`cache_size = -${need}`);
    try {
      fn();
    } finally {
      if (widen) this.db.pragma(`cache_size = -${CACHE_KIB}`);
    }
  }

  /**
   * Inserts `count` rows (inside a transaction), ROWS_PER_INSERT to a statement (`many`) and the
   * rest one by one (`one`); `fill` puts row i's `columns` values at `at` of `values`. Returns each
   * row's rowid, or undefined where the row existed already.
   */
  private insertRows(
    count: number,
    columns: number,
    owner: RowOwner,
    one: Statement,
    many: Statement,
    fill: (i: number, values: unknown[], at: number) => void,
    idOf: (i: number) => CallId,
  ): (number | undefined)[] {
    const rows = new Array<number | undefined>(count);
    let i = 0;
    if (count >= ROWS_PER_INSERT) {
      const values = new Array<unknown>(columns * ROWS_PER_INSERT);
      let max: number | undefined; // the table's largest rowid, when known
      for (; i + ROWS_PER_INSERT <= count; i += ROWS_PER_INSERT) {
        for (let j = 0; j < ROWS_PER_INSERT; j++) fill(i + j, values, j * columns);
        // A new row's rowid is one more than the table's largest: all inserted, they are the
        // next ROWS_PER_INSERT. Otherwise (a call recorded already) each is looked up.
        const first = (max ??= (this.s["maxRowid"]!.get() as number | null) ?? 0) + 1;
        const r = many.run(values, owner);
        if (r.changes === ROWS_PER_INSERT && Number(r.lastInsertRowid) === first + ROWS_PER_INSERT - 1) {
          for (let j = 0; j < ROWS_PER_INSERT; j++) rows[i + j] = first + j;
          max = first + ROWS_PER_INSERT - 1;
        } else {
          for (let j = 0; j < ROWS_PER_INSERT; j++) {
            const row = this.s["rowidOf"]!.get(idOf(i + j)) as number;
            rows[i + j] = row >= first ? row : undefined;
          }
          max = undefined;
        }
      }
    }
    const values = new Array<unknown>(columns);
    for (; i < count; i++) {
      fill(i, values, 0);
      const r = one.run(values, owner);
      rows[i] = r.changes > 0 ? Number(r.lastInsertRowid) : undefined;
    }
    return rows;
  }

  writeTraces(parent: CallId, traces: readonly TraceRecord[]): void {
    for (const t of traces) this.s["insertTrace"]!.run(parent, t.key, JSON.stringify(t));
  }

  /**
   * Writes attempts started and results in one transaction (sdk/local/writes.ts); an action in both
   * is written once. With `fresh`, first inserts deferred rows with what they did (a row that
   * existed already takes its start and end as an update), then writes the waits of the parents
   * whose calls are now all written. Returns the ids whose result was written (not duplicates).
   */
  write(
    starts: ReadonlyMap<CallId, AttemptStart>,
    completions: readonly Completion[],
    fresh?: NewRows,
  ): Set<CallId> {
    const changed = new Set<CallId>();
    let batch = completions;
    const count = fresh ? fresh.batches.reduce((n, b) => n + b.indexes.length, 0) : 0;
    this.sizedFor(count, () =>
      this.tx(() => {
        const s = this.s;
        if (fresh) {
          fresh.rowids = [];
          let existed: Completion[] | undefined;
          let restarted: Map<CallId, AttemptStart> | undefined;
          for (const b of fresh.batches) {
            const { calls, indexes, starts: begun, ends } = b;
            const put = (k: number, values: unknown[], at: number): void => {
              const i = indexes[k]!;
              const c = calls[i]!;
              const start = begun.get(i);
              const end = ends.get(i);
              const status = end ? end.status : start ? "RUNNING" : "QUEUED";
              putCall(values, at, c, status, b.firstSeq + i, 1);
              values[at + 11] = end ? end.attempts : start ? start.attempts : 0;
              values[at + 12] = start ? 1 : 0;
              values[at + 13] = end ? formatOutcome(end.outcome) : null;
              values[at + 14] = start ? start.at : null;
              values[at + 15] = end ? end.ended : null;
            };
            const ids = this.insertRows(
              indexes.length,
              DONE_COLUMNS,
              { run: b.runId, parent: b.parent },
              s["insertDone"]!,
              s["insertDones"]!,
              put,
              (k) => calls[indexes[k]!]!.id,
            );
            fresh.rowids.push(ids);
            // A row recorded already (a crash's resume made the call again) takes them as updates.
            for (let k = 0; k < indexes.length; k++) {
              const i = indexes[k]!;
              const id = calls[i]!.id;
              const end = ends.get(i);
              if (ids[k] !== undefined) {
                if (end) changed.add(id);
                continue;
              }
              if (end) (existed ??= []).push({ ...end, row: undefined });
              const start = begun.get(i);
              if (start) (restarted ??= new Map(starts)).set(id, start);
            }
          }
          if (existed) batch = [...existed, ...batch];
          if (restarted) starts = restarted;
          for (const [parent, waits] of fresh.suspends) s["suspend"]!.run(JSON.stringify(waits), parent);
        }
        const ended = new Set<CallId>();
        for (const c of batch) {
          const st = starts.get(c.id);
          if (st) ended.add(c.id);
          const byRow = c.row !== undefined;
          const key = byRow ? c.row : c.id;
          const r = st
            ? s[byRow ? "startCompleteRow" : "startComplete"]!.run(
                c.status,
                formatOutcome(c.outcome),
                c.ended,
                c.attempts,
                st.at,
                key,
              )
            : s[byRow ? "completeRow" : "complete"]!.run(
                c.status,
                formatOutcome(c.outcome),
                c.ended,
                c.attempts,
                key,
              );
          if (r.changes > 0) changed.add(c.id);
        }
        for (const [id, st] of starts) {
          if (ended.has(id)) continue;
          if (st.row !== undefined) s["startRow"]!.run(st.attempts, st.at, st.row);
          else s["start"]!.run(st.attempts, st.at, id);
        }
      }),
    );
    return changed;
  }

  /** Whether `action` recorded traces (a body that traced has history even without children). */
  hasTraces(action: CallId): boolean {
    return this.s["hasTraces"]!.get(action) !== undefined;
  }

  /** The recorded history of `parent`: its children's calls and outcomes, and its traces. */
  history(parent: CallId): History {
    const calls = new Map<CallId, CallRecord>();
    const outcomes = new Map<CallId, Outcome>();
    const traces = new Map<string, TraceRecord>();
    // A parent's last replay holds every record at once: records share the strings they have in
    // common (the parent, the task and group names, the id with its key) instead of one copy each.
    const shared = new Map<string, string>([[parent, parent]]);
    let next = 0;
    let inCallOrder = true;
    const share = (x: string): string => {
      const y = shared.get(x);
      if (y !== undefined) return y;
      if (shared.size < 1024) shared.set(x, x);
      return x;
    };
    for (const row of this.s["children"]!.iterate(parent) as Iterable<
      Pick<
        ActionRow,
        | "id"
        | "call"
        | "outcome"
        | "task"
        | "grp"
        | "args"
        | "window_key"
        | "window_idx"
        | "window_limit"
        | "seq"
      >
    >) {
      // A call with no row before it in seq: not all of a suspension's calls were written before a
      // crash (sdk/local/writes.ts), so the rows are not the calls in the order they were made.
      if (row.seq !== next++) inCallOrder = false;
      if (row.call === null) continue;
      // The record's id is the map's key string; its digest is "" (a replay reads none).
      const rec = callOf(row, row.call, parent);
      rec.task = share(rec.task);
      rec.group = share(rec.group);
      calls.set(row.id, rec);
      if (row.outcome !== null) outcomes.set(row.id, parseOutcome(`outcome of ${row.id}`, row.outcome));
    }
    for (const row of this.s["traces"]!.iterate(parent) as Iterable<{ key: string; rec: string }>) {
      let rec: TraceRecord;
      try {
        rec = JSON.parse(row.rec) as TraceRecord;
      } catch (e) {
        throw new HistoryError(`corrupted history record (trace ${row.key} of ${parent}): not JSON`, {
          cause: e,
        });
      }
      if (typeof rec.v !== "number" || rec.v > HISTORY_VERSION) {
        throw new HistoryError(
          `history record (trace ${row.key}) has format v${String(rec.v)}, newer than this Aloft`,
        );
      }
      traces.set(row.key, {
        ...rec,
        outcome: parseOutcome(`trace ${row.key}`, JSON.stringify({ v: rec.v, ...rec.outcome })),
      });
    }
    // Rows by seq, every seq from 0: the order the parent made its calls in.
    return { calls, outcomes, traces, inCallOrder };
  }

  getCache(key: string): string | undefined {
    return (this.s["getCache"]!.get(key) as { value: string } | undefined)?.value;
  }

  putCache(key: string, value: string, now: number): void {
    this.s["putCache"]!.run(key, value, now);
  }

  markCached(id: CallId): void {
    this.s["markCached"]!.run(id);
  }

  /** The first twin (docs/recover.md) that succeeded in its run: its run and recorded value. */
  reusable(twins: readonly Twin[]): { run: string; value: string } | undefined {
    for (const [run, , id] of twins) {
      const row = this.s["twinOutcome"]!.get(id, run) as { outcome: string } | undefined;
      if (!row) continue;
      const o = parseOutcome(`outcome of ${id}`, row.outcome);
      if (o.ok) return { run, value: o.value };
    }
    return undefined;
  }

  markReused(id: CallId, run: string): void {
    this.s["markReused"]!.run(run, id);
  }

  /** The runs `runId` recovered, newest first: what it recovered, what that one recovered, ... */
  recoveryChain(runId: string): string[] {
    const chain: string[] = [];
    for (let r = this.getRun(runId); r?.recovered_from; r = this.getRun(r.recovered_from)) {
      if (chain.includes(r.recovered_from)) break; // never loops; a corrupted store must not hang
      chain.push(r.recovered_from);
    }
    return chain;
  }

  /** The runs that recover `runId`, oldest first. */
  recoveries(runId: string): string[] {
    if (!this.hasColumn("runs", "recovered_from")) return [];
    return (
      this.db.prepare(`SELECT id FROM runs WHERE recovered_from = ? ORDER BY created`).all(runId) as {
        id: string;
      }[]
    ).map((r) => r.id);
  }

  requestCancel(runId: string): boolean {
    return this.s["requestCancel"]!.run(runId).changes > 0;
  }

  getRun(id: string): RunRow | undefined {
    return this.db.prepare(`SELECT * FROM runs WHERE id = ?`).get(id) as RunRow | undefined;
  }

  /** Runs whose id starts with `prefix` (so users can type a short id). */
  findRuns(prefix: string): RunRow[] {
    return this.db
      .prepare(`SELECT * FROM runs WHERE id LIKE ? ORDER BY created DESC LIMIT 5`)
      .all(`${prefix}%`) as RunRow[];
  }

  listRuns(limit = 20): RunRow[] {
    return this.db.prepare(`SELECT * FROM runs ORDER BY created DESC LIMIT ?`).all(limit) as RunRow[];
  }

  runActions(runId: string): ActionRow[] {
    return this.db.prepare(`SELECT * FROM actions WHERE run_id = ? ORDER BY seq`).all(runId) as ActionRow[];
  }

  /** Stores the lines replays of actions printed, in one transaction. */
  appendLogs(batch: readonly [action: CallId, attempt: number, lines: readonly LogLine[]][]): void {
    const ins = this.s["insertLog"]!;
    this.tx(() => {
      for (const [action, attempt, lines] of batch)
        for (const l of lines) ins.run(action, attempt, l.seq, l.at, l.level, l.text, action);
    });
  }

  /**
   * A run's log lines (of one action, if given) stored after `afterRowid`, in the order stored,
   * at most `limit`. A store written before logs were kept has none.
   */
  logs(runId: string, opts: { action?: string; afterRowid?: number; limit?: number } = {}): LogRow[] {
    if (!this.hasTable("logs")) return [];
    const where = opts.action ? "AND l.action_id = ?" : "";
    const params: unknown[] = [runId, opts.afterRowid ?? 0, ...(opts.action ? [opts.action] : [])];
    return this.db
      .prepare(
        `SELECT l.rowid, l.*, a.task FROM logs l JOIN actions a ON a.id = l.action_id
         WHERE l.run_id = ? AND l.rowid > ? ${where} ORDER BY l.rowid LIMIT ?`,
      )
      .all(...params, opts.limit ?? 10_000) as LogRow[];
  }

  private hasColumn(table: string, column: string): boolean {
    return (
      this.db.prepare(`SELECT 1 FROM pragma_table_info(?) WHERE name = ?`).get(table, column) !== undefined
    );
  }

  private addColumn(table: string, column: string, decl: string): void {
    if (!this.hasColumn(table, column)) this.db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${decl}`);
  }

  private hasTable(name: string): boolean {
    return (
      this.db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(name) !== undefined
    );
  }

  cancelRequested(runId: string): boolean {
    const r = this.db.prepare(`SELECT cancel_requested FROM runs WHERE id = ?`).get(runId) as
      { cancel_requested: number } | undefined;
    return (r?.cancel_requested ?? 0) === 1;
  }
}
