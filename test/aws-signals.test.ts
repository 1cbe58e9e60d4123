/**
 * Signals and sleeps on the AWS handlers (DynamoDB Local + fauxqs, the local poller) under the
 * faults AWS allows: every message delivered twice, a crash right after the pairing transaction,
 * matchers racing, a signal whose announcement was lost. A signal is consumed by exactly one wait,
 * each wait's outcome is written once, and the runs end with the payloads in send order.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import { startDevStack } from "../dev/stack.ts";
import type { DevStack } from "../dev/stack.ts";
import { runtime } from "../sdk/aws/runtime.ts";
import { AloftClient } from "../sdk/aws/client.ts";
import type { AwsRun } from "../sdk/aws/client.ts";
import { storeSignal } from "../sdk/aws/store/signals.ts";
import { matchSignals } from "../lambdas/durable-waits.ts";
import { reconcile } from "../lambdas/reconcile.ts";
import { sendToCoordinator } from "../sdk/aws/transport/dispatch.ts";
import type { Outbox } from "../lambdas/exec/context.ts";
import * as w from "./semantics/tasks-waits.ts";
import type { SendMessageBatchRequestEntry } from "@aws-sdk/client-sqs";
import { addMiddleware, duplicateSends, inject } from "./helpers/aws-faults.ts";
import { TERMINAL, flatten } from "./helpers/status.ts";
import { sleep, within } from "./helpers/within.ts";

const MS = 60_000;

describe("sleep and signals on the AWS handlers under faults", { timeout: 300_000 }, () => {
  let dev: DevStack;
  let client: AloftClient;

  before(async () => {
    process.env["POWERTOOLS_LOG_LEVEL"] ??= "SILENT";
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
  });

  async function recorded(r: AwsRun<unknown>, task: string, n: number): Promise<void> {
    for (let i = 0; i < 1200; i++) {
      if (flatten((await r.status()).root).filter((x) => x.task === task).length >= n) return;
      await sleep(50);
    }
    assert.fail(`${n} ${task} never recorded`);
  }

  /** The run's signals: how many were stored, and which no wait consumed. */
  async function signalsOf(run: string): Promise<{ stored: number; unconsumed: string[]; waits: number }> {
    const out = await client.rt.doc.send(
      new QueryCommand({
        TableName: client.rt.config.table,
        KeyConditionExpression: "pk = :pk",
        ExpressionAttributeValues: { ":pk": `S#${run}` },
        ConsistentRead: true,
      }),
    );
    const items = out.Items ?? [];
    const sig = items.filter((i) => String(i["sk"]).startsWith("N#"));
    return {
      stored: sig.length,
      unconsumed: sig.filter((i) => i["by"] === undefined).map((i) => String(i["payload"])),
      waits: items.filter((i) => String(i["sk"]).startsWith("W#")).length,
    };
  }

  /** Holds back each signal wait's first exec by `seconds(its position)`: SQS may deliver late, in any order. */
  function delayWaitExecs(seconds: (pos: number) => number): () => void {
    return addMiddleware(runtime().sqs, "delay-wait-execs", (args, next, command) => {
      if (command !== "SendMessageBatchCommand") return next(args);
      const entries = (args.input["Entries"] as SendMessageBatchRequestEntry[]).map((e) => {
        const m = JSON.parse(e.MessageBody ?? "{}") as {
          task?: string;
          dw?: { pos: number };
          notBefore?: number;
        };
        if (m.task !== "aloft:signal" || !m.dw || m.notBefore !== undefined) return e;
        return { ...e, DelaySeconds: seconds(m.dw.pos) };
      });
      return next({ input: { ...args.input, Entries: entries } });
    });
  }

  async function ended(r: AwsRun<unknown>): Promise<void> {
    const s = await r.status();
    for (const n of flatten(s.root)) assert.ok(TERMINAL.has(n.status), `${n.task} left ${n.status}`);
  }

  it("every message delivered twice: signals consumed once each, in order; a sleep fires once", async () => {
    const undo = [duplicateSends(runtime().sqs), duplicateSends(client.rt.sqs)];
    try {
      const r = await client.run(w.waitTogether, "x", 3);
      const nap = await client.run(w.napper, "1s");
      await within(recorded(r, "aloft:signal", 3), MS, "waits recorded");
      for (const v of ["a", "b", "c", "d"]) await r.signal("x", v);
      assert.deepEqual(await within(r.result(), MS, "waitTogether"), ["a", "b", "c"]);
      assert.equal(await within(nap.result(), MS, "napper"), "rested");
      const s = await signalsOf(r.id);
      assert.deepEqual(s.unconsumed, ['"d"'], "the fourth signal is kept; no wait took two");
      assert.equal(s.stored, 1, "consumed signals are cleared once their wait's outcome is written");
      assert.equal(s.waits, 0, "every satisfied wait is cleared");
      await ended(r);
    } finally {
      undo.forEach((u) => u());
    }
  });

  it("a crash right after the pairing transaction: the redelivery finishes the wait from the record", async () => {
    let crashes = 0;
    const undo = inject(runtime().ddb, "crash-after-pair", (cmd) =>
      cmd === "TransactWriteItemsCommand" && crashes++ < 2 ? "after" : undefined,
    );
    try {
      const r = await client.run(w.waitInTurn, "y", 2);
      await within(recorded(r, "aloft:signal", 1), MS, "first wait recorded");
      await r.signal("y", 1);
      await r.signal("y", 2);
      assert.deepEqual(await within(r.result(), MS, "waitInTurn"), [1, 2]);
      assert.ok(undo.injected >= 1, "the fault fired");
      assert.deepEqual((await signalsOf(r.id)).unconsumed, []);
    } finally {
      undo();
    }
  });

  it("matchers racing over five waits and five signals pair each once, in order", async () => {
    // The waits' own execs come late, so the matchers below find every wait open.
    const undo = delayWaitExecs(() => 5);
    let r: AwsRun<unknown>;
    try {
      r = await client.run(w.waitTogether, "race", 5);
      await within(recorded(r, "aloft:signal", 5), MS, "waits recorded");
      // Each wait is registered as it is dispatched, and its first exec looks for signals once.
      await within(
        (async () => {
          while ((await signalsOf(r.id)).waits < 5) await sleep(50);
        })(),
        MS,
        "waits registered",
      );
    } finally {
      undo(); // the execs already sent stay delayed
    }
    // Stored without announcing them: the racing matchers below pair them (a wait's own exec, if
    // it arrives before they are done, pairs some itself and sends its own completion).
    for (let i = 0; i < 5; i++) await storeSignal(client.rt, r.id, "race", String(i));
    const outboxes: Outbox[] = Array.from({ length: 4 }, () => []);
    await Promise.all(
      outboxes.map((o, i) => matchSignals(runtime(), r.id, "race", o, { id: `m${i}`, redelivered: false })),
    );
    const dones = outboxes.flat().map((d) => d.msg.id);
    assert.equal(new Set(dones).size, dones.length, "no wait paired twice");
    assert.ok(dones.length >= 1 && dones.length <= 5, `${dones.length} completions for five waits`);
    await sendToCoordinator(runtime(), outboxes.flat());
    assert.deepEqual(await within(r.result(), MS, "race"), [0, 1, 2, 3, 4]);
    assert.deepEqual((await signalsOf(r.id)).unconsumed, []);
  });

  it("a signal sent before its waits exist goes to the first wait made, whichever wait's exec arrives first", async () => {
    // Found by the chaos soak: of two waits made together, the second's exec, delivered first,
    // registered first and took the signal the first wait should have had. SQS delivers in any
    // order; here the first wait's exec is held back 3 s and the second's 1 s.
    const undo = delayWaitExecs((pos) => (pos === 0 ? 3 : 1));
    try {
      const r = await client.run(w.waitTogether, "order", 2);
      while (!(await client.getRun(r.id))) await sleep(20); // the coordinator creates the run
      await r.signal("order", "first"); // stored before either wait's exec has run
      // Sent once the first is consumed, while the wait that did not take it is still open.
      await within(
        (async () => {
          while ((await signalsOf(r.id)).stored > 0) await sleep(50);
        })(),
        MS,
        "the first signal consumed",
      );
      await r.signal("order", "second");
      assert.deepEqual(await within(r.result(), MS, "waitTogether"), ["first", "second"]);
      await ended(r);
    } finally {
      undo();
    }
  });

  it("a signal whose announcement was lost is matched by the reconciler's nudge", async () => {
    const r = await client.run(w.waitOnce, "lost");
    await within(recorded(r, "aloft:signal", 1), MS, "wait recorded");
    await sleep(500); // the wait's first exec has looked for signals and found none
    await storeSignal(client.rt, r.id, "lost", '"found"'); // its sender died before announcing it
    const bounds = { stallMs: 1, failMs: 3_600_000 };
    let report;
    for (let i = 0; i < 50; i++) {
      report = await reconcile(runtime(), bounds);
      if (report.nudged.some((n) => n.includes(r.id) && n.includes('"lost"'))) break;
      await sleep(100);
    }
    assert.ok(
      report?.nudged.some((n) => n.includes('"lost"')),
      JSON.stringify(report),
    );
    assert.equal(await within(r.result(), MS, "waitOnce"), "found");
  });
});
