/**
 * Durable sleep and signals on the embedded engine, with time injected: hours of timers play out at
 * once, and "late, never early" is checked at the due time's edge. (The semantic suite runs the
 * same tasks on real time, on both backends.)
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as pause } from "node:timers/promises";
import { ConfigurationError, RunEndedError, SerializationError } from "aloft";
import { Engine } from "../sdk/local/engine.ts";
import { Store } from "../sdk/local/store.ts";
import { runStatus } from "../sdk/local/status.ts";
import { WaitStore } from "../sdk/local/wait-store.ts";
import { resultOf } from "../sdk/run.ts";
import { serializeArgs } from "../sdk/core/calls.ts";
import { flatten } from "./helpers/status.ts";
import { VirtualClock } from "./helpers/virtual-clock.ts";
import type { Task } from "../sdk/task.ts";
import * as w from "./semantics/tasks-waits.ts";
import { Recorder } from "../sdk/testing/history.ts";
import { replayTask } from "../sdk/testing/drive.ts";
import { serialize } from "../sdk/serde.ts";
import { serializeError, TaskTimeoutError } from "../sdk/errors.ts";

const H = 3_600_000;

/** Polls `cond` (real time, generous bound): the engine works across many event-loop turns. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (cond()) return;
    await pause(5);
  }
  assert.fail(`timed out waiting until ${what}`);
}

function harness(path = ":memory:", clock = new VirtualClock()) {
  const store = new Store(path);
  const engine = new Engine({ store, workers: 0, modules: [], clock });
  const start = <F extends (...a: any[]) => any>(task: Task<F>, ...args: Parameters<F>): string =>
    engine.startRun(task.def, serializeArgs(task.def.name, args));
  const state = (id: string) => store.getRun(id)!.status;
  const result = async (id: string) => resultOf(await engine.waitRun(id));
  /** Every durable wait of the run is armed (the run is quiet until time passes or a signal comes). */
  const waiting = (id: string, n = 1) =>
    until(
      () =>
        flatten(runStatus(store, store.getRun(id)!, clock.now()).root).filter((x) => x.waiting).length >= n,
      `${n} wait(s) of ${id} are armed`,
    );
  // What sdk/local/backend.ts does for a run in progress: the engine's own timers are unref'd.
  const alive = setInterval(() => undefined, 1 << 30);
  const close = async () => {
    clearInterval(alive);
    await pause(10);
    await engine.close();
    store.close();
  };
  return { store, engine, clock, start, state, result, waiting, close };
}

describe("durable waits in the replay core (given a history, expect a decision)", () => {
  it("sleep is a call of aloft:sleep with its milliseconds; a race suspends on the child or the timer", async () => {
    const h = new Recorder();
    const d = await replayTask(w.raceSlowChildSleep, ["go", "90s"], h);
    assert.equal(d.kind, "suspended");
    assert.deepEqual(
      d.calls.map((c) => [c.task, c.args]),
      [
        ["waits.awaitsGo", '["go"]'],
        ["aloft:sleep", "[90000]"],
      ],
    );
    assert.equal(d.kind === "suspended" && d.waits.length, 1, "one wait: the race");
    h.record(d);
    // The timer fired first: the replay returns its branch at once, and calls nothing new.
    h.outcomes.set(d.calls[1]!.id, { ok: true, value: serialize(undefined) });
    const again = await replayTask(w.raceSlowChildSleep, ["go", "90s"], h);
    assert.deepEqual(
      [again.kind, again.kind === "completed" && again.value, again.calls],
      ["completed", '"timeout"', []],
    );
  });

  it("waitForSignal is a call of aloft:signal; a recorded payload or timeout is what the body gets", async () => {
    const h = new Recorder();
    const d = await replayTask(w.waitWithTimeout, ["approve", "5m"], h);
    assert.deepEqual(
      d.calls.map((c) => [c.task, c.args]),
      [["aloft:signal", '["approve",300000]']],
    );
    h.record(d);
    const id = d.calls[0]!.id;
    h.outcomes.set(id, { ok: true, value: serialize({ ok: 1 }) });
    const got = await replayTask(w.waitWithTimeout, ["approve", "5m"], h);
    assert.equal(got.kind === "completed" && got.value, '{"got":{"ok":1}}');
    h.outcomes.set(id, { ok: false, error: serializeError(new TaskTimeoutError("no signal in time")) });
    const late = await replayTask(w.waitWithTimeout, ["approve", "5m"], h);
    assert.equal(late.kind === "completed" && late.value, '{"timedOut":"no signal in time"}');
  });

  it("bad durations, names and options are ConfigurationErrors; the built-in names are reserved", async () => {
    const bad = await replayTask(w.napper, ["soon"], new Recorder());
    assert.equal(bad.kind, "failed");
    assert.match(bad.kind === "failed" ? bad.error.message : "", /sleep: "soon" is not a duration/);
    const { TaskEnvironment, waitForSignal } = await import("aloft");
    assert.throws(() => waitForSignal("x"), /outside any task/);
    assert.throws(() => waitForSignal("x", { timeot: "1s" } as never), /timeot/);
    assert.throws(() => waitForSignal("", {}), /signal name/);
    assert.throws(
      () => new TaskEnvironment({ name: "reserved" }).task(async function f() {}, { name: "aloft:sleep" }),
      /reserves/,
    );
  });
});

describe("sleep and signals on the embedded engine (virtual time)", () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), "aloft-waits-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("sleep suspends the parent, fires at its due time (not before) and replays at once", async () => {
    const h = harness();
    const t0 = h.clock.now();
    const id = h.start(w.napper, "2h");
    await h.waiting(id);
    const node = flatten(runStatus(h.store, h.store.getRun(id)!).root).find((n) => n.waiting)!;
    assert.equal(node.task, "aloft:sleep");
    assert.equal(node.waiting, `timer fires at ${new Date(t0 + 2 * H).toISOString()}`);
    await h.clock.advance(2 * H - 1);
    await pause(20);
    assert.equal(h.state(id), "RUNNING", "one ms before its due time the timer has not fired");
    await h.clock.advance(1);
    assert.equal(await h.result(id), "rested");
    assert.equal(h.engine.replays.get(id), 1, "one replay: the fired timer's outcome returned at once");
    await h.close();
  });

  it("Promise.race of a child and a sleep: the child wins, and the sleep left running is cancelled", async () => {
    const h = harness();
    const id = h.start(w.raceChildSleep, 5, "10s");
    assert.equal(await h.result(id), 15);
    const sleepNode = flatten(runStatus(h.store, h.store.getRun(id)!).root).find(
      (n) => n.task === "aloft:sleep",
    )!;
    assert.equal(sleepNode.status, "CANCELLED");
    await h.close();
  });

  it("Promise.race of a slow child and a sleep: the timer wins", async () => {
    const h = harness();
    const id = h.start(w.raceSlowChildSleep, "never", "10s");
    await h.waiting(id, 2);
    await h.clock.advance(10_000);
    assert.equal(await h.result(id), "timeout");
    await h.close();
  });

  it("sleep inside map items: each item's timer resumes it; results in input order", async () => {
    const h = harness();
    const id = h.start(w.mapOfNaps, 5, "1m");
    const armed = () => new WaitStore(h.store.db).waitsOf(id).size;
    for (const n of [2, 4, 5]) {
      // concurrency 2: items sleep two at a time, and the next two start once those wake
      await until(() => armed() >= n, `${n} sleeps armed`);
      await h.clock.advance(60_000);
    }
    assert.deepEqual(await h.result(id), [0, 1, 2, 3, 4]);
    await h.close();
  });

  it("a signal sent after the wait started is received, payloads keep Map and Date", async () => {
    const h = harness();
    const id = h.start(w.waitOnce, "approve");
    await h.waiting(id);
    const node = flatten(runStatus(h.store, h.store.getRun(id)!).root).find((n) => n.waiting)!;
    assert.equal(node.waiting, 'signal "approve"');
    const payload = { by: new Map([["ana", new Date(0)]]) };
    h.engine.signal(id, "approve", payload);
    assert.deepEqual(await h.result(id), payload);
    await h.close();
  });

  it("a signal sent before the wait starts is kept until a wait takes it", async () => {
    const h = harness();
    const id = h.start(w.sleepThenWait, "1h", "go");
    await h.waiting(id);
    h.engine.signal(id, "go", 1);
    h.engine.signal(id, "other", 2);
    await h.clock.advance(H);
    assert.equal(await h.result(id), 1);
    await h.close();
  });

  it("signals are taken in the order sent, each by one wait, several waits in call order", async () => {
    const h = harness();
    const seq = h.start(w.waitInTurn, "x", 3);
    const par = h.start(w.waitTogether, "x", 3);
    await h.waiting(par, 3);
    for (const v of ["a", "b", "c", "d"]) h.engine.signal(par, "x", v);
    for (const v of [1, 2, 3]) h.engine.signal(seq, "x", v);
    assert.deepEqual(await h.result(seq), [1, 2, 3]);
    assert.deepEqual(await h.result(par), ["a", "b", "c"]);
    const left = h.store.db
      .prepare(`SELECT payload FROM signals WHERE run_id = ? AND consumed_by IS NULL`)
      .all(par) as { payload: string }[];
    assert.deepEqual(
      left.map((r) => r.payload),
      ['"d"'],
      "a duplicate is kept, not given to a second wait",
    );
    await h.close();
  });

  it("waitForSignal with a timeout rejects with TaskTimeoutError, never before the timeout", async () => {
    const h = harness();
    const id = h.start(w.waitWithTimeout, "approve", "5m");
    await h.waiting(id);
    await h.clock.advance(5 * 60_000 - 1);
    await pause(20);
    assert.equal(h.state(id), "RUNNING");
    await h.clock.advance(1);
    assert.match(
      ((await h.result(id)) as { timedOut: string }).timedOut,
      /no signal "approve" arrived within 300000 ms/,
    );
    const got = h.start(w.waitWithTimeout, "approve", "5m");
    await h.waiting(got);
    h.engine.signal(got, "approve", "yes");
    assert.deepEqual(await h.result(got), { got: "yes" });
    await h.clock.advance(10 * 60_000);
    await h.close();
  });

  it("a signal to an ended run, or with a bad name or payload, is an error that says so", async () => {
    const h = harness();
    const id = h.start(w.triple, 2);
    assert.equal(await h.result(id), 6);
    assert.throws(
      () => h.engine.signal(id, "approve", 1),
      (e: unknown) => {
        assert.ok(e instanceof RunEndedError);
        assert.match((e as Error).message, /run .* has ended \(SUCCEEDED\): signal "approve" was not sent/);
        return true;
      },
    );
    assert.throws(() => h.engine.signal("r-nope", "approve", 1), RunEndedError);
    const live = h.start(w.waitOnce, "x");
    assert.throws(() => h.engine.signal(live, "", 1), ConfigurationError);
    assert.throws(() => h.engine.signal(live, "x", () => 1), SerializationError);
    h.engine.cancelRun(live);
    await h.engine.waitRun(live);
    await pause(10);
    await h.close();
  });

  it("a restarted engine fires a stored timer late, never early, and hands over a consumed signal", async () => {
    const path = join(dir, "restart.db");
    const a = harness(path);
    const t0 = a.clock.now();
    const id = a.start(w.napper, "1h");
    await a.waiting(id);
    await a.close(); // the process stops mid-sleep
    const clock = new VirtualClock();
    await clock.advance(t0 + 30 * 60_000 - clock.now());
    const b = harness(path, clock);
    b.engine.resumeRun(id);
    await clock.advance(30 * 60_000 - 1);
    await pause(20);
    assert.equal(b.state(id), "RUNNING", "not early: the due time was recorded when the sleep began");
    await clock.advance(1);
    assert.equal(await b.result(id), "rested");
    await b.close();

    // A wait that consumed its signal but stopped before its outcome was written gets that signal.
    const c = harness(path);
    const wid = c.start(w.waitOnce, "go");
    await c.waiting(wid);
    const waiter = flatten(runStatus(c.store, c.store.getRun(wid)!).root).find((n) => n.waiting)!.id;
    await c.close();
    const ws = new WaitStore(new Store(path).db);
    ws.send(wid, "go", '"first"', 0);
    ws.send(wid, "go", '"second"', 0);
    assert.equal(ws.take(wid, "go", waiter), '"first"');
    const d = harness(path);
    d.engine.resumeRun(wid);
    assert.equal(await d.result(wid), "first");
    await d.close();
  });

  it("a signal written by another process reaches a running engine", async () => {
    const path = join(dir, "other.db");
    const h = harness(path);
    const id = h.start(w.waitOnce, "ping");
    await h.waiting(id);
    const other = new Store(path);
    new WaitStore(other.db).send(id, "ping", '"pong"', Date.now());
    other.close();
    assert.equal(await h.result(id), "pong");
    await h.close();
  });
});
