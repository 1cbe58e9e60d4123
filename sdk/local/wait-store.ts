/**
 * Durable waits and signals in the embedded engine's SQLite store (tables of their own beside
 * store.ts's). A wait's row records when it is due (a timer fires, a signal wait times out), written
 * when the engine first takes the call over, so a restarted engine fires it late, never early. A
 * signal's row records which wait consumed it, written in the same transaction that picks it, so a
 * signal is consumed once and a restart hands the same payload to the same wait. A callback's row
 * records how it ended (`state`): the first of a completion, its timeout or its cancel sets it, in
 * one conditional update, so a callback ends once whichever process completes it.
 */
import type { Database as Db, Statement } from "better-sqlite3";
import { CallbackCompletedError, RunEndedError, UnknownCallbackError } from "../errors.ts";
import { endedText } from "../core/callbacks.ts";
import { formatOutcome } from "../core/history.ts";
import type { Outcome } from "../core/history.ts";
import type { ActionStatus } from "./store.ts";
import type { CallId } from "../core/history.ts";
import type { DurableWait } from "../core/durable-waits.ts";
import { dueAt, shownId } from "../core/durable-waits.ts";
import type { Payload } from "../serde.ts";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS durable_waits (
  action_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, kind TEXT NOT NULL, name TEXT, due INTEGER, since INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS signals (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, name TEXT NOT NULL, payload TEXT NOT NULL,
  sent INTEGER NOT NULL, consumed_by TEXT);
CREATE INDEX IF NOT EXISTS signals_open ON signals(run_id, name, consumed_by, seq);
CREATE TABLE IF NOT EXISTS callbacks (
  secret TEXT PRIMARY KEY, run_id TEXT NOT NULL, action_id TEXT NOT NULL, since INTEGER NOT NULL,
  state TEXT, outcome TEXT, done INTEGER, seq INTEGER);
CREATE INDEX IF NOT EXISTS callbacks_done ON callbacks(seq) WHERE seq IS NOT NULL;
`;

/** A callback's row: `state` null while it waits; `seq` orders completions by completers. */
export interface CallbackRow {
  secret: string;
  run_id: string;
  action_id: string;
  since: number;
  state: ActionStatus | null;
  outcome: string | null;
  done: number | null;
}

export interface WaitRow {
  action_id: string;
  kind: string;
  name: string | null;
  due: number | null;
  since: number;
}

export class WaitStore {
  private readonly s: Record<string, Statement>;

  constructor(private readonly db: Db) {
    db.exec(SCHEMA);
    const p = (sql: string): Statement => db.prepare(sql);
    this.s = {
      register: p(
        `INSERT OR IGNORE INTO durable_waits (action_id, run_id, kind, name, due, since) VALUES (?, ?, ?, ?, ?, ?)`,
      ),
      wait: p(`SELECT * FROM durable_waits WHERE action_id = ?`),
      runStatus: p(`SELECT status FROM runs WHERE id = ?`),
      send: p(`INSERT INTO signals (run_id, name, payload, sent) VALUES (?, ?, ?, ?)`),
      next: p(
        `SELECT seq, payload FROM signals WHERE run_id = ? AND name = ? AND consumed_by IS NULL ORDER BY seq LIMIT 1`,
      ),
      consume: p(`UPDATE signals SET consumed_by = ? WHERE seq = ? AND consumed_by IS NULL`),
      consumedBy: p(`SELECT payload FROM signals WHERE consumed_by = ? LIMIT 1`),
      since: p(`SELECT seq, run_id, name FROM signals WHERE seq > ? AND consumed_by IS NULL ORDER BY seq`),
      last: p(`SELECT COALESCE(MAX(seq), 0) AS seq FROM signals`),
      ofRun: p(`SELECT * FROM durable_waits WHERE run_id = ?`),
      cbRegister: p(`INSERT OR IGNORE INTO callbacks (secret, run_id, action_id, since) VALUES (?, ?, ?, ?)`),
      cbGet: p(`SELECT * FROM callbacks WHERE secret = ?`),
      cbEnd: p(`UPDATE callbacks SET state = ?, outcome = ?, done = ? WHERE secret = ? AND state IS NULL`),
      cbComplete: p(
        `UPDATE callbacks SET state = ?, outcome = ?, done = ?,
           seq = (SELECT COALESCE(MAX(seq), 0) + 1 FROM callbacks) WHERE secret = ? AND state IS NULL`,
      ),
      cbSince: p(`SELECT seq, secret, action_id FROM callbacks WHERE seq > ? ORDER BY seq`),
      cbLast: p(`SELECT COALESCE(MAX(seq), 0) AS seq FROM callbacks`),
    };
  }

  /** Records a wait the first time it is taken over; returns its row (the first one, after a restart). */
  register(actionId: CallId, runId: string, w: DurableWait, now: number): WaitRow {
    this.s["register"]!.run(
      actionId,
      runId,
      w.kind,
      w.kind === "signal" ? w.name : w.kind === "callback" ? w.secret : null,
      dueAt(w, now) ?? null,
      now,
    );
    return this.s["wait"]!.get(actionId) as WaitRow;
  }

  /** Stores a signal for a running run; a run that ended (or never existed) is an error that says so. */
  send(runId: string, name: string, payload: Payload, now: number): number {
    return this.db.transaction(() => {
      const run = this.s["runStatus"]!.get(runId) as { status: string } | undefined;
      if (!run) throw new RunEndedError(`no run ${runId}: signal ${JSON.stringify(name)} was not sent`);
      if (run.status !== "RUNNING")
        throw new RunEndedError(
          `run ${runId} has ended (${run.status}): signal ${JSON.stringify(name)} was not sent, since no wait can take it`,
        );
      return Number(this.s["send"]!.run(runId, name, payload, now).lastInsertRowid);
    })();
  }

  /** Consumes the oldest unconsumed signal `name` of `runId` for `waiter`, in one transaction. */
  take(runId: string, name: string, waiter: CallId): Payload | undefined {
    return this.db.transaction(() => {
      const row = this.s["next"]!.get(runId, name) as { seq: number; payload: string } | undefined;
      if (!row) return undefined;
      this.s["consume"]!.run(waiter, row.seq);
      return row.payload;
    })();
  }

  /** The payload a wait consumed before a restart, if any. */
  consumedBy(waiter: CallId): Payload | undefined {
    return (this.s["consumedBy"]!.get(waiter) as { payload: string } | undefined)?.payload;
  }

  /** Unconsumed signals sent after `seq` (by this process or another). */
  sentSince(seq: number): { seq: number; run_id: string; name: string }[] {
    return this.s["since"]!.all(seq) as { seq: number; run_id: string; name: string }[];
  }

  lastSeq(): number {
    return (this.s["last"]!.get() as { seq: number }).seq;
  }

  /** The waits of a run, for its status tree. */
  waitsOf(runId: string): Map<CallId, WaitRow> {
    return new Map((this.s["ofRun"]!.all(runId) as WaitRow[]).map((r) => [r.action_id, r]));
  }

  /** Records a callback when its call is first taken over; returns its row (as it is, after a restart). */
  registerCallback(secret: string, runId: string, actionId: CallId, now: number): CallbackRow {
    this.s["cbRegister"]!.run(secret, runId, actionId, now);
    return this.s["cbGet"]!.get(secret) as CallbackRow;
  }

  /**
   * Ends a callback that still waits (timed out, cancelled) and returns its row: if a completion got
   * there first, the row says so and the caller delivers that instead.
   */
  endCallback(secret: string, status: ActionStatus, outcome: Outcome, now: number): CallbackRow | undefined {
    this.s["cbEnd"]!.run(status, formatOutcome(outcome), now, secret);
    return this.s["cbGet"]!.get(secret) as CallbackRow | undefined;
  }

  /**
   * A completer's write (any process): the first completion of a callback that waits, in a run that
   * runs, is recorded; anything else is the error that says why. Returns the callback's action.
   */
  completeCallback(runId: string, secret: string, outcome: Outcome, now: number): CallbackRow {
    return this.db.transaction(() => {
      const id = shownId(runId, secret);
      const run = this.s["runStatus"]!.get(runId) as { status: string } | undefined;
      const cb = this.s["cbGet"]!.get(secret) as CallbackRow | undefined;
      if (!cb || cb.run_id !== runId) {
        if (!run) throw new UnknownCallbackError(`no run ${runId} in this store: callback ${id} is unknown`);
        if (run.status !== "RUNNING")
          throw new RunEndedError(
            `run ${runId} has ended (${run.status}): callback ${id} cannot be completed`,
          );
        throw new UnknownCallbackError(
          `run ${runId} has no callback ${id}: check the id (the whole string cb.id gave)`,
          { details: { running: true } },
        );
      }
      if (cb.state && cb.state !== "CANCELLED")
        throw new CallbackCompletedError(endedText(cb.state, cb.done ?? undefined, id));
      if (run?.status !== "RUNNING")
        throw new RunEndedError(
          `run ${runId} has ended (${run?.status ?? "deleted"}): callback ${id} cannot be completed`,
        );
      if (cb.state) throw new CallbackCompletedError(endedText(cb.state, cb.done ?? undefined, id));
      this.s["cbComplete"]!.run(outcome.ok ? "SUCCEEDED" : "FAILED", formatOutcome(outcome), now, secret);
      return cb;
    })();
  }

  /** Callbacks completed by completers after `seq` (this process or another). */
  completedSince(seq: number): { seq: number; secret: string; action_id: string }[] {
    return this.s["cbSince"]!.all(seq) as { seq: number; secret: string; action_id: string }[];
  }

  lastCompletion(): number {
    return (this.s["cbLast"]!.get() as { seq: number }).seq;
  }

  callback(secret: string): CallbackRow | undefined {
    return this.s["cbGet"]!.get(secret) as CallbackRow | undefined;
  }
}
