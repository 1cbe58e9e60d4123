/**
 * Dispatch of a task not yet placed (sdk/local/dispatch.ts, placement.ts), on a scheduler whose
 * executors only record what they are sent: the engine around them is covered by
 * test/local-engine.test.ts.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { TaskEnvironment } from "aloft";
import { dispatchReady } from "../sdk/local/dispatch.ts";
import { Placement } from "../sdk/local/placement.ts";
import { ReadyQueue } from "../sdk/local/ready-queue.ts";
import { PendingWrites } from "../sdk/local/writes.ts";
import type { Executor } from "../sdk/local/pool.ts";
import type { ExecItem } from "../sdk/local/run-body.ts";
import type { Live } from "../sdk/local/live.ts";
import type { Scheduler } from "../sdk/local/scheduler.ts";

/** An executor that keeps what it is sent, with `room` places and `workers` threads. */
function recorder(workers: number, room: number): Executor & { sent: ExecItem[] } {
  const sent: ExecItem[] = [];
  return {
    workers,
    sent,
    capacity: () => room - sent.length,
    send: (items) => void sent.push(...items),
    running: (task) => sent.filter((i) => i.task === task).length,
    reclaim: () => undefined,
    close: async () => undefined,
  };
}

new TaskEnvironment({ name: "probe" }).task(async function child(i: number) {
  return i;
});
const TASK = "probe.child";

/** A scheduler with `n` children of TASK ready. */
function scheduler(workers: number, n: number) {
  const pool = recorder(workers, workers * 64);
  const inline = recorder(0, 256);
  const live = new Map<string, Live>();
  const ready = new ReadyQueue();
  for (let i = 0; i < n; i++) {
    const a = {
      id: `c${i}`,
      runId: "r",
      parent: "p",
      task: TASK,
      group: "",
      args: `[${i}]`,
      status: "QUEUED",
      attempts: 0,
      token: 0,
      hasHistory: false,
      queued: true,
    } as Partial<Live> as Live;
    live.set(a.id, a);
    ready.push(a.id);
  }
  const s = {
    live,
    ready,
    executor: pool,
    inline,
    placement: new Placement(),
    writes: new PendingWrites(),
    replays: new Map(),
    now: () => 0,
    flushSoon: () => undefined,
  } as unknown as Scheduler;
  return { s, pool, inline, ready };
}

describe("dispatch of a task not yet placed", () => {
  it("sends the pool as many of its items as measuring it takes, and the rest where their measure places them", () => {
    const { s, pool, inline, ready } = scheduler(2, 100);
    dispatchReady(s);
    assert.equal(pool.sent.length, 32, "items on the pool before any was measured (it has room for 128)");
    assert.equal(ready.size, 68);
    // Still 32 on the pool, none measured: nothing more goes out.
    dispatchReady(s);
    assert.equal(pool.sent.length, 32);
    // The pool reports their bodies' synchronous segments: cheap. The rest run on this thread.
    for (let i = 0; i < 32; i++) s.placement.measure(TASK, 0.01);
    dispatchReady(s);
    assert.equal(inline.sent.length, 68);
    assert.equal(ready.size, 0);
  });

  it("gives a task measured costly all the pool's room", () => {
    const { s, pool, ready } = scheduler(2, 100);
    dispatchReady(s);
    for (let i = 0; i < 32; i++) s.placement.measure(TASK, 5);
    dispatchReady(s);
    assert.equal(pool.sent.length, 100);
    assert.equal(ready.size, 0);
  });

  it("sends a large pool one item per worker while the task is measured", () => {
    const { s, pool } = scheduler(48, 1000);
    dispatchReady(s);
    assert.equal(pool.sent.length, 48);
  });
});
