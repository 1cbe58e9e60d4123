/**
 * The embedded engine's SQLite store (sdk/local/store.ts), below the engine: what a suspension
 * too large for the page cache does to the cache, on a file store as the engine opens it, and how
 * a call record is kept and read back, in this layout and the one before it.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import type { CallRecord } from "../sdk/core/history.ts";
import { STORE_FORMAT, Store } from "../sdk/local/store.ts";
import type { NewRows } from "../sdk/local/store.ts";

describe("the local store", () => {
  const dir = mkdtempSync(join(tmpdir(), "aloft-store-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const calls = (parent: string, n: number): CallRecord[] =>
    Array.from({ length: n }, (_, i) => ({
      v: 1,
      id: `${parent}-${(i * 2654435761) % 2 ** 32}-${i}`,
      parent,
      task: "t.leaf",
      group: "",
      digest: "",
      n: 0,
      args: `[${i}]`,
    }));

  test("a suspension too large for the page cache widens it for its transaction only", () => {
    const store = new Store(join(dir, "widen.db"));
    try {
      const opened = store.db.pragma("cache_size", { simple: true });
      const during: unknown[] = [];
      const see = () => (during.push(store.db.pragma("cache_size", { simple: true })), true);
      assert.equal(opened, -4_000, "the store keeps a 4 MB cache");
      assert.equal(
        store.db.pragma("wal_autocheckpoint", { simple: true }),
        8_192,
        "and checkpoints at 32 MB",
      );
      // 80,000 calls: about 5 MB of index entries, past the store's 4 MB.
      const rows = store.applySuspension("r-1", "r-1", calls("r-1", 80_000), [], [], 0, see);
      assert.equal(rows.length, 80_000);
      assert.ok(rows.every((r) => typeof r === "number"));
      assert.ok(
        during.every((c) => typeof c === "number" && c === -5_000),
        `cache during: ${String(during[0])}`,
      );
      assert.equal(store.db.pragma("cache_size", { simple: true }), opened);

      // A small one leaves the cache as it is; so does a transaction that fails.
      during.length = 0;
      store.applySuspension("r-1", "p-small", calls("p-small", 10), [], [], 0, see);
      assert.deepEqual(new Set(during), new Set([opened]));
      assert.throws(
        () =>
          store.applySuspension("r-1", "p-fails", calls("p-fails", 80_000), [], [], 0, () => {
            throw new Error("no slot");
          }),
        /no slot/,
      );
      assert.equal(store.db.pragma("cache_size", { simple: true }), opened);
      // Nothing of the failed suspension was written.
      assert.equal(store.history("p-fails").calls.size, 0);
      assert.equal(store.history("r-1").calls.size, 80_000);
    } finally {
      store.close();
    }
  });

  const rich: CallRecord[] = [
    {
      v: 1,
      id: "c-window",
      parent: "p-rich",
      task: "t.leaf",
      group: "g/h",
      digest: "d-1",
      n: 2,
      args: '["a",1]',
      window: { key: "p-rich|m|0", index: 4, limit: 3 },
      idv: 1,
    },
    {
      v: 1,
      id: "c-settings",
      parent: "p-rich",
      task: "t.other",
      group: "",
      digest: "d-2",
      n: 0,
      args: "[]",
      settings: { retries: { count: 3, backoff: { baseMs: 10, factor: 2, capMs: 100 } }, timeoutMs: 500 },
      tw: [["r-0", "p-0", "c-0"]],
      idv: 1,
    },
  ];
  /** The records as history() gives them: no inputs digest (the replay re-makes it). */
  test("a suspension's rows are each call's own, recorded before or not", () => {
    const store = new Store(join(dir, "rows.db"));
    try {
      const rowOf = store.db.prepare("SELECT rowid FROM actions WHERE id = ?").pluck();
      const cs = calls("p-rows", 100);
      // Calls recorded already (a replay that records them again): one in the first 32, two later.
      const old = [cs[5]!, cs[40]!, cs[97]!];
      const oldRows = store.applySuspension("r-rows", "p-rows", old, [], [], 0, () => true);
      // Another parent's rows in between, so the new ones do not start where the old ones ended.
      store.applySuspension("r-rows", "p-other", calls("p-other", 7), [], [], 0, () => true);
      const rows = store.applySuspension("r-rows", "p-rows", cs, [], [], 0, () => true);
      assert.equal(rows.length, 100);
      cs.forEach((c, i) => {
        if (old.includes(c)) assert.equal(rows[i], undefined, `call ${i} was recorded before`);
        else assert.equal(rows[i], rowOf.get(c.id), `call ${i}`);
      });
      assert.deepEqual(
        old.map((c) => rowOf.get(c.id)),
        oldRows,
      );
      // All new: the rows follow the table's last one.
      const fresh = calls("p-fresh", 70);
      const freshRows = store.applySuspension("r-rows", "p-fresh", fresh, [], [], 0, () => true);
      assert.deepEqual(
        freshRows,
        fresh.map((c) => rowOf.get(c.id)),
      );
    } finally {
      store.close();
    }
  });

  test("deferred rows are inserted with what their calls did, and the parent's wait after the last", () => {
    const store = new Store(join(dir, "deferred.db"));
    try {
      store.createRun({ id: "r-d", task: "t.root", module: undefined, args: "[]", now: 1 });
      store.startAttempt("r-d", 1, 2);
      const cs = calls("r-d", 70);
      // One recorded already (a resumed replay made it again): its start and end are updates.
      store.applySuspension("r-d", "r-d", [cs[69]!], [], undefined, [69], () => true);
      const ok = (i: number) => ({ ok: true as const, value: String(i) });
      const done = (i: number) => ({
        id: cs[i]!.id,
        row: undefined,
        status: "SUCCEEDED" as const,
        outcome: ok(i),
        ended: 20 + i,
        attempts: 1,
      });
      // Ended (started or not), started only, or neither.
      const starts = new Map(
        cs.flatMap((_, i) =>
          i % 3 === 2 ? [] : [[i, { attempts: 1, at: 10 + i, row: undefined }] as const],
        ),
      );
      const ends = new Map(cs.flatMap((_, i) => (i % 3 === 0 || i === 69 ? [[i, done(i)] as const] : [])));
      const batch = (indexes: number[]) => ({
        runId: "r-d",
        parent: "r-d",
        calls: cs,
        firstSeq: 0,
        indexes,
        starts,
        ends,
      });
      const waits = [{ kind: "call" as const, id: cs[0]!.id }];
      // The first 40 without the wait, then the rest with it.
      const head: NewRows = { batches: [batch(cs.slice(0, 40).map((_, i) => i))], suspends: [] };
      store.write(new Map(), [], head);
      assert.equal(store.runActions("r-d").find((a) => a.id === "r-d")!.status, "RUNNING");
      const tail: NewRows = {
        batches: [batch(cs.slice(40).map((_, i) => 40 + i))],
        suspends: [["r-d", waits]],
      };
      const changed = store.write(new Map(), [], tail);
      const byId = new Map(store.runActions("r-d").map((a) => [a.id, a]));
      const root = byId.get("r-d")!;
      assert.equal(root.status, "SUSPENDED");
      assert.deepEqual(JSON.parse(root.waits!), waits);
      const rowOf = store.db.prepare("SELECT rowid FROM actions WHERE id = ?").pluck();
      assert.deepEqual(
        [...head.rowids![0]!, ...tail.rowids![0]!],
        cs.map((c, i) => (i === 69 ? undefined : rowOf.get(c.id))),
      );
      cs.forEach((c, i) => {
        const a = byId.get(c.id)!;
        const started = i % 3 !== 2;
        const ended = i % 3 === 0 || i === 69;
        assert.deepEqual(
          [
            a.seq,
            a.status,
            a.attempts,
            a.replays,
            a.started,
            a.ended,
            a.outcome && JSON.parse(a.outcome).value,
          ],
          [
            i,
            ended ? "SUCCEEDED" : started ? "RUNNING" : "QUEUED",
            started || ended ? 1 : 0,
            started ? 1 : 0,
            started ? 10 + i : null,
            ended ? 20 + i : null,
            ended ? String(i) : null,
          ],
          `call ${i}`,
        );
      });
      assert.ok(changed.has(cs[69]!.id), "the row recorded before took its result");
    } finally {
      store.close();
    }
  });

  test("a history with a call missing from its seqs (a crash mid-suspension) is not in call order", () => {
    const store = new Store(join(dir, "gaps.db"));
    try {
      const cs = calls("p-gap", 5);
      store.applySuspension("r-g", "p-gap", [cs[0]!, cs[1]!, cs[3]!], [], [], [0, 1, 3], () => true);
      assert.equal(store.history("p-gap").inCallOrder, false);
      store.applySuspension("r-g", "p-whole", calls("p-whole", 5), [], [], 0, () => true);
      assert.equal(store.history("p-whole").inCallOrder, true);
    } finally {
      store.close();
    }
  });

  test("a result is written over a live row only: a late or duplicate one changes nothing", () => {
    const store = new Store(join(dir, "ended.db"));
    try {
      const cs = calls("p-ended", 3);
      const rows = store.applySuspension("r-ended", "p-ended", cs, [], [], 0, () => true);
      const done = (i: number, value: string, byRow: boolean) => ({
        id: cs[i]!.id,
        row: byRow ? rows[i] : undefined,
        status: "SUCCEEDED" as const,
        outcome: { ok: true as const, value },
        ended: 1,
        attempts: 1,
      });
      const start = new Map([[cs[1]!.id, { attempts: 1, at: 1, row: rows[1] }]]);
      // By rowid and by id, with and without the attempt's start.
      assert.deepEqual(
        store.write(start, [done(0, "1", true), done(1, "2", true), done(2, "3", false)]),
        new Set(cs.map((c) => c.id)),
      );
      assert.deepEqual(
        store.write(start, [done(0, "9", true), done(1, "9", true), done(2, "9", false)]),
        new Set(),
      );
      const outcomes = store.history("p-ended").outcomes;
      assert.deepEqual(
        cs.map((c) => outcomes.get(c.id)),
        ["1", "2", "3"].map((value) => ({ ok: true, value })),
      );
      for (const status of ["FAILED", "CANCELLED", "TIMED_OUT"] as const) {
        store.db.prepare("UPDATE actions SET status = ? WHERE id = ?").run(status, cs[0]!.id);
        assert.deepEqual(store.write(new Map(), [done(0, "9", true)]), new Set(), status);
      }
    } finally {
      store.close();
    }
  });

  const read = (cs: CallRecord[]) => new Map(cs.map((c) => [c.id, { ...c, digest: "" }]));

  test("a call record keeps only what its row has no column for, and is read back whole", () => {
    const store = new Store(join(dir, "slim.db"));
    try {
      store.applySuspension("r-rich", "p-rich", rich, [], [], 0, () => true);
      const stored = store.db
        .prepare("SELECT id, call FROM actions WHERE parent = ? ORDER BY seq")
        .all("p-rich") as {
        id: string;
        call: string;
      }[];
      assert.deepEqual(
        stored.map((r) => Object.keys(JSON.parse(r.call) as object)),
        [
          ["v", "n", "idv"],
          ["v", "n", "idv", "settings", "tw"],
        ],
      );
      assert.deepEqual(store.history("p-rich").calls, read(rich));
    } finally {
      store.close();
    }
  });

  test("a store of the layout before is read as it is; one of a newer layout is refused", () => {
    const path = join(dir, "old.db");
    new Store(path).close();
    const old = new Store(path);
    try {
      // As the format-1 store wrote a call: its whole record, columns repeated.
      const ins = old.db.prepare(
        `INSERT INTO actions (id, run_id, parent, task, grp, call, args, status, seq, window_key, window_idx, window_limit)
         VALUES (?, 'r-old', 'p-rich', ?, ?, ?, ?, 'QUEUED', ?, ?, ?, ?)`,
      );
      rich.forEach((c, i) =>
        ins.run(
          c.id,
          c.task,
          c.group,
          JSON.stringify(c),
          c.args,
          i,
          c.window?.key ?? null,
          c.window?.index ?? null,
          c.window?.limit ?? null,
        ),
      );
      old.db.prepare("UPDATE meta SET v = '1' WHERE k = 'format'").run();
    } finally {
      old.close();
    }
    const store = new Store(path);
    try {
      assert.deepEqual(store.history("p-rich").calls, read(rich));
      // Opened for writing, it now holds records of this layout: an older Aloft must refuse it.
      assert.equal(
        (store.db.prepare("SELECT v FROM meta WHERE k = 'format'").get() as { v: string }).v,
        String(STORE_FORMAT),
      );
      store.db.prepare("UPDATE meta SET v = ? WHERE k = 'format'").run(String(STORE_FORMAT + 1));
    } finally {
      store.close();
    }
    assert.throws(
      () => new Store(path),
      new RegExp(
        `written by a newer Aloft \\(format v${STORE_FORMAT + 1}, this is v${STORE_FORMAT}\\); upgrade Aloft`,
      ),
    );
  });
});
