/**
 * Callbacks on the AWS handlers (DynamoDB Local + fauxqs, the local poller) under the faults AWS
 * allows: every message delivered twice, completers racing each other and the timeout, a
 * completion recorded before the callback's exec attached, a crash after the outcome's write, a
 * completion whose message was lost. Each callback ends once, and its completer is told the truth.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { TransactionCanceledException } from "@aws-sdk/client-dynamodb";
import { startDevStack } from "../dev/stack.ts";
import type { DevStack } from "../dev/stack.ts";
import { runtime } from "../sdk/aws/runtime.ts";
import { AloftClient } from "../sdk/aws/client.ts";
import type { AwsRun } from "../sdk/aws/client.ts";
import { callbackKey, readCallback, timeOutCallback } from "../sdk/aws/store/callbacks.ts";
import type { CallbackItem } from "../sdk/aws/store/callbacks.ts";
import { readAction } from "../sdk/aws/store/results.ts";
import { parseCallbackId } from "../sdk/core/callbacks.ts";
import { dueOutcome } from "../sdk/core/durable-waits.ts";
import { MESSAGE_VERSION } from "../sdk/aws/messages.ts";
import { reconcile } from "../lambdas/reconcile.ts";
import { sendToCoordinator } from "../sdk/aws/transport/dispatch.ts";
import { CallbackCompletedError } from "../sdk/errors.ts";
import * as c from "./semantics/tasks-callbacks.ts";
import { addMiddleware, duplicateSends, inject } from "./helpers/aws-faults.ts";
import { TERMINAL, flatten } from "./helpers/status.ts";
import { sleep, within } from "./helpers/within.ts";

const MS = 60_000;

describe("callbacks on the AWS handlers under faults", { timeout: 300_000 }, () => {
  let dev: DevStack;
  let client: AloftClient;
  let dir: string;
  let n = 0;
  const key = () => `aws-${process.pid}-${n++}`;

  before(async () => {
    process.env["POWERTOOLS_LOG_LEVEL"] ??= "SILENT";
    dir = mkdtempSync(join(tmpdir(), "aloft-cb-"));
    process.env["ALOFT_TEST_DIR"] = dir;
    dev = await startDevStack({
      visibilityTimeoutSeconds: 2,
      maxReceiveCount: 8,
      poller: { onError: () => undefined },
    });
    client = new AloftClient(dev.config);
  });
  after(async () => {
    client.destroy();
    await dev.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function idOf(k: string): Promise<string> {
    for (let i = 0; i < 1200; i++) {
      const id = c.publishedId(k);
      if (id) return id;
      await sleep(50);
    }
    assert.fail(`no id published under ${k}`);
  }

  /** The callback's action, once its exec has attached to its item. */
  async function attached(r: AwsRun<unknown>, id: string): Promise<{ parent: string; action: string }> {
    const { run, secret } = parseCallbackId(id);
    for (let i = 0; i < 1200; i++) {
      const item = await readCallback(client.rt, run, secret);
      if (item?.x !== undefined) return { parent: item.parent, action: item.id };
      await sleep(50);
    }
    assert.fail(`the callback of ${r.id} never attached`);
  }

  /**
   * A run awaiting a callback with a 1 h timeout, attached; `timeOut` is its timeout exec's decision,
   * `settle` the coordinator's look (a `callback` message).
   */
  async function oneHourCallback() {
    const k = key();
    const r = await client.run(c.awaitCallback, k, "1h");
    const id = await idOf(k);
    await attached(r, id);
    const { run, secret } = parseCallbackId(id);
    const wait = { kind: "callback" as const, secret, timeoutMs: 3_600_000 };
    return {
      r,
      id,
      timeOut: () => timeOutCallback(runtime(), callbackKey(run, secret), dueOutcome(wait)),
      settle: () =>
        sendToCoordinator(runtime(), [{ msg: { k: "callback", v: MESSAGE_VERSION, run, key: secret } }]),
    };
  }

  async function allEnded(r: AwsRun<unknown>): Promise<void> {
    for (const x of flatten((await r.status()).root))
      assert.ok(TERMINAL.has(x.status), `${x.task} left ${x.status}`);
  }

  it("every message delivered twice: the callback ends once with the payload; a second completion is refused", async () => {
    const undo = [duplicateSends(runtime().sqs), duplicateSends(client.rt.sqs)];
    try {
      const k = key();
      const r = await client.run(c.awaitCallback, k, "1h");
      const id = await idOf(k);
      await attached(r, id);
      await client.completeCallback(id, { n: 1 });
      assert.deepEqual(await within(r.result(), MS, "awaitCallback"), { got: { n: 1 } });
      await assert.rejects(client.completeCallback(id, { n: 2 }), CallbackCompletedError);
      await allEnded(r);
    } finally {
      undo.forEach((u) => u());
    }
  });

  it("five completers racing: exactly one wins, and the task gets its payload", async () => {
    const k = key();
    const r = await client.run(c.awaitCallback, k);
    const id = await idOf(k);
    await attached(r, id);
    const tries = await Promise.allSettled([0, 1, 2, 3, 4].map((i) => client.completeCallback(id, i)));
    const won = tries.flatMap((t, i) => (t.status === "fulfilled" ? [i] : []));
    assert.equal(won.length, 1, `winners: ${JSON.stringify(won)}`);
    for (const t of tries)
      if (t.status === "rejected") assert.ok(t.reason instanceof CallbackCompletedError, String(t.reason));
    assert.deepEqual(await within(r.result(), MS, "awaitCallback"), { got: won[0] });
  });

  it("a completion whose transaction meets another one on its items (TransactionConflict) is tried again and lands", async () => {
    const k = key();
    const r = await client.run(c.awaitCallback, k);
    const id = await idOf(k);
    await attached(r, id);
    // Real DynamoDB cancels a transaction that meets another on the run item; DynamoDB Local
    // serialises them, so the first attempt's cancellation is raised here as AWS raises it.
    let conflicts = 0;
    const undo = addMiddleware(client.rt.ddb, "conflict-once", async (args, next, command) => {
      if (command !== "TransactWriteItemsCommand" || conflicts++ > 0) return next(args);
      throw new TransactionCanceledException({
        message: "Transaction cancelled, please refer cancellation reasons for specific reasons",
        $metadata: {},
        CancellationReasons: [{ Code: "None" }, { Code: "TransactionConflict" }, { Code: "None" }],
      });
    });
    try {
      await client.completeCallback(id, "after a conflict");
      assert.equal(conflicts, 2, "one conflict, then the attempt that landed");
      assert.deepEqual(await within(r.result(), MS, "awaitCallback"), { got: "after a conflict" });
    } finally {
      undo();
    }
  });

  it("the timeout lands between the completer's read and its transaction: the transaction refuses the completion", async () => {
    const { r, id, timeOut, settle } = await oneHourCallback();
    // The completer has read the item (not yet ended); the timeout's exec decides before its transaction goes out.
    let timedOut: CallbackItem | undefined;
    const undo = addMiddleware(client.rt.ddb, "timeout-first", async (args, next, command) => {
      if (command === "TransactWriteItemsCommand" && !timedOut) timedOut = await timeOut();
      return next(args);
    });
    try {
      await assert.rejects(client.completeCallback(id, "too late"), (e: unknown) => {
        assert.ok(e instanceof CallbackCompletedError, String(e));
        assert.match(e.message, /timed out/);
        assert.ok(e.cause instanceof TransactionCanceledException, "refused by the transaction");
        return true;
      });
    } finally {
      undo();
    }
    assert.equal(timedOut?.done, "TIMED_OUT", "the timeout landed first");
    await settle();
    const result = await within(r.result(), MS, "awaitCallback");
    assert.match(JSON.stringify(result), /was not completed within 3600000 ms/);
  });

  it("a completion before the timeout's exec decides: the completion wins, and the timeout leaves it", async () => {
    const { r, id, timeOut, settle } = await oneHourCallback();
    await client.completeCallback(id, "in time");
    const item = await timeOut();
    assert.equal(item?.done, "SUCCEEDED", "the timeout found the completion");
    await settle();
    assert.deepEqual(await within(r.result(), MS, "awaitCallback"), { got: "in time" });
  });

  it("a completion recorded before the callback's exec attached: that exec settles it", async () => {
    let held = 0;
    // The callback's exec fails before attaching for its first deliveries (then SQS redelivers it).
    const undo = inject(runtime().ddb, "hold-attach", (cmd, input) =>
      cmd === "UpdateItemCommand" &&
      String(input["UpdateExpression"]).includes("if_not_exists(x") &&
      held++ < 2
        ? "before"
        : undefined,
    );
    try {
      const k = key();
      const r = await client.run(c.awaitCallback, k);
      const id = await idOf(k);
      const { run, secret } = parseCallbackId(id);
      await client.completeCallback(id, "early");
      assert.equal((await readCallback(client.rt, run, secret))?.x, undefined, "recorded before the attach");
      assert.deepEqual(await within(r.result(), MS, "awaitCallback"), { got: "early" });
      assert.ok(undo.injected >= 1);
    } finally {
      undo();
    }
  });

  it("a crash right after the outcome's write: the redelivered message tells the parent", async () => {
    const k = key();
    const r = await client.run(c.awaitCallback, k);
    const id = await idOf(k);
    const { action } = await attached(r, id);
    let crashes = 0;
    const undo = inject(runtime().ddb, "crash-after-outcome", (cmd, input) => {
      const key = input["Key"] as { sk?: string } | undefined;
      return cmd === "UpdateItemCommand" &&
        key?.sk === action &&
        String(input["UpdateExpression"]).includes("outcome") &&
        crashes++ < 1
        ? "after"
        : undefined;
    });
    try {
      await client.completeCallback(id, "after a crash");
      assert.deepEqual(await within(r.result(), MS, "awaitCallback"), { got: "after a crash" });
      assert.equal(undo.injected, 1, "the fault fired");
      const item = await readAction(client.rt, r.id, (await attached(r, id)).parent, action);
      assert.equal(item?.status, "SUCCEEDED");
    } finally {
      undo();
    }
  });

  it("a completion whose message was lost is settled by the reconciler's look", async () => {
    const k = key();
    const r = await client.run(c.awaitCallback, k);
    const id = await idOf(k);
    await attached(r, id);
    // The completer dies after recording the completion, before its message goes out.
    const undo = inject(client.rt.sqs, "lose-callback-message", (cmd) =>
      cmd.startsWith("SendMessage") ? "before" : undefined,
    );
    await assert.rejects(client.completeCallback(id, "found"), /injected fault/);
    undo();
    await assert.rejects(
      client.completeCallback(id, "again"),
      CallbackCompletedError,
      "recorded: the first wins",
    );
    const bounds = { stallMs: 1, failMs: 3_600_000 };
    let report;
    for (let i = 0; i < 50; i++) {
      report = await reconcile(runtime(), bounds);
      if (report.nudged.some((x) => x.includes("callback"))) break;
      await sleep(100);
    }
    assert.ok(
      report?.nudged.some((x) => x.includes("callback")),
      JSON.stringify(report),
    );
    assert.deepEqual(await within(r.result(), MS, "awaitCallback"), { got: "found" });
  });
});
