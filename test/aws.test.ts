/**
 * The AWS path end to end under faults: the real handlers on DynamoDB Local + fauxqs (SQS, S3),
 * driven by the local event-source poller, with SDK middleware injecting duplicate deliveries,
 * crashes between writes and sends, lost deletes and transient errors. Given any of these, expect:
 * every run ends in exactly one terminal state, each child's outcome is recorded once, results are
 * right, and (under duplicates) a gather resumes its parent once.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import type { SQSEvent } from "aws-lambda";
import type { RunStatus } from "aloft";
import { handler as coordinator } from "../lambdas/coordinator.ts";
import { startDevStack } from "../dev/stack.ts";
import type { DevStack } from "../dev/stack.ts";
import { handler as executor, options as executorOptions } from "../lambdas/executor.ts";
import { runtime } from "../sdk/aws/runtime.ts";
import { AloftClient } from "../sdk/aws/client.ts";
import type { AwsRun } from "../sdk/aws/client.ts";
import * as t from "./fixtures/aws-tasks.ts";
import {
  captureSends,
  countFailures,
  duplicateSends,
  failFirstOfEach,
  inject,
  lagReads,
  pairUp,
} from "./helpers/aws-faults.ts";
import type { Captured, Injected } from "./helpers/aws-faults.ts";
import { TERMINAL, flatten, maxOverlap } from "./helpers/status.ts";
import { sleep, within } from "./helpers/within.ts";

/** Every action terminal, every child's outcome recorded once (one node per call id), one attempt each. */
function checkTree(s: RunStatus, expect: { failed?: number } = {}): void {
  assert.ok(TERMINAL.has(s.state), `run ${s.id} left ${s.state}`);
  const nodes = flatten(s.root);
  const ids = new Set(nodes.map((n) => n.id));
  assert.equal(ids.size, nodes.length, "an action appears twice in the tree");
  for (const n of nodes) {
    assert.ok(TERMINAL.has(n.status), `${n.task} ${n.id} left ${n.status}`);
    assert.equal(n.attempts, 1, `${n.task} ${n.id} made ${n.attempts} attempts`);
  }
  assert.equal(nodes.filter((n) => n.status === "FAILED").length, expect.failed ?? 0);
}

describe("AWS handlers under faults", { timeout: 200_000 }, () => {
  let dev: DevStack;
  let client: AloftClient;

  before(async () => {
    // The injected faults log an ERROR each; the assertions say what matters.
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

  /** A gather, nested parents, a map window and a caught child failure, all at once. */
  async function workload(label: string): Promise<{ gather: AwsRun<number[]> }> {
    const [g, n, w, c] = await Promise.all([
      client.run(t.gather, 12),
      client.run(t.nested, 3),
      client.run(t.windowed, 10, 3),
      client.run(t.catches),
    ]);
    const ms = 60_000;
    assert.deepEqual(
      await within(g.result(), ms, `${label} gather`),
      Array.from({ length: 12 }, (_, i) => i * 2),
    );
    assert.deepEqual(await within(n.result(), ms, `${label} nested`), [0, 2, 20, 22, 40, 42]);
    assert.deepEqual(
      await within(w.result(), ms, `${label} window`),
      Array.from({ length: 10 }, (_, i) => i * 2),
    );
    assert.equal(await within(c.result(), ms, `${label} catches`), "TaskError");
    checkTree(await g.status());
    checkTree(await n.status());
    checkTree(await w.status());
    checkTree(await c.status(), { failed: 1 });
    return { gather: g };
  }

  /** Runs the workload with `faults` injected, removes them, and checks that each one fired. */
  async function underFault(label: string, ...faults: Injected[]): Promise<void> {
    try {
      await workload(label);
    } finally {
      faults.forEach((f) => f());
    }
    faults.forEach((f, i) =>
      assert.ok(f.injected > 0, `${label}: fault ${i + 1} of ${faults.length} never fired`),
    );
  }

  it("runs the workload cleanly; a gather resumes its parent once", async () => {
    const { gather } = await workload("clean");
    assert.equal(await gather.replays(), 1);
  });

  it("duplicate delivery of every message: same results, one outcome per child, one resume per gather", async () => {
    const undo = [duplicateSends(runtime().sqs), duplicateSends(client.rt.sqs)];
    try {
      const { gather } = await workload("duplicates");
      assert.equal(await gather.replays(), 1, "the duplicate resume must not replay the parent again");
    } finally {
      undo.forEach((u) => u());
    }
  });

  it("eventually consistent reads that lag: a replay that finds fewer results than counted reads again", async () => {
    // A replay reads its children's results eventually consistent (half the price) and checks them
    // against its counter; here every such read misses half the results, as a lagging replica may.
    const counts = { lagged: 0, strong: 0 };
    const undo = lagReads(runtime().ddb, "lagging-replica", (pk) => pk.startsWith("O#"), counts);
    try {
      const { gather } = await workload("lagging reads");
      assert.equal(await gather.replays(), 1);
    } finally {
      undo();
    }
    assert.ok(counts.lagged > 0, "some replay read lagged");
    assert.ok(counts.strong > 0, "and was read again strongly consistent");
  });

  it("a crash after a DynamoDB write, before the SQS send that follows it", async () => {
    let n = 0;
    await underFault(
      "crash before send",
      inject(runtime().sqs, "crash-before-send", (cmd) =>
        cmd === "SendMessageBatchCommand" && ++n % 4 === 1 && n < 40 ? "before" : undefined,
      ),
    );
  });

  it("a crash after an SQS send, before the DynamoDB write that follows it", async () => {
    let n = 0;
    await underFault(
      "crash after send",
      inject(runtime().sqs, "crash-after-send", (cmd) =>
        cmd === "SendMessageBatchCommand" && ++n % 4 === 2 && n < 40 ? "after" : undefined,
      ),
    );
  });

  it("a crash right after DynamoDB writes (conditional updates, puts, batch writes)", async () => {
    let n = 0;
    await underFault(
      "crash after write",
      inject(runtime().ddb, "crash-after-write", (cmd) =>
        /^(UpdateCommand|PutCommand|BatchWriteCommand|UpdateItemCommand|PutItemCommand|BatchWriteItemCommand)$/.test(
          cmd,
        ) &&
        ++n % 5 === 3 &&
        n < 80
          ? "after"
          : undefined,
      ),
    );
  });

  it("a crash after the result write, before the message delete (lost DeleteMessageBatch)", async () => {
    let n = 0;
    await underFault(
      "lost delete",
      inject(dev.aws.clients.sqs, "lost-delete", (cmd) =>
        cmd === "DeleteMessageBatchCommand" && ++n <= 6 ? "before" : undefined,
      ),
    );
  });

  it("throttling and transient errors: the first call of every operation fails, on both services", async () => {
    await underFault(
      "throttled",
      failFirstOfEach(runtime().ddb, "throttle-ddb"),
      failFirstOfEach(runtime().sqs, "throttle-sqs", /^Send/),
    );
  });

  it("a map window never exceeds its limit: duplicate and late completions, two coordinators at once, crashes", async () => {
    // The test is the event source: every message the handlers send is captured, and the test
    // delivers it — child execs twice (the second a redelivery, which reports the recorded
    // completion again), parents' execs twice at once (two copies of one message), every
    // batch of completions to two coordinators at once (their window writes paired up, so they reach
    // DynamoDB together), old completions again, late, and now and then a coordinator that crashes
    // between the window's commit and the sends that follow it (its completions come back, requeued
    // with its tokens).
    const rt = runtime();
    const sent: Captured[] = [];
    const run = `r-window-${Math.random().toString(36).slice(2, 10)}`;
    // Window releases: on a part item (W#) or on the counter that hosts the part (win.slots).
    const onWindow = (input: Record<string, unknown>) => /slots\[/.test(String(input["UpdateExpression"]));
    const toCoordinator = (c: Captured) => c.queue === dev.config.coordinatorQueue;
    let crashes = 0; // the next sends of exec messages that fail (the sender crashes)
    const lost = countFailures(
      rt.ddb,
      "count-lost-window-commits",
      "ConditionalCheckFailedException",
      (cmd, input) => /^Update(Item)?Command$/.test(cmd) && onWindow(input),
    );
    // Every completion goes through the coordinators here (executors hand theirs over when a
    // release fails; this drives that path on purpose, with the races only coordinators meet).
    executorOptions.releaseInExecutor = false;
    const undo = [
      () => void (executorOptions.releaseInExecutor = true),
      captureSends(rt.sqs, sent, "capture-sends", (c) => !toCoordinator(c) && crashes > 0 && crashes-- > 0),
      pairUp(
        rt.ddb,
        "pair-window-writes",
        (cmd, input) => /^Update(Item)?Command$/.test(cmd) && onWindow(input),
      ),
      lost.undo,
    ];
    const n = 14;
    const limit = 3;
    let seed = 7;
    const rand = (k: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % k);
    let id = 0;
    /** A message as SQS holds it: a redelivery keeps its id. */
    type Msg = { body: string; messageId: string };
    /**
     * Invokes a handler with messages (a body is a newly sent message, with a new id); returns the
     * messages it reported failed, to deliver again with the same ids.
     */
    const deliver = async (
      handler: (e: SQSEvent) => Promise<{ batchItemFailures: { itemIdentifier: string }[] }>,
      msgs: (string | Msg)[],
      receiveCount = 1,
    ): Promise<Msg[]> => {
      const attributes = { ApproximateReceiveCount: String(receiveCount) };
      const records = msgs.map((m) =>
        typeof m === "string" ? { messageId: `m${id++}`, body: m, attributes } : { ...m, attributes },
      );
      const out = await handler({ Records: records } as unknown as SQSEvent);
      const failed = new Set(out.batchItemFailures.map((f) => f.itemIdentifier));
      return records
        .filter((r) => failed.has(r.messageId))
        .map((r) => ({ body: r.body, messageId: r.messageId }));
    };
    const mine = (c: Captured) => c.body.includes(run);
    const take = (q: (c: Captured) => boolean) => {
      const out = sent.filter((c) => mine(c) && q(c));
      for (const c of out) sent.splice(sent.indexOf(c), 1);
      return out.map((c) => c.body);
    };
    const dispatched = new Set<string>();
    const completed = new Set<string>();
    let maxInFlight = 0;
    let recovered = 0; // items first sent while failed batches were delivered again
    let recovering = false;
    const resent: string[] = []; // items sent again outside a recovery
    const pending: string[] = []; // child exec messages not delivered yet
    const late: string[] = []; // completions delivered once already, to deliver again later
    const retry: Msg[] = []; // messages a handler reported failed (SQS delivers them again)
    const check = (when: string) => {
      const inFlight = [...dispatched].filter((c) => !completed.has(c)).length;
      maxInFlight = Math.max(maxInFlight, inFlight);
      assert.ok(inFlight <= limit, `${when}: ${inFlight} children in flight > limit ${limit}`);
    };
    // Sends made by the parent's duplicate deliveries: the one that loses may send the epoch's
    // calls again when it cannot tell the winner is still sending them (fan-out.ts redispatch).
    const byParent = new Set<string>();
    const collectExecs = async () => {
      const fromParent = new Set(byParent);
      byParent.clear();
      for (const body of take((c) => !toCoordinator(c))) {
        const m = JSON.parse(body) as { id: string; parent: string | null };
        if (m.parent === null) {
          // The parent (first execution or a resume): delivered twice at once; one replays.
          const before = sent.length;
          const [a, b] = await Promise.all([deliver(executor, [body]), deliver(executor, [body])]);
          for (const c of sent.slice(before)) byParent.add(c.body);
          retry.push(...a, ...b);
          continue;
        }
        if (!dispatched.has(m.id) && recovering) recovered++;
        // Only a crashed coordinator's own redelivery sends an item again; a duplicate or late
        // completion (another message) sends nothing.
        if (dispatched.has(m.id) && !recovering && !fromParent.has(body)) resent.push(m.id);
        dispatched.add(m.id);
        pending.push(body);
      }
      check("after dispatch");
    };
    try {
      await deliver(coordinator, [
        JSON.stringify({
          k: "start",
          v: 1,
          run,
          task: t.windowed.taskName,
          args: `[${n},${limit}]`,
          created: 1,
        }),
      ]);
      for (let round = 0; round < 400; round++) {
        await collectExecs();
        const item = await client.getRun(run);
        if (item?.status !== "RUNNING" && !pending.length && !retry.length && !sent.some(mine)) break;
        // Complete one or two children (any in flight, not only the oldest), each delivered twice:
        // the second delivery is a redelivery (as after a crash before the delete), which reports
        // the recorded outcome again.
        for (let k = 1 + rand(2); k > 0 && pending.length; k--) {
          const body = pending.splice(rand(pending.length), 1)[0]!;
          retry.push(...(await deliver(executor, [body])));
          completed.add((JSON.parse(body) as { id: string }).id);
          retry.push(...(await deliver(executor, [body], 2)));
        }
        // Messages that failed last round come back first (a crashed coordinator's batch: its
        // completions find their slots moved on, marked by that very message, and send the occupants).
        recovering = retry.length > 0;
        for (const msg of retry.splice(0)) {
          const again = JSON.parse(msg.body) as { k: string };
          retry.push(...(await deliver(again.k === "exec" ? executor : coordinator, [msg], 2)));
        }
        await collectExecs();
        recovering = false;
        const dones = take(toCoordinator);
        // Completions a crashed coordinator sent back to the queue (with its tokens): what they
        // let out is recovered from the window's marks too (coord/completions.ts countCompletions).
        const requeued = dones.some((b) => b.includes('"tok":'));
        if (dones.length && round % 5 === 3) {
          // One coordinator, crashing right after its window commit, before the sends.
          crashes = 1;
          retry.push(...(await deliver(coordinator, dones)));
          crashes = 0;
        } else if (dones.length) {
          // Two coordinators at once: on even rounds both get the same batch, on odd rounds each
          // its own part of it (different completions of one window at once); the first also
          // gets earlier completions again, late.
          const again = late.splice(0, rand(3));
          const half = round % 2 === 0 ? dones.length : Math.ceil(dones.length / 2);
          const other = round % 2 === 0 ? dones : dones.slice(half);
          const [a, b] = await Promise.all([
            deliver(coordinator, [...dones.slice(0, half), ...again]),
            deliver(coordinator, other),
          ]);
          retry.push(...a, ...b);
          late.push(...dones);
        } else if (late.length) retry.push(...(await deliver(coordinator, late.splice(0, 2))));
        if (requeued) {
          recovering = true;
          await collectExecs();
          recovering = false;
        }
        check(`round ${round}`);
      }
      assert.deepEqual(
        await within(client.attach<number[]>(run).result(), 5_000, "windowed"),
        Array.from({ length: n }, (_, i) => i * 2),
      );
      assert.equal(dispatched.size, n, "every item was let out");
      assert.equal(maxInFlight, limit, "the window was used to its limit, never beyond");
      assert.ok(lost.count > 0, "two coordinators released the same slot at once (one lost) at least once");
      assert.ok(recovered > 0, "a crashed coordinator's sends were recovered from the window's marks");
      assert.deepEqual(resent, [], "duplicate and late completions sent no item again");
    } finally {
      undo.forEach((u) => u());
    }
  });

  it("an executor crashing right after releasing window slots hands over to the coordinator, which sends the occupants", async () => {
    // The parent's counter hosts the window; executors release their children's slots themselves.
    // The first releases "crash" right after committing, before the new occupants are sent: the
    // coordinator gets those completions with the executor's token, finds the slots moved on under
    // it, and sends the occupants. Without that, those slots would be lost and the map would stall.
    let n = 0;
    const undo = inject(runtime().ddb, "crash-after-release", (cmd, input) =>
      /^Update(Item)?Command$/.test(cmd) && /win\.slots\[/.test(String(input["UpdateExpression"])) && ++n <= 4
        ? "after"
        : undefined,
    );
    try {
      const r = await client.run(t.windowed, 12, 3);
      assert.deepEqual(
        await within(r.result(), 30_000, "windowed after crashed releases"),
        Array.from({ length: 12 }, (_, i) => i * 2),
      );
      checkTree(await r.status());
    } finally {
      undo();
    }
    assert.ok(n > 4, "releases crashed and the map went on");
  });

  it("a window wider than one part (concurrency 70 of 160): parts add up, never more in flight", async () => {
    const r = await client.run(t.wideMap, 160, 70);
    assert.equal(await within(r.result(), 60_000, "wide window"), 160);
    const kids = (await r.status()).root!.children;
    assert.equal(kids.length, 160);
    assert.ok(kids.every((k) => k.status === "SUCCEEDED"));
    const max = maxOverlap(kids);
    assert.ok(max <= 70, `max in flight ${max} > 70`);
    assert.ok(max >= 2, `max in flight ${max}: the window never ran children side by side`);
  });

  it("actions that end well within their timeout send no deadline check; a parent that suspends does", async () => {
    const timeoutChecks = (input: Record<string, unknown>) =>
      [
        ...((input["Entries"] as { MessageBody?: string }[] | undefined) ?? []).map((e) => e.MessageBody),
        input["MessageBody"] as string | undefined,
      ].filter((b) => b !== undefined && /"k":"timeout"/.test(b)).length;
    let checks = 0;
    const undo = inject(runtime().sqs, "count-checks", (_cmd, input) => {
      checks += timeoutChecks(input);
      return undefined;
    });
    try {
      // A 20 s timeout: the batch would have to stay open 5 s to send a check, even when loaded.
      const flat = await client.run(t.wideGatherRoomy, 20);
      assert.equal(await within(flat.result(), 30_000, "wideGatherRoomy"), 20);
      assert.equal(checks, 0, "twenty children with a 20 s timeout, each done in milliseconds");
      const parent = await client.run(t.timedParent, 5);
      assert.equal(await within(parent.result(), 30_000, "timedParent"), 5);
      assert.equal(checks, 1, "the parent's check, sent as it suspended");
    } finally {
      undo();
    }
  });

  it("a child parent's first exec, delivered again after it suspended, does not run its body again", async () => {
    // The child's executor crashes right after committing its first suspension: SQS delivers the
    // exec again (receive count 2). That redelivery must read the child's own counter, find it
    // suspended, and only finish what the crash left undone — not replay the body from nothing.
    const key = `k-${Math.random().toString(36).slice(2, 8)}`;
    let crashed = 0;
    const undo = inject(runtime().ddb, "crash-after-child-commit", (cmd, input) => {
      const pk = String((input["Key"] as { pk?: string } | undefined)?.pk);
      const commit = /^SET epoch = :e1/.test(String(input["UpdateExpression"]));
      return /^Update(Item)?Command$/.test(cmd) && commit && !pk.startsWith("A#r-") && crashed++ === 0
        ? "after"
        : undefined;
    });
    try {
      const r = await client.run(t.callsTracedParent, key);
      assert.equal(await within(r.result(), 30_000, "callsTracedParent"), 3);
    } finally {
      undo();
    }
    assert.equal(crashed > 0, true, "the child's first commit crashed");
    assert.equal(t.notedRuns(key), 1, "the traced step ran once");
  });

  it("a leaf whose synchronous body overruns its timeout is timed out, not recorded as a success", async () => {
    // Nothing interrupts a synchronous body (not even the timer that would send its check): the
    // executor sees the overrun when the body returns and sends the check instead of the outcome.
    const r = await client.run(t.callsHog, 1_000);
    assert.equal(await within(r.result(), 30_000, "callsHog"), "TaskTimeoutError");
    const child = (await r.status()).root!.children[0]!;
    assert.equal(child.status, "TIMED_OUT");
  });

  it("a child whose executor dies before writing times out in the parent with TaskTimeoutError", async () => {
    // Every write of the child's success fails: as if its Lambda died each time before the write.
    const undo = inject(runtime().ddb, "dies", (cmd, input) => {
      const v = input["ExpressionAttributeValues"] as Record<string, unknown> | undefined;
      return /Update/.test(cmd) && String(v?.[":o"]).includes("survived") && v?.[":st"] === "SUCCEEDED"
        ? "before"
        : undefined;
    });
    try {
      const r = await client.run(t.callsDies);
      assert.equal(await within(r.result(), 30_000, "callsDies"), "TaskTimeoutError");
      const child = (await r.status()).root!.children[0]!;
      assert.equal(child.status, "TIMED_OUT");
    } finally {
      undo();
    }
  });

  it("children running twice as long as their queue's 2 s visibility run once: the handlers hold a lease", async () => {
    // The poller invokes the wrapped handlers (lambdas/visibility.ts), which renew the messages'
    // visibility every 2/3 s; without that each child's exec would be delivered again mid-body.
    const key = `lease-${Math.random().toString(36).slice(2, 10)}`;
    const r = await client.run(t.slowGather, key, 3, 4000);
    assert.deepEqual(await within(r.result(), 30_000, "slowGather"), [4000, 4000, 4000]);
    assert.equal(t.slowStarted(key), 3, "a child's body began again while it was still running");
    checkTree(await r.status());
  });

  it("multi-MB results and arguments are offloaded to S3 and read back", async () => {
    const [p, root, args] = await Promise.all([
      client.run(t.bigParent, 3),
      client.run(t.bigRoot),
      client.run(t.bigArgs),
    ]);
    assert.deepEqual(await within(p.result(), 30_000, "bigParent"), { length: 3 * 1024 * 1024, head: "xxx" });
    const s = await within(root.result(), 30_000, "bigRoot");
    assert.equal(s.length, 3 * 1024 * 1024);
    assert.equal(await within(args.result(), 30_000, "bigArgs"), 1024 * 1024);
    const item = await client.getRun(root.id);
    assert.match(item!.outcome!, /^s3:\/\//, "the root's 3 MB outcome is a reference, not inline");
  });

  it("cancel reaches queued and running descendants", async () => {
    const key = `cancel-${Math.random().toString(36).slice(2, 10)}`;
    const r = await client.run(t.slowGather, key, 6, 3000);
    // Cancel once the children are in the tree and their bodies have begun (not before dispatch).
    const deadline = Date.now() + 30_000;
    for (;;) {
      const kids = (await r.status()).root?.children ?? [];
      const running = kids.filter((k) => k.status === "RUNNING").length;
      if (kids.length === 6 && running > 0 && t.slowStarted(key) >= 2) break;
      assert.ok(
        Date.now() < deadline,
        `no children running: ${kids.length} in the tree, ${running} RUNNING, ${t.slowStarted(key)} begun`,
      );
      await sleep(50);
    }
    await r.cancel();
    await assert.rejects(r.result(), (e: Error) => e.name === "CancelledError");
    const s = await r.status();
    assert.equal(s.state, "CANCELLED");
    assert.equal(flatten(s.root).length, 1 + 6, "the parent and its six children");
    assert.ok(flatten(s.root).every((n) => n.status === "CANCELLED"));
  });

  it("poison messages dead-letter after bounded retries; named runs fail clearly; a gone run is dropped", async () => {
    // This test reads the dead-letter queues itself: stop their consumer (test/aws-dead-letter-reconcile.test.ts tests it).
    await Promise.all(dev.deadLetterPollers.map((p) => p.stop()));
    const sqs = dev.aws.clients.sqs;
    const res = dev.aws.resources;
    const send = (QueueUrl: string, MessageBody: string) =>
      sqs.send(new SendMessageCommand({ QueueUrl, MessageBody }));
    const execQueue = res.executorQueues["awsx"]!;
    await Promise.all([
      send(res.coordinatorQueueUrl, "{not json"),
      send(res.coordinatorQueueUrl, JSON.stringify({ hello: "world" })),
      send(res.coordinatorQueueUrl, JSON.stringify({ k: "start", v: 1, run: "r-poison-start", task: 5 })),
      send(execQueue, "garbage"),
      send(
        execQueue,
        JSON.stringify({
          k: "exec",
          v: 1,
          run: "r-gone",
          id: "r-gone",
          parent: null,
          task: "awsx.double",
          group: "",
          args: "[1]",
          attempt: 1,
          epoch: 0,
        }),
      ),
    ]);
    const unknown = await client.start("nope.missing", "[]");
    await assert.rejects(within(unknown.result(), 20_000, "unknown task"), (e: Error) =>
      /unknown task "nope.missing"; registered: .*awsx\.double/.test(e.message),
    );
    await assert.rejects(
      within(client.attach("r-poison-start").result(), 20_000, "malformed start"),
      (e: Error) => /malformed message for this run was rejected/.test(e.message),
    );
    const depth = async (url: string) =>
      Number(
        (
          await sqs.send(
            new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["ApproximateNumberOfMessages"] }),
          )
        ).Attributes?.ApproximateNumberOfMessages ?? 0,
      );
    const deadline = Date.now() + 60_000;
    while ((await depth(res.coordinatorDlqUrl)) < 3 || (await depth(res.executorDlqs["awsx"]!)) < 1) {
      assert.ok(Date.now() < deadline, "poison messages did not reach the dead-letter queues");
      await sleep(250);
    }
    const dead = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: res.executorDlqs["awsx"]!, MaxNumberOfMessages: 10 }),
    );
    const bodies = (dead.Messages ?? []).map((m) => m.Body);
    assert.deepEqual(bodies, ["garbage"], "the message for a gone run is dropped, not dead-lettered");
  });
});
