/**
 * Callbacks in the replay core (given a history, expect a decision) and on the embedded engine with
 * time injected: the id's secret is minted once and read back on replay, the timeout's edge, and
 * bad input. (The semantic suite runs the scenarios on real time, on every backend.)
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as pause } from "node:timers/promises";
import {
  CallbackCompletedError,
  ConfigurationError,
  NonDeterminismError,
  SerializationError,
  TaskEnvironment,
  UnknownCallbackError,
  createCallback,
} from "aloft";
import { Engine } from "../sdk/local/engine.ts";
import { Store } from "../sdk/local/store.ts";
import { runStatus } from "../sdk/local/status.ts";
import { resultOf } from "../sdk/run.ts";
import { serializeArgs } from "../sdk/core/calls.ts";
import {
  CALLBACK_PAYLOAD_BYTES,
  completionOutcome,
  failureOutcome,
  parseCallbackId,
  shownArgs,
} from "../sdk/core/callbacks.ts";
import { withinGrace } from "../sdk/callback.ts";
import { Recorder } from "../sdk/testing/history.ts";
import { replayTask } from "../sdk/testing/drive.ts";
import { serialize } from "../sdk/serde.ts";
import { flatten } from "./helpers/status.ts";
import { VirtualClock } from "./helpers/virtual-clock.ts";
import type { Task } from "../sdk/task.ts";
import type { Duration } from "aloft";
import * as c from "./semantics/tasks-callbacks.ts";

const env = new TaskEnvironment({ name: "cbcore" });
/** Returns its callback's id with the value it got, so a test sees the id each replay made. */
const idAndValue = env.task(async function idAndValue(timeout?: Duration) {
  const cb = createCallback<string>(timeout === undefined ? {} : { timeout });
  return { id: cb.id, value: await cb };
});

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (cond()) return;
    await pause(5);
  }
  assert.fail(`timed out waiting until ${what}`);
}

describe("callbacks in the replay core", () => {
  it("a callback is a call of aloft:callback whose secret a trace records; replays read it back", async () => {
    const h = new Recorder();
    const d = await replayTask(idAndValue, ["5m"], h);
    assert.equal(d.kind, "suspended");
    assert.equal(d.calls.length, 1);
    const call = d.calls[0]!;
    assert.equal(call.task, "aloft:callback");
    const [secret, timeoutMs] = JSON.parse(call.args) as [string, number];
    assert.match(secret, /^[A-Za-z0-9_-]{32}$/, "24 random bytes, base64url");
    assert.equal(timeoutMs, 300_000);
    assert.equal(d.traces.filter((t) => t.key.includes("aloft:callback-secret")).length, 1);
    h.record(d);
    // Replayed without an outcome: the same call (no new one), the same secret.
    const again = await replayTask(idAndValue, ["5m"], h);
    assert.deepEqual(
      [again.kind, again.calls, again.traces.filter((t) => t.key.includes("secret"))],
      ["suspended", [], []],
    );
    h.outcomes.set(call.id, { ok: true, value: serialize("yes") });
    const done = await replayTask(idAndValue, ["5m"], h);
    assert.equal(done.kind, "completed");
    const v = JSON.parse(done.kind === "completed" ? done.value : "{}") as { id: string; value: string };
    assert.deepEqual(v, { id: `cb.root.${secret}`, value: "yes" });
    assert.deepEqual(parseCallbackId(v.id), { run: "root", secret });
  });

  it("a history that lost the secret's trace mints another secret, which the replay rejects", async () => {
    const h = new Recorder();
    const d = await replayTask(idAndValue, [], h);
    h.record(d);
    h.traces.clear();
    const again = await replayTask(idAndValue, [], h);
    assert.equal(again.kind, "failed");
    assert.equal(again.kind === "failed" && again.error.name, NonDeterminismError.name);
  });

  it("bad options, a call outside a task, bad ids and payloads are errors that say what to do", async () => {
    assert.throws(() => createCallback(), ConfigurationError, "outside a task");
    const bad = env.task(async function badTimeout() {
      return createCallback({ timeout: "soon" as never });
    });
    const d = await replayTask(bad, [], new Recorder());
    assert.equal(d.kind === "failed" && d.error.name, "ConfigurationError");
    const unknownKey = env.task(async function unknownKey() {
      return createCallback({ timout: "1m" } as never);
    });
    const u = await replayTask(unknownKey, [], new Recorder());
    assert.match(u.kind === "failed" ? u.error.message : "", /timout/);
    for (const id of ["", "cb.", "cb.r-1.short", "xx.r-1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 3])
      assert.throws(() => parseCallbackId(id), UnknownCallbackError, String(id));
    assert.throws(() => completionOutcome(() => 1, "callback x"), SerializationError);
    assert.throws(
      () => completionOutcome("x".repeat(CALLBACK_PAYLOAD_BYTES), "callback x"),
      /at most 262144: store a large result elsewhere/,
    );
    assert.throws(() => failureOutcome(42, "callback x"), SerializationError);
    assert.equal(failureOutcome("no", "callback x").error.name, "CallbackFailedError");
    assert.equal(
      shownArgs("aloft:callback", '["AAAAAAbbbbbbbbbbbbbbbbbbbbbbbbbb",60000]'),
      '["AAAAAA…",60000]',
      "viewers show the secret's prefix only",
    );
  });

  it("a completion of an id its running run does not show yet is tried again within the grace", async () => {
    let calls = 0;
    const slept: number[] = [];
    const got = await withinGrace(
      async () => {
        if (++calls < 3) throw new UnknownCallbackError("not yet", { details: { running: true } });
        return "done";
      },
      3000,
      async (ms) => void slept.push(ms),
    );
    assert.equal(got, "done");
    assert.deepEqual(slept, [50, 100]);
    await assert.rejects(
      withinGrace(
        async () => {
          throw new UnknownCallbackError("never", { details: { running: true } });
        },
        300,
        async () => undefined,
      ),
      /never/,
    );
  });
});

describe("callbacks on the embedded engine, with time injected", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "aloft-cb-engine-"));
    process.env["ALOFT_TEST_DIR"] = dir;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function harness() {
    const clock = new VirtualClock();
    const store = new Store(":memory:");
    const engine = new Engine({ store, workers: 0, modules: [], clock });
    const start = <F extends (...a: any[]) => any>(task: Task<F>, ...args: Parameters<F>): string =>
      engine.startRun(task.def, serializeArgs(task.def.name, args));
    const alive = setInterval(() => undefined, 1 << 30);
    return {
      clock,
      store,
      engine,
      start,
      state: (id: string) => store.getRun(id)!.status,
      result: async (id: string) => resultOf(await engine.waitRun(id)),
      waiting: (id: string) =>
        until(
          () => flatten(runStatus(store, store.getRun(id)!, clock.now()).root).some((x) => x.waiting),
          `the callback of ${id} waits`,
        ),
      close: async () => {
        clearInterval(alive);
        await engine.close();
        store.close();
      },
    };
  }

  it("a callback times out at its timeout, never before; a completion after it is refused", async () => {
    const h = harness();
    const run = h.start(c.awaitCallback, "edge", "2h");
    await h.waiting(run);
    await until(() => c.publishedId("edge") !== undefined, "the id is published");
    const id = c.publishedId("edge")!;
    const node = flatten(runStatus(h.store, h.store.getRun(run)!, h.clock.now()).root).find(
      (n) => n.task === "aloft:callback",
    )!;
    const since = new Date(h.clock.now()).toISOString();
    assert.equal(node.status, "WAITING");
    assert.match(node.waiting!, new RegExp(`since ${since.slice(0, 16)}.*, times out at `));
    await h.clock.advance(2 * 3_600_000 - 1);
    await pause(20);
    assert.equal(h.state(run), "RUNNING", "one millisecond before its timeout it still waits");
    await h.clock.advance(1);
    assert.match(
      ((await h.result(run)) as { timedOut: string }).timedOut,
      /^callback \S{6}… was not completed within 7200000 ms$/,
    );
    assert.throws(() => h.engine.completeCallback(id, completionOutcome(1, "x")), CallbackCompletedError);
    await h.close();
  });

  it("completed one millisecond before its timeout: the payload wins, and the timer does nothing", async () => {
    const h = harness();
    const run = h.start(c.awaitCallback, "just", "1h");
    await h.waiting(run);
    await until(() => c.publishedId("just") !== undefined, "the id is published");
    await h.clock.advance(3_600_000 - 1);
    h.engine.completeCallback(c.publishedId("just")!, completionOutcome(new Map([["k", 1]]), "x"));
    assert.deepEqual(await h.result(run), { got: new Map([["k", 1]]) });
    await h.clock.advance(10);
    assert.throws(
      () => h.engine.completeCallback(c.publishedId("just")!, completionOutcome(2, "x")),
      /already completed/,
    );
    await h.close();
  });
});
