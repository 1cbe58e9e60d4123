/**
 * The embedded engine while its workers load the task modules: a run's root runs on the engine's
 * thread meanwhile (its children wait for a worker), and when no worker can load them the run ends
 * FAILED with why (docs/performance.md, start-up). The workers' module waits for a gate file, so
 * what happened before any worker loaded is seen in the store, not guessed from timings.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, describe, it } from "node:test";
import Database from "better-sqlite3";
import { init, run } from "aloft";
import { resume, shutdown } from "../sdk/run.ts";
import * as g from "./fixtures/gated-tasks.ts";

const dir = mkdtempSync(join(tmpdir(), "aloft-startup-"));
after(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  await shutdown();
  delete process.env["ALOFT_TEST_GATE"];
  delete process.env["ALOFT_TEST_WORKER_THROWS"];
  delete process.env["ALOFT_TEST_ONE_LOADS"];
});

interface Row {
  id: string;
  parent: string | null;
  status: string;
  attempts: number;
}

/** Reads the store at `path` beside the engine (WAL readers do not block it). */
function read<T>(path: string, q: (db: Database.Database) => T): T {
  const db = new Database(path, { fileMustExist: true });
  try {
    return q(db);
  } finally {
    db.close();
  }
}

const actions = (path: string): Row[] =>
  existsSync(path)
    ? read(
        path,
        (db) => db.prepare("SELECT id, parent, status, attempts FROM actions ORDER BY rowid").all() as Row[],
      )
    : [];

const runRow = (path: string, id: string) =>
  read(
    path,
    (db) =>
      db.prepare("SELECT status, error FROM runs WHERE id = ?").get(id) as {
        status: string;
        error: string | null;
      },
  );

/** Starts `doubles(n)` on a store of its own whose workers wait for its gate file. */
async function startGated(name: string, n: number, workers = 1) {
  const store = join(dir, `${name}.db`);
  const gate = join(dir, `${name}.gate`);
  process.env["ALOFT_TEST_GATE"] = gate;
  await init({ store, workers });
  return { store, gate, started: run(g.doubles, n) };
}

/** Waits until the root of the store's one run has suspended on its `n` children. */
async function rootSuspended(path: string, n: number): Promise<Row[]> {
  const deadline = Date.now() + 60_000; // a hang guard, not a timing assertion
  for (;;) {
    const rows = actions(path);
    if (rows[0]?.status === "SUSPENDED" && rows.length === n + 1) return rows;
    if (Date.now() > deadline)
      assert.fail(`the root did not suspend while the workers loaded: ${JSON.stringify(rows)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("embedded engine start-up", () => {
  it("a run's root runs while the workers load; its children wait for a worker", async () => {
    const { store, gate, started } = await startGated("early", 3);
    const rows = await rootSuspended(store, 3);
    // No worker has loaded the module (its gate is shut): the children are recorded, not started.
    assert.deepEqual(
      rows.slice(1).map((r) => [r.status, r.attempts]),
      [
        ["QUEUED", 0],
        ["QUEUED", 0],
        ["QUEUED", 0],
      ],
    );
    writeFileSync(gate, "");
    const r = await started;
    assert.deepEqual(await r.result(), [0, 2, 4]);
  });

  it("when no worker can load the task modules, run() says why and the run is recorded FAILED", async () => {
    const store = join(dir, "broken.db");
    process.env["ALOFT_TEST_WORKER_THROWS"] = "1";
    await init({ store, workers: 2 });
    await assert.rejects(
      run(g.doubles, 2),
      /a worker could not load the task modules[\s\S]*cannot load in a worker/,
    );
    const [root] = actions(store);
    assert.ok(root, "the run was recorded");
    const row = runRow(store, root.id);
    assert.equal(row.status, "FAILED");
    assert.match(row.error ?? "", /cannot load in a worker/);
    // That engine closed: the next run opens another, whose workers load the module.
    delete process.env["ALOFT_TEST_WORKER_THROWS"];
    const r = await run(g.doubles, 2);
    assert.deepEqual(await r.result(), [0, 2]);
  });

  it("a shutdown while the workers load leaves the run to resume, and a resume waits for a worker that can load", async () => {
    const { store, gate, started } = await startGated("resume", 2);
    const [root] = await rootSuspended(store, 2);
    await shutdown(); // stops the workers before they loaded: the run stays as it was
    await assert.rejects(started, /before it loaded the task modules/);
    assert.equal(runRow(store, root!.id).status, "RUNNING");
    // A resume whose workers cannot load the module leaves the run RUNNING, to resume later.
    process.env["ALOFT_TEST_WORKER_THROWS"] = "1";
    await init({ store, workers: 1 });
    await assert.rejects(resume(root!.id), /cannot load in a worker/);
    assert.equal(runRow(store, root!.id).status, "RUNNING");
    delete process.env["ALOFT_TEST_WORKER_THROWS"];
    writeFileSync(gate, "");
    await init({ store, workers: 1 });
    const r = await resume(root!.id);
    assert.deepEqual(await r.result(), [0, 2]);
  });

  it("a shutdown that stops a worker still loading, after a run that did not need it, warns of nothing", async () => {
    // One worker loads and runs everything; the other waits at its gate until the engine stops it.
    // Its stop used to be reported as a worker that could not load the modules, to whoever ran the
    // quickest of runs (the starter project's `npm start`, on a machine whose second core was busy).
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on("warning", onWarning);
    try {
      process.env["ALOFT_TEST_ONE_LOADS"] = join(dir, "one.loads");
      const { started } = await startGated("one", 3, 2);
      assert.deepEqual(await (await started).result(), [0, 2, 4]);
      await shutdown();
      await new Promise((r) => setImmediate(r)); // a warning is emitted on the next tick
      assert.deepEqual(warnings, []);
    } finally {
      process.off("warning", onWarning);
    }
  });
});
