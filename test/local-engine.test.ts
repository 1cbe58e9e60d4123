/** Properties only the embedded engine has: durability across a kill, the store lock, workers. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { HistoryError, StoreLockedError, init, run } from "aloft";
import { getEngine, shutdown } from "../sdk/run.ts";
import { StoreLock } from "../sdk/local/lock.ts";
import { Store } from "../sdk/local/store.ts";
import { ROOT, aloft } from "./helpers/cli.ts";
import * as t from "./fixtures/cli-tasks.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function execLog(dir: string): string[] {
  const f = join(dir, "exec.log");
  return existsSync(f) ? readFileSync(f, "utf8").trim().split("\n") : [];
}

/** Starts `slowFanOut(n)` in another process on `store`; `id()` is its run id once printed. */
function startElsewhere(store: string, n: number, env: Record<string, string>) {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(ROOT, "test/fixtures/start-and-wait.ts"), store, String(n)],
    {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.on("close", r));
  return { child, exited, id: () => out.trim() };
}

describe("embedded engine", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "aloft-engine-"));
    process.env["ALOFT_TEST_DIR"] = dir;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("a run killed mid-way resumes from its history without re-running completed children", async () => {
    const store = join(dir, "crash.db");
    const env = { ALOFT_TEST_DIR: dir, ALOFT_TEST_SLEEP: "150" };
    const bg = startElsewhere(store, 12, env);
    const recorded = (): number => {
      if (!existsSync(store) || !bg.id()) return 0;
      const s = new Database(store, { readonly: true });
      try {
        const row = s
          .prepare("SELECT COUNT(*) AS n FROM actions WHERE parent = ? AND status = 'SUCCEEDED'")
          .get(bg.id()) as { n: number };
        return row.n;
      } finally {
        s.close();
      }
    };
    for (let i = 0; i < 400 && recorded() < 5; i++) await sleep(25);
    bg.child.kill("SIGKILL");
    await bg.exited;
    const id = bg.id();
    assert.match(id, /^r-/);

    const before = new Store(store);
    const done = before.runActions(id).filter((a) => a.status === "SUCCEEDED" && a.parent);
    before.close();
    assert.ok(done.length >= 5 && done.length < 12, `${done.length} children done before the kill`);

    const runs = await aloft(["--store", store, "runs"], { cwd: ROOT });
    assert.match(runs.stdout, new RegExp(`${id}\\s+RUNNING .*its process stopped: aloft resume ${id}`));

    const r = await aloft(["--store", store, "resume", id], { cwd: ROOT, env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(Number(r.stdout), (12 * 11) / 2);

    const log = execLog(dir);
    for (const a of done) {
      const i = JSON.parse(a.args)[0] as number;
      assert.equal(
        log.filter((l) => l === `start ${i}`).length,
        1,
        `child ${i} finished before the kill and ran again`,
      );
    }
    for (let i = 0; i < 12; i++) assert.ok(log.includes(`done ${i}`), `child ${i} never finished`);
  });

  it("a suspension of calls of every kind (run at once, cached, durable waits): each recorded once, in order, and run once", async () => {
    const sub = mkdtempSync(join(dir, "wide-"));
    const store = join(sub, "wide.db");
    const n = 700;
    const expected = Array.from({ length: n }, (_, i) =>
      i % 100 === 7 ? 0 : i % 50 === 3 ? (i % 5) * 10 : i,
    ).reduce((x, y) => x + y, 0);
    const saved = [process.env["ALOFT_TEST_DIR"], process.env["ALOFT_TEST_SLEEP"]];
    process.env["ALOFT_TEST_DIR"] = sub;
    process.env["ALOFT_TEST_SLEEP"] = "1";
    await init({ store, workers: 2 });
    try {
      // Twice: the second run's cached calls, some among the first sent, are hits.
      for (const round of [1, 2]) {
        rmSync(join(sub, "exec.log"), { force: true });
        const r = await run(t.mixedWide, n);
        assert.equal(await r.result(), expected, `round ${round}`);
        const log = execLog(sub);
        for (let i = 0; i < n; i++) {
          if (i % 100 === 7 || i % 50 === 3) continue;
          assert.equal(log.filter((l) => l === `start ${i}`).length, 1, `round ${round}: child ${i}`);
        }
        const s = new Store(store, { readonly: true });
        const kids = s.runActions(r.id).filter((a) => a.parent !== null);
        s.close();
        assert.deepEqual(
          kids.map((k) => [k.seq, k.status]),
          kids.map((_, i) => [i, "SUCCEEDED"]),
        );
        const cached = kids.filter((k) => k.cached === 1).map((k) => k.seq);
        assert.deepEqual(
          cached,
          round === 1 ? [] : kids.filter((k) => k.seq % 50 === 3).map((k) => k.seq),
          `round ${round}: cache hits`,
        );
      }
    } finally {
      await shutdown();
      // Restored as they were: assigning undefined to process.env would store "undefined".
      for (const [k, v] of [
        ["ALOFT_TEST_DIR", saved[0]],
        ["ALOFT_TEST_SLEEP", saved[1]],
      ] as const)
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    }
  });

  it("a crash while a suspension's calls are partly written resumes: those recorded matched, the rest made", async () => {
    const sub = mkdtempSync(join(dir, "mid-suspension-"));
    const store = join(sub, "crash.db");
    // Children that take longer than a write's delay: the first ones start, and are written, before the rest.
    const env = { ALOFT_TEST_DIR: sub, ALOFT_TEST_SLEEP: "50" };
    const n = 300;
    const child = spawn(
      process.execPath,
      ["--import", "tsx", join(ROOT, "test/fixtures/crash-mid-suspension.ts"), store, String(n)],
      { cwd: ROOT, env: { ...process.env, ...env }, stdio: "ignore" },
    );
    const signal = await new Promise<NodeJS.Signals | null>((r) => child.on("close", (_code, sig) => r(sig)));
    assert.equal(signal, "SIGKILL", "the fixture died where it meant to");

    // The root is RUNNING (its wait unwritten), with the calls that started first recorded and
    // the rest not.
    const s = new Store(store);
    const [run] = s.listRuns(1);
    const rows = s.runActions(run!.id);
    s.close();
    const root = rows.find((r) => r.parent === null)!;
    const kids = rows.filter((r) => r.parent !== null);
    assert.equal(root.status, "RUNNING");
    assert.equal(root.waits, null);
    assert.ok(kids.length > 0 && kids.length < n, `${kids.length} of ${n} calls recorded`);
    assert.equal(new Set(kids.map((k) => k.seq)).size, kids.length);
    assert.ok(
      kids.every((k) => k.seq < n && k.status !== "QUEUED"),
      "only calls that started are recorded",
    );

    const r = await aloft(["--store", store, "resume", run!.id], { cwd: ROOT, env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(Number(r.stdout), (n * (n - 1)) / 2);
    const log = execLog(sub);
    for (let i = 0; i < n; i++) assert.ok(log.includes(`done ${i}`), `child ${i} never finished`);
    const after = new Store(store);
    const ended = after.runActions(run!.id).filter((a) => a.parent !== null);
    after.close();
    assert.equal(ended.length, n);
    assert.deepEqual(
      ended.map((a) => [a.seq, a.status]),
      ended.map((_, i) => [i, "SUCCEEDED"]),
      "each call recorded once, in call order",
    );
  });

  // (A timeout: without store.ts's check of a history's seqs the resume never ended.)
  it(
    "a crash after any of a run's first writes resumes: every call recorded once and run to its result",
    { timeout: 300_000 },
    async () => {
      // More calls than run at once on the engine's thread (256): their rows are written in parts.
      const n = 200;
      const sum = (n * (n - 1)) / 2;
      const mixed = Array.from({ length: n }, (_, i) =>
        i % 100 === 7 ? 0 : i % 50 === 3 ? (i % 5) * 10 : i,
      );
      const expected = [sum, sum, mixed.reduce((x, y) => x + y, 0), n];
      // Each k kills the run right after its k-th write: starts, results and calls written in part,
      // parents whose waits are not written yet, and, at the later ones, children's own suspensions.
      let partial = 0; // crashes that left a parent RUNNING with some of its calls recorded
      for (const k of [1, 2, 3, 4, 6, 9]) {
        const sub = mkdtempSync(join(dir, `crash-at-${k}-`));
        const store = join(sub, "crash.db");
        const env = { ALOFT_TEST_DIR: sub, ALOFT_TEST_SLEEP: "15" };
        const child = spawn(
          process.execPath,
          ["--import", "tsx", join(ROOT, "test/fixtures/crash-at-write.ts"), store, String(k), String(n)],
          { cwd: ROOT, env: { ...process.env, ...env }, stdio: "ignore" },
        );
        const signal = await new Promise<NodeJS.Signals | null>((r) =>
          child.on("close", (_c, sig) => r(sig)),
        );
        assert.equal(signal, "SIGKILL", `k=${k}: the fixture died at its write`);
        const before = new Store(store, { readonly: true });
        const [crashed] = before.listRuns(1);
        const was = before.runActions(crashed!.id);
        before.close();
        const recorded = (id: string) => was.filter((a) => a.parent === id).length;
        if (was.some((a) => a.status === "RUNNING" && recorded(a.id) > 0 && recorded(a.id) < n)) partial++;
        const r = await aloft(["--store", store, "resume", crashed!.id], { cwd: ROOT, env });
        assert.equal(r.code, 0, `k=${k}: ${r.stderr}`);
        assert.deepEqual(JSON.parse(r.stdout), expected, `k=${k}`);
        const after = new Store(store, { readonly: true });
        const rows = after.runActions(crashed!.id);
        after.close();
        const parents = new Map<string, typeof rows>();
        for (const a of rows) if (a.parent) parents.set(a.parent, [...(parents.get(a.parent) ?? []), a]);
        // The root's four children and each one's n calls, each once, all ended well.
        assert.deepEqual(
          [...parents.values()].map((kids) => kids.length).sort((x, y) => x - y),
          [4, n, n, n, n],
          `k=${k}: calls per parent`,
        );
        for (const kids of parents.values()) {
          // (Calls made again after a crash take seqs after the recorded ones: distinct, not always 0..n-1.)
          assert.equal(new Set(kids.map((a) => a.seq)).size, kids.length, `k=${k}: seqs`);
          assert.ok(
            kids.every((a) => a.status === "SUCCEEDED"),
            `k=${k}: ${kids.map((a) => a.status).join(" ")}`,
          );
        }
      }
      assert.ok(partial > 0, "some crash left a suspension's calls written in part");
    },
  );

  it("a result is written soon after it arrives, though nothing else happens for a while", async () => {
    const sub = mkdtempSync(join(dir, "soon-"));
    const store = join(sub, "soon.db");
    await init({ store, workers: 0 });
    try {
      const r = await run(t.quickBesideSlow, 3_000);
      // Read as another process would (aloft status): the quick child's row, while the slow one runs.
      const reader = new Store(store, { readonly: true });
      let quick: string | undefined;
      let slow: string | undefined;
      try {
        for (let i = 0; i < 100 && quick !== "SUCCEEDED"; i++) {
          await sleep(20);
          const kids = reader.runActions(r.id).filter((a) => a.parent !== null);
          quick = kids.find((k) => k.task.endsWith("add"))?.status;
          slow = kids.find((k) => k.task.endsWith("pause"))?.status;
        }
      } finally {
        reader.close();
      }
      assert.equal(quick, "SUCCEEDED", "the quick child's result was written");
      assert.equal(slow, "RUNNING", "while the slow one still ran");
      assert.deepEqual(await r.result(), [3, 3_000]);
    } finally {
      await shutdown();
    }
  });

  it("a suspension's calls that have not started are written within VISIBLE_MS, with the parent's wait", async () => {
    const sub = mkdtempSync(join(dir, "visible-"));
    const store = join(sub, "visible.db");
    const saved = process.env["ALOFT_TEST_DIR"];
    process.env["ALOFT_TEST_DIR"] = sub;
    // On the engine's thread, 256 run at once (pool.ts InlineExecutor): the other 44 wait unstarted.
    await init({ store, workers: 0 });
    const n = 300;
    const r = await run(t.gatedGather, n);
    const reader = new Store(store, { readonly: true });
    try {
      // Read as another process would (aloft status), until every call is there.
      let kids = reader.runActions(r.id).filter((a) => a.parent !== null);
      for (let i = 0; i < 500 && kids.length < n; i++) {
        await sleep(20);
        kids = reader.runActions(r.id).filter((a) => a.parent !== null);
      }
      const root = reader.runActions(r.id).find((a) => a.parent === null)!;
      assert.equal(kids.length, n, "every call written, started or not");
      assert.equal(kids.filter((k) => k.status === "RUNNING").length, 256);
      assert.equal(kids.filter((k) => k.status === "QUEUED").length, n - 256);
      assert.equal(root.status, "SUSPENDED");
      assert.ok(root.waits, "with its wait");
      writeFileSync(join(sub, "release"), "");
      assert.equal(await r.result(), n);
      const ended = reader.runActions(r.id).filter((a) => a.parent !== null);
      assert.deepEqual(
        ended.map((k) => [k.seq, k.status, k.replays]),
        ended.map((_, i) => [i, "SUCCEEDED", 1]),
      );
    } finally {
      reader.close();
      await shutdown();
      process.env["ALOFT_TEST_DIR"] = saved;
    }
  });

  it("a store in use by a live process is refused with a clear error", async () => {
    const store = join(dir, "locked.db");
    const lock = StoreLock.acquire(store);
    try {
      const r = await aloft(
        ["--store", store, "run", join(ROOT, "test/fixtures/cli-tasks.ts"), "add", "1", "2"],
        { cwd: ROOT },
      );
      assert.equal(r.code, 2);
      assert.match(r.stderr, new RegExp(`in use by process ${process.pid}`));
      assert.throws(() => StoreLock.acquire(store), StoreLockedError);
    } finally {
      lock.release();
    }
  });

  it("CPU-bound children run truly in parallel on the worker pool", async () => {
    await init({ store: ":memory:", workers: 2 });
    try {
      // Both workers loaded: a run starts on the first worker ready, and the second child would
      // wait for the other worker's start-up under load (sdk/local/pool.ts, room).
      await getEngine();
      const r = await run(t.parallelSpins, 400);
      const [a, b] = (await r.result()) as { start: number; end: number }[];
      assert.ok(
        a!.start < b!.end && b!.start < a!.end,
        `intervals do not overlap: ${JSON.stringify([a, b])}`,
      );
    } finally {
      await shutdown();
    }
  });

  it("placement by measured cost: a task that costs CPU stays on the pool, a cheap one moves to the engine's thread", async () => {
    // The engine runs a task whose body proved cheap (under 0.2 ms over 32 runs) on its own thread.
    // `where` spins 1 ms: every run of it, the 33rd and later included, belongs on the pool.
    await init({ store: ":memory:", workers: 2 });
    try {
      const costly = (await (await run(t.placedRounds, 4, 20, false)).result()) as boolean[];
      assert.equal(costly.length, 80);
      assert.deepEqual(
        costly.flatMap((m, i) => (m ? [i] : [])),
        [],
        "runs of a CPU-bound task placed on the engine's thread",
      );
      // `whereCheap` does next to nothing: after its first 32 runs, the rest run on this thread.
      const cheap = (await (await run(t.placedRounds, 4, 20, true)).result()) as boolean[];
      assert.ok(
        cheap.slice(0, 20).every((m) => !m),
        "measured on the pool first",
      );
      assert.ok(
        cheap.slice(60).every((m) => m),
        `the last round ran inline: ${JSON.stringify(cheap)}`,
      );
    } finally {
      await shutdown();
    }
  });

  it("a task not yet placed is placed by its bodies' synchronous segments, before those bodies end", async () => {
    // The first 32 children go to the pool, as many as measuring the task takes (test/dispatch.test.ts),
    // and wait for a marker that any later child writes as it starts. The later ones are dispatched
    // once the pool has reported the first ones' synchronous segments (to the engine's thread if
    // those were cheap, to the pool if not). Had placement waited for the first ones to end, they
    // would have given up after 20 s.
    await init({ store: ":memory:", workers: 2 });
    try {
      const marker = join(dir, "probe-marker");
      const got = (await (await run(t.awaitMarkers, marker, 40)).result()) as {
        i: number;
        gaveUp: boolean;
      }[];
      assert.equal(got.length, 40);
      assert.deepEqual(
        got.filter((g) => g.gaveUp).map((g) => g.i),
        [],
        "children that waited for a later one to start in vain",
      );
    } finally {
      await shutdown();
    }
  });

  it("a CPU-bound child past its timeout is stopped, its worker replaced, and the run goes on", async () => {
    await init({ store: ":memory:", workers: 1 });
    try {
      const r = await run(t.survivesTimeout);
      assert.deepEqual(await r.result(), ["TaskTimeoutError", 5]);
    } finally {
      await shutdown();
    }
  });

  it("a parent awaiting plain I/O (not a child, not trace) gets a warning naming it", async () => {
    await init({ store: ":memory:", workers: 0 });
    const warnings: string[] = [];
    (await getEngine()).on("warning", (w) => warnings.push(w));
    try {
      assert.equal(await (await run(t.awaitsTimer)).result(), 2);
      assert.ok(
        warnings.some((w) => w.includes("cli.awaitsTimer") && w.includes("trace(")),
        warnings.join("\n"),
      );
    } finally {
      await shutdown();
    }
  });

  it("a parent awaiting children in turn is continued after its first resume, not replayed at each", async () => {
    await init({ store: join(dir, "continued.db"), workers: 0 });
    try {
      for (const n of [3, 40]) {
        t.bodyStarts.sequentialAdds = 0;
        const r = await run(t.sequentialAdds, n);
        assert.equal(await r.result(), (n * (n - 1)) / 2);
        // Its first run, and the fresh replay of its first resume: the rest continue that replay.
        assert.equal(t.bodyStarts.sequentialAdds, 2, `body starts for ${n} children`);
        assert.equal((await getEngine()).replays.get(r.id), n, "every resume still counts");
      }
    } finally {
      await shutdown();
    }
  });

  it("a parent streaming a map continues its replay at every resume after the first", async () => {
    await init({ store: join(dir, "streamed.db"), workers: 0 });
    try {
      t.bodyStarts.streamedAdds = 0;
      const r = await run(t.streamedAdds, 40);
      assert.equal(await r.result(), (40 * 41) / 2);
      const replays = (await getEngine()).replays.get(r.id)!;
      assert.ok(replays >= 4, `resumed ${replays} times: the test needs several`);
      assert.equal(t.bodyStarts.streamedAdds, 2, "its first run and its first resume's fresh replay");
    } finally {
      await shutdown();
    }
  });

  it("a script that drives the engine at top level runs once: its workers start no engine of their own", async () => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", join(ROOT, "test/fixtures/script-with-engine.ts")],
      {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    // Each worker's import started an engine of its own, whose workers imported the script again:
    // the process grew without end and never printed. Stopped here rather than by the test runner.
    const guard = setTimeout(() => child.kill("SIGKILL"), 90_000);
    const code = await new Promise<number | null>((r) => child.on("close", r));
    clearTimeout(guard);
    assert.equal(code, 0, `the script did not finish: ${err.slice(-2000)}`);
    assert.equal(out.trim(), String(10 * 5 + 30 * 6)); // the lengths of "doc 0" ... "doc 39"
  });

  it("a parked body that runs (its own timer makes a call) is replayed afresh, with the same result", async () => {
    await init({ store: join(dir, "woken.db"), workers: 0 });
    try {
      t.bodyStarts.wakesWhileParked = 0;
      const r = await run(t.wakesWhileParked, 3);
      assert.equal(await r.result(), 180 + 100);
      // Its first run and one replay per resume: its timer's call spoilt every parked replay.
      assert.equal(t.bodyStarts.wakesWhileParked, 4);
    } finally {
      await shutdown();
    }
  });

  it("a corrupted or newer-version history record fails the run clearly and leaves the store readable", async () => {
    const store = join(dir, "corrupt.db");
    await init({ store, workers: 0 });
    const r = await run(t.failingParent);
    await r.result().catch(() => undefined);
    await shutdown();

    const db = new Database(store);
    const child = db.prepare("SELECT id, call FROM actions WHERE parent = ? LIMIT 1").get(r.id) as {
      id: string;
      call: string;
    };
    const store1 = new Store(store);
    // Newer format: refused with an upgrade hint.
    db.prepare("UPDATE actions SET call = ? WHERE id = ?").run(
      JSON.stringify({ ...JSON.parse(child.call), v: 99 }),
      child.id,
    );
    assert.throws(
      () => store1.history(r.id),
      (e: Error) => e instanceof HistoryError && /format v99, newer/.test(e.message),
    );
    // Corrupted: named as such.
    db.prepare("UPDATE actions SET call = ? WHERE id = ?").run("{not json", child.id);
    assert.throws(
      () => store1.history(r.id),
      (e: Error) => e instanceof HistoryError && /corrupted history record/.test(e.message),
    );

    // Resuming a run whose parent history is corrupted fails that run, not the engine.
    db.prepare("UPDATE runs SET status = 'RUNNING', ended = NULL WHERE id = ?").run(r.id);
    // As a crash in the middle of the root's replay would leave it.
    db.prepare(
      "UPDATE actions SET status = 'RUNNING', outcome = NULL, waits = NULL, replays = 1 WHERE id = ?",
    ).run(r.id);
    db.close();
    store1.close();
    await init({ store, workers: 0 });
    const { resume } = await import("../sdk/run.ts");
    const again = await resume(r.id);
    await assert.rejects(again.result(), (e: Error) => /corrupted history record/.test(e.message));
    assert.equal((await again.status()).state, "FAILED");
    await shutdown();
  });
});

describe("bad input to the SDK", () => {
  it("calling an unregistered function as a task is refused with what to do", async () => {
    const { map, run: runTask } = await import("aloft");
    const plain = async (x: number) => x;
    const notATask = plain as unknown as Parameters<typeof runTask>[0];
    await assert.rejects(runTask(notATask), /run\(\) needs a task registered with env\.task/);
    // (A plain function is a valid first argument of map: a function of the item that calls a task.)
    assert.throws(
      () => map(42 as unknown as typeof notATask, [1] as never[]),
      /map needs a task registered with env\.task, or a function of the item that calls one task/,
    );
  });

  it("init refuses an unknown mode", async () => {
    await assert.rejects(init({ mode: "cloud" as never }), /mode must be "local" or "aws"/);
  });
});

describe("aloft cancel from another process", () => {
  it("reaches a run in progress: the engine stops every descendant and the run ends CANCELLED", async () => {
    const dir = mkdtempSync(join(tmpdir(), "aloft-cancel-"));
    const store = join(dir, "cancel.db");
    const env = { ALOFT_TEST_DIR: dir, ALOFT_TEST_SLEEP: "60000" };
    const { child, exited, id: runId } = startElsewhere(store, 8, env);
    try {
      for (let i = 0; i < 400 && execLog(dir).length < 4; i++) await sleep(25);
      assert.equal(execLog(dir).length, 4, "the window of 4 children started");
      const c = await aloft(["--store", store, "cancel", runId()], { cwd: ROOT });
      assert.equal(c.code, 0, c.stderr);
      assert.match(c.stdout, /CANCELLED/);
      const code = await exited;
      assert.notEqual(code, 0, "the process running it saw its run end CANCELLED");
      const s = new Store(store);
      const rows = s.runActions(runId());
      s.close();
      assert.ok(
        rows.length === 9 && rows.every((r) => r.status === "CANCELLED"),
        JSON.stringify(rows.map((r) => r.status)),
      );
    } finally {
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
