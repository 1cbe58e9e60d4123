/**
 * Liveness on the real handlers over DynamoDB Local + fauxqs: a message that dead-letters fails
 * what it concerns (lambdas/dead-letter.ts), and a run stalled by a lost message is found by the
 * reconciler (lambdas/reconcile.ts) and finishes — or, if nothing moves it, fails saying why. The
 * reconciler's clock is the runtime's (`runtime().now`), moved forward instead of waiting minutes.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { SendMessageBatchRequestEntry } from "@aws-sdk/client-sqs";
import { startDevStack } from "../dev/stack.ts";
import type { DevStack } from "../dev/stack.ts";
import { reconcile } from "../lambdas/reconcile.ts";
import { runtime } from "../sdk/aws/runtime.ts";
import { readCounter } from "../sdk/aws/store/counters.ts";
import { AloftClient } from "../sdk/aws/client.ts";
import * as t from "./fixtures/aws-tasks.ts";
import { addMiddleware, inject } from "./helpers/aws-faults.ts";
import { sleep, within } from "./helpers/within.ts";
import { countOptions } from "../lambdas/coord/completions.ts";
import { openCallLimits } from "../lambdas/open-calls.ts";

/** The error a run failed with (a root's failure reaches the client as a TaskError wrapping it). */
async function failure(p: Promise<unknown>, what: string): Promise<Error & { errorName?: string }> {
  try {
    await within(p, 40_000, what);
  } catch (e) {
    if (/no result after/.test((e as Error).message)) throw e;
    return e as Error & { errorName?: string };
  }
  assert.fail(`${what}: the run succeeded`);
}

/** Drops messages `pick` selects from every SendMessageBatch (a message lost on its way). */
function dropExecs(
  pick: (m: {
    k: string;
    id: string;
    run?: string;
    task?: string;
    args?: string;
    epoch?: number;
    attempt?: number;
    d?: { run: string }[];
  }) => boolean,
): {
  undo(): void;
  dropped: number;
} {
  const state = { dropped: 0 };
  const undo = addMiddleware(runtime().sqs, "drop-execs", async (args, next, command) => {
    if (command !== "SendMessageBatchCommand") return next(args);
    const entries = args.input["Entries"] as SendMessageBatchRequestEntry[];
    const kept = entries.filter((e) => !pick(JSON.parse(e.MessageBody ?? "{}") as { k: string; id: string }));
    state.dropped += entries.length - kept.length;
    if (kept.length) return next({ input: { ...args.input, Entries: kept } });
    return {
      output: { Successful: entries.map((e) => ({ Id: e.Id })), Failed: [], $metadata: {} },
      response: {},
    };
  });
  return {
    undo,
    get dropped() {
      return state.dropped;
    },
  };
}

describe("liveness: dead letters and stalled runs", { timeout: 150_000 }, () => {
  let dev: DevStack;
  let client: AloftClient;

  before(async () => {
    process.env["POWERTOOLS_LOG_LEVEL"] ??= "SILENT";
    dev = await startDevStack({
      visibilityTimeoutSeconds: 5,
      maxReceiveCount: 2,
      reconcileIntervalMs: 0, // the tests tick the reconciler themselves
      poller: { onError: () => undefined },
    });
    client = new AloftClient(dev.config);
  });
  after(async () => {
    client.destroy();
    await dev.stop();
  });

  it("a poison exec dead-letters: its child fails with a DeadLetterError, and so does the run", async () => {
    let target = "";
    // Every result write of the run's children fails: their exec messages fail every delivery.
    const fault = inject(runtime().ddb, "poison-exec", (cmd, input) => {
      const pk = String((input["Key"] as { pk?: string } | undefined)?.pk);
      const v = input["ExpressionAttributeValues"] as Record<string, unknown> | undefined;
      return /^Update(Item)?Command$/.test(cmd) &&
        target &&
        pk.startsWith(`O#${target}#`) &&
        v?.[":st"] === "SUCCEEDED"
        ? "before"
        : undefined;
    });
    try {
      const r = await client.run(t.gather, 2);
      target = r.id;
      const e = await failure(r.result(), "poison exec");
      assert.equal(e.name, "TaskError");
      assert.equal(e.errorName, "TaskError", `the root failed because its child did: ${e.message}`);
      const child = (await r.status()).root!.children[0]!;
      assert.equal(child.status, "FAILED");
      for (const part of [
        "DeadLetterError",
        "an exec message (epoch 0, attempt 1)",
        `awsx.double ${child.id}`,
        `of run ${r.id}`,
        "after 2 failed deliveries",
        "last error: InjectedFault: injected fault before UpdateItemCommand",
      ])
        assert.ok(e.message.includes(part), `"${part}" in: ${e.message}`);
      assert.equal((await client.getRun(r.id))?.status, "FAILED");
    } finally {
      fault();
    }
    assert.ok(fault.injected >= 4, "both children's result writes failed on both deliveries");
  });

  it("a poison done dead-letters: the parent whose completions were never counted fails", async () => {
    // A parent whose counting fails has its completions requeued as new messages (coord/completions.ts),
    // which never dead-letter; this drives the path where the message itself keeps failing.
    countOptions.requeue = false;
    let target = "";
    const fault = inject(runtime().ddb, "poison-done", (cmd, input) =>
      /^Update(Item)?Command$/.test(cmd) &&
      target &&
      (input["Key"] as { pk?: string } | undefined)?.pk === `A#${target}` &&
      /ADD co/.test(String(input["UpdateExpression"]))
        ? "before"
        : undefined,
    );
    try {
      const r = await client.run(t.gather, 3);
      target = r.id;
      const e = await failure(r.result(), "poison done");
      assert.equal(e.errorName, "DeadLetterError", e.message);
      for (const part of [
        "completion(s) for parent awsx.gather",
        `${r.id} of run ${r.id}`,
        "never counted",
        "failed deliveries",
        "last error: InjectedFault: injected fault before UpdateItemCommand",
      ])
        assert.ok(e.message.includes(part), `"${part}" in: ${e.message}`);
      assert.match(e.message, /a dones? message/);
      assert.equal((await client.getRun(r.id))?.status, "FAILED");
    } finally {
      fault();
      countOptions.requeue = true;
    }
    assert.ok(fault.injected >= 2);
  });

  /** Waits until the run's root counter is marked resumed at epoch 1 and the resume was sent (and dropped). */
  async function stalledAtResume(run: string, drop: { dropped: number }): Promise<void> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const c = await readCounter(runtime(), run);
      if (c?.st === "R" && c.sent === 1 && drop.dropped > 0) return;
      assert.ok(Date.now() < deadline, `the parent never reached its resume: ${JSON.stringify(c)}`);
      await sleep(100);
    }
  }

  /** A reconciler tick at `ahead` ms past now (the runtime's clock, shared by the handlers, moved meanwhile). */
  async function tickAt(ahead: number) {
    const rt = runtime();
    const real = rt.now;
    rt.now = () => Date.now() + ahead;
    try {
      return await reconcile(rt, { stallMs: 900_000, failMs: 3_600_000 });
    } finally {
      rt.now = real;
    }
  }

  it("a lost resume stalls a run; the reconciler finds it after the bound and re-sends the resume", async () => {
    let target = "";
    const drop = dropExecs((m) => m.k === "exec" && m.id === target && m.epoch === 1);
    let r;
    try {
      r = await client.run(t.gather, 4);
      target = r.id;
      await stalledAtResume(r.id, drop);
    } finally {
      drop.undo();
    }
    await sleep(1500);
    assert.equal((await client.getRun(r.id))?.status, "RUNNING", "stalled: nothing else moves it");
    const first = await tickAt(901_000);
    assert.equal(first.nudged.length, 0, "the first look only records where the run is");
    assert.ok(first.checked >= 1);
    const second = await tickAt(1_802_000);
    assert.ok(
      second.nudged.some((n) => n.startsWith(r.id) && /re-sent the resume of awsx.gather/.test(n)),
      JSON.stringify(second),
    );
    assert.deepEqual(await within(r.result(), 20_000, "resumed by the reconciler"), [0, 2, 4, 6]);
  });

  it("completions lost after their outcomes were written: the reconciler proves it and resumes the parent", async () => {
    let target = "";
    // Every completion of the run's children is lost on its way to the coordinator (their writers
    // died after writing the outcomes, and nothing redelivers them).
    const drop = dropExecs(
      (m) => (m.k === "done" && m.run === target) || (m.d?.some((d) => d.run === target) ?? false),
    );
    let r;
    try {
      r = await client.run(t.gather, 4);
      target = r.id;
      const deadline = Date.now() + 20_000;
      while (
        drop.dropped === 0 ||
        (await r.status()).root?.children?.some((c) => c.status !== "SUCCEEDED") !== false
      ) {
        assert.ok(Date.now() < deadline, "the children never all succeeded");
        await sleep(100);
      }
    } finally {
      drop.undo();
    }
    await sleep(1500);
    const c = await readCounter(runtime(), r.id);
    assert.deepEqual([c?.st, c?.co], ["S", 0], "stalled: the parent waits, nothing counted");
    assert.equal((await tickAt(901_000)).nudged.length, 0, "the first look only records where the run is");
    const second = await tickAt(1_802_000);
    assert.ok(
      second.nudged.some(
        (n) =>
          n.startsWith(r.id) &&
          /resumed awsx.gather .*: at least 4 of its children settled without being counted/.test(n),
      ),
      JSON.stringify(second),
    );
    assert.deepEqual(await within(r.result(), 20_000, "resumed by the reconciler"), [0, 2, 4, 6]);
  });

  it("a retry's exec lost on its way: the reconciler re-sends it at the attempt it was lost at", async () => {
    const key = `lost-retry-${Date.now()}`;
    // The retry (attempt 2) of this run's child is lost: its sender moved the child to attempt 2.
    const drop = dropExecs(
      (m) =>
        m.k === "exec" && m.attempt === 2 && m.task === "awsx.failsOnce" && (m.args?.includes(key) ?? false),
    );
    let r;
    try {
      r = await client.run(t.callsFailsOnce, key);
      const deadline = Date.now() + 20_000;
      while (drop.dropped === 0) {
        assert.ok(Date.now() < deadline, "the retry was never sent");
        await sleep(100);
      }
    } finally {
      drop.undo();
    }
    await sleep(1500);
    assert.equal((await client.getRun(r.id))?.status, "RUNNING", "stalled: its retry is lost");
    assert.equal((await tickAt(901_000)).nudged.length, 0, "the first look only records where the run is");
    const second = await tickAt(1_802_000);
    assert.ok(
      second.nudged.some((n) => n.startsWith(r.id) && /re-sent the exec of 1 unsettled child/.test(n)),
      JSON.stringify(second),
    );
    assert.equal(await within(r.result(), 20_000, "the retry re-sent by the reconciler"), key);
  });

  it("a lost exec past a parent's first page of calls: the coordinator re-sends that page on the reconciler's word", async () => {
    // Pages of one chunk (100 calls) instead of ten, so 150 children span two.
    const saved = openCallLimits.chunksPerPage;
    openCallLimits.chunksPerPage = 1;
    let target = "";
    const drop = dropExecs(
      (m) =>
        m.k === "exec" &&
        m.run === target &&
        m.task === "awsx.double" &&
        Number(JSON.parse(m.args ?? "[0]")[0]) >= 120,
    );
    try {
      const r = await client.run(t.gather, 150);
      target = r.id;
      const deadline = Date.now() + 30_000;
      while (drop.dropped < 30) {
        assert.ok(Date.now() < deadline, `only ${drop.dropped} execs dropped`);
        await sleep(100);
      }
      drop.undo();
      await sleep(1500);
      const c = await readCounter(runtime(), r.id);
      assert.deepEqual([c?.st, c?.co], ["S", 120], "stalled: 30 children never ran");
      assert.equal((await tickAt(901_000)).nudged.length, 0, "the first look only records where the run is");
      const second = await tickAt(1_802_000);
      assert.ok(
        second.nudged.some((n) => n.startsWith(r.id) && /past its first page to be sent again/.test(n)),
        JSON.stringify(second),
      );
      const got = (await within(r.result(), 30_000, "re-sent page by page")) as number[];
      assert.deepEqual(
        got,
        Array.from({ length: 150 }, (_, i) => i * 2),
      );
    } finally {
      drop.undo();
      openCallLimits.chunksPerPage = saved;
    }
  });

  it("a run the reconciler cannot move fails past the second bound, naming the stalled parent", async () => {
    let target = "";
    const drop = dropExecs((m) => m.k === "exec" && m.id === target && m.epoch === 1);
    try {
      const r = await client.run(t.gather, 2);
      target = r.id;
      await stalledAtResume(r.id, drop);
      assert.equal((await tickAt(901_000)).nudged.length, 0);
      const nudged = await tickAt(1_802_000);
      assert.ok(
        nudged.nudged.some((n) => n.startsWith(r.id)),
        "nudged (and the resume is lost again)",
      );
      const failed = await tickAt(4_600_000);
      assert.ok(
        failed.failed.some((f) => f.startsWith(r.id)),
        JSON.stringify(failed),
      );
      const e = await failure(r.result(), "stalled run");
      assert.equal(e.errorName, "StalledRunError");
      for (const part of ["made no progress for", `awsx.gather ${r.id} is resuming at epoch 1`, "1 nudge(s)"])
        assert.ok(e.message.includes(part), `"${part}" in: ${e.message}`);
    } finally {
      drop.undo();
    }
  });
});
