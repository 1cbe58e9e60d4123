/**
 * The embedded engine's SQLite store (sdk/local/store.ts), below the engine: what a suspension
 * too large for the page cache does to the cache, on a file store as the engine opens it.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import type { CallRecord } from "../sdk/core/history.ts";
import { Store } from "../sdk/local/store.ts";

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
});
