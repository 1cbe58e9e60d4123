/**
 * The pieces of `recover` below the semantic suite (docs/recover.md): a call's twin is the id the
 * same call had in the source run, the AWS call chunks carry twins without storing them per call,
 * a store from before recovery gains its columns, and the refusals say why.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import Database from "better-sqlite3";
import { callIdentity } from "../sdk/core/calls.ts";
import { HISTORY_VERSION, IDENTITY_VERSION } from "../sdk/core/history.ts";
import type { CallRecord } from "../sdk/core/history.ts";
import { checkRecoverable, rootTwins, twinsOf } from "../sdk/core/recover.ts";
import { decodeChunk, encodeChunk } from "../sdk/aws/store/history.ts";
import { actionPk } from "../sdk/aws/store/table.ts";
import { Store } from "../sdk/local/store.ts";
import { digest } from "../sdk/serde.ts";

function call(parent: string, task: string, args: string, n = 0, group = ""): CallRecord {
  const d = digest(args);
  return {
    v: HISTORY_VERSION,
    id: callIdentity(parent, task, group, d, n),
    parent,
    task,
    group,
    digest: d,
    n,
    args,
    idv: IDENTITY_VERSION,
  };
}

describe("recover: twins", () => {
  it("a call's twin at any depth is the id the same call had in each source run", () => {
    // The same calls made in three runs: a grandchild of the root in each.
    const ids = ["r-first", "r-second", "r-third"].map((root) => {
      const child = call(root, "t.branch", "[1]", 0, "stage");
      return { child, grandchild: call(child.id, "t.leaf", "[4]", 2) };
    });
    const [first, second, third] = ids as [(typeof ids)[0], (typeof ids)[0], (typeof ids)[0]];
    // The third run recovers the second, which recovered the first: its root's twins, newest first.
    const root = rootTwins(["r-second", "r-first"])!;
    const childTw = twinsOf(root, third.child);
    assert.deepEqual(childTw, [
      ["r-second", "r-second", second.child.id],
      ["r-first", "r-first", first.child.id],
    ]);
    assert.deepEqual(twinsOf(childTw, third.grandchild), [
      ["r-second", second.child.id, second.grandchild.id],
      ["r-first", first.child.id, first.grandchild.id],
    ]);
  });

  it("AWS call chunks store a recovered parent's twins once and give every call its own back", () => {
    const parent = "r-new/p";
    const ptw = rootTwins(["r-old"])!;
    const calls = [0, 1, 2].map((i) => {
      const c = call(parent, "t.leaf", `[${i}]`);
      return { ...c, tw: twinsOf(ptw, c) };
    });
    const item = {
      pk: actionPk(parent),
      sk: "C#000001#00000",
      z: encodeChunk(parent, calls),
      ptw: [["r-old", "r-old"]],
    };
    // Stored once per chunk: the rows themselves are the same as without recovery.
    const plain = calls.map(({ tw: _, ...c }) => c);
    assert.deepEqual(Buffer.from(item.z), Buffer.from(encodeChunk(parent, plain)));
    // A chunk's ptw holds [run, the parent's twin] (writeCalls); the parent's twin here is r-old.
    assert.deepEqual(decodeChunk(item), calls);
    assert.deepEqual(
      decodeChunk({ pk: item.pk, sk: item.sk, z: item.z }),
      plain,
      "a chunk of a run that recovers nothing",
    );
  });

  it("only a run that ended FAILED, CANCELLED or TIMED_OUT can be recovered, and the refusal says why", () => {
    for (const status of ["FAILED", "CANCELLED", "TIMED_OUT"])
      assert.doesNotThrow(() => checkRecoverable({ id: "r-1", task: "t.root", status }));
    assert.throws(() => checkRecoverable({ id: "r-1", task: "t.root", status: "RUNNING" }), {
      name: "ConfigurationError",
      message:
        /run r-1 \(t\.root\) cannot be recovered: it is still RUNNING: wait for it to end, or cancel it first/,
    });
    assert.throws(() => checkRecoverable({ id: "r-1", task: "t.root", status: "SUCCEEDED" }), {
      message: /cannot be recovered: it succeeded: there is nothing to repair/,
    });
  });
});

describe("recover: the local store", () => {
  it("a store written before recovery gains its columns when opened, and keeps its runs", () => {
    const dir = mkdtempSync(join(tmpdir(), "aloft-recover-store-"));
    try {
      const path = join(dir, "old.db");
      const old = new Database(path);
      old.exec(`CREATE TABLE runs (id TEXT PRIMARY KEY, task TEXT NOT NULL, module TEXT, args TEXT NOT NULL,
          status TEXT NOT NULL, created INTEGER NOT NULL, ended INTEGER, result TEXT, error TEXT,
          cancel_requested INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE actions (id TEXT PRIMARY KEY, run_id TEXT NOT NULL, parent TEXT, task TEXT NOT NULL,
          grp TEXT NOT NULL DEFAULT '', call TEXT, args TEXT NOT NULL, status TEXT NOT NULL,
          attempts INTEGER NOT NULL DEFAULT 0, replays INTEGER NOT NULL DEFAULT 0, outcome TEXT, waits TEXT,
          started INTEGER, ended INTEGER, seq INTEGER NOT NULL DEFAULT 0, window_key TEXT, window_idx INTEGER,
          window_limit INTEGER, dispatched INTEGER NOT NULL DEFAULT 1, cached INTEGER NOT NULL DEFAULT 0);
        INSERT INTO runs (id, task, args, status, created) VALUES ('r-old', 't.root', '[]', 'FAILED', 1);
        INSERT INTO actions (id, run_id, task, args, status, outcome) VALUES ('r-old/a', 'r-old', 't.leaf', '[]', 'SUCCEEDED', '{"v":1,"ok":true,"value":"7"}');`);
      old.close();
      const store = new Store(path);
      try {
        assert.equal(store.getRun("r-old")?.recovered_from, null);
        assert.deepEqual(store.recoveries("r-old"), []);
        assert.deepEqual(store.reusable([["r-old", "r-old", "r-old/a"]]), { run: "r-old", value: "7" });
        assert.equal(
          store.reusable([["r-other", "r-other", "r-old/a"]]),
          undefined,
          "a twin is looked up in its own run",
        );
        store.createRun({
          id: "r-new",
          task: "t.root",
          module: undefined,
          args: "[]",
          now: 2,
          recoveredFrom: "r-old",
        });
        assert.deepEqual(store.recoveries("r-old"), ["r-new"]);
        assert.deepEqual(store.recoveryChain("r-new"), ["r-old"]);
      } finally {
        store.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
