/**
 * Durable sleep and signals (issue 14), on every backend the semantic suite runs on: sleep in a
 * body, in a race and inside map items; signals sent before and after a wait starts, in order, to
 * several waits, duplicated, timed out, and to a run that has ended.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import { setTimeout as pause } from "node:timers/promises";
import { RunEndedError } from "aloft";
import type { Run } from "aloft";
import { flatten } from "../helpers/status.ts";
import type { Backend } from "./backend.ts";
import * as w from "./tasks-waits.ts";

/** Resolves once the run's tree holds `n` calls of `task` (a wait has been recorded). */
export async function recorded(r: Run<unknown>, task: string, n = 1): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    const s = await r.status();
    if (flatten(s.root).filter((x) => x.task === task).length >= n) return;
    await pause(50);
  }
  assert.fail(`run ${r.id} never recorded ${n} ${task} call(s)`);
}

export function waitScenarios(backend: () => Backend): void {
  it("sleep: the parent resumes after the timer, which ends SUCCEEDED in its tree", async () => {
    const r = await backend().run(w.napper, "300ms");
    assert.equal(await r.result(), "rested");
    const timer = flatten((await r.status()).root).find((n) => n.task === "aloft:sleep");
    assert.equal(timer?.status, "SUCCEEDED");
  });

  it("sleep in Promise.race: a fast child wins; a sleep wins over a slow child", async () => {
    const b = backend();
    const fast = await b.run(w.raceChildSleep, 5, "60s");
    assert.equal(await fast.result(), 15);
    const slow = await b.run(w.raceSlowChildSleep, "never", "300ms");
    assert.equal(await slow.result(), "timeout");
    const loser = flatten((await slow.status()).root).find((n) => n.task === "waits.awaitsGo");
    assert.equal(loser?.status, "CANCELLED", "the parent ended: the child it left running is cancelled");
  });

  it("sleep inside map items: results in input order", async () => {
    const r = await backend().run(w.mapOfNaps, 4, "200ms");
    assert.deepEqual(await r.result(), [0, 1, 2, 3]);
  });

  it("a signal sent after the wait started, and one sent before it started", async () => {
    const b = backend();
    const after = await b.run(w.waitOnce, "approve");
    await recorded(after, "aloft:signal");
    const waiting = flatten((await after.status()).root).find((n) => n.task === "aloft:signal");
    assert.equal(waiting?.waiting, 'signal "approve"', "the status tree says what the wait waits for");
    await after.signal("approve", { ok: true, at: new Date(0) });
    assert.deepEqual(await after.result(), { ok: true, at: new Date(0) });

    const before = await b.run(w.sleepThenWait, "3s", "go");
    await recorded(before, "aloft:sleep");
    const timer = flatten((await before.status()).root).find((n) => n.task === "aloft:sleep");
    assert.match(timer?.waiting ?? "", /^timer fires at \d{4}-\d\d-\d\dT/);
    await before.signal("go", "early");
    assert.equal(await before.result(), "early");
  });

  it("signals go in send order, each to one wait, several waits in call order; duplicates are kept", async () => {
    const b = backend();
    const r = await b.run(w.waitTogether, "x", 3);
    await recorded(r, "aloft:signal", 3);
    for (const v of ["a", "b", "c", "d"]) await r.signal("x", v);
    assert.deepEqual(await r.result(), ["a", "b", "c"]);

    const twice = await b.run(w.waitInTurn, "dup", 2);
    await recorded(twice, "aloft:signal");
    await twice.signal("dup", 1);
    await twice.signal("dup", 1);
    assert.deepEqual(await twice.result(), [1, 1], "the same signal sent twice is two signals");
  });

  it("waitForSignal with a timeout rejects with TaskTimeoutError; an ended run refuses signals", async () => {
    const b = backend();
    const r = await b.run(w.waitWithTimeout, "never", "300ms");
    assert.deepEqual(await r.result(), { timedOut: 'no signal "never" arrived within 300 ms' });
    await assert.rejects(r.signal("never", 1), (e: unknown) => {
      assert.ok(e instanceof RunEndedError, String(e));
      assert.match((e as Error).message, /has ended \(SUCCEEDED\)/);
      return true;
    });
  });
}
