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
import type { ActionNode, RunStatus } from "aloft";
import { startDevStack } from "../lambdas/dev.ts";
import type { DevStack } from "../lambdas/dev.ts";
import { runtime } from "../lambdas/runtime.ts";
import { AloftClient } from "../sdk/aws/client.ts";
import type { AwsRun } from "../sdk/aws/client.ts";
import * as t from "./fixtures/aws-tasks.ts";
import { duplicateSends, failFirstOfEach, inject } from "./helpers/aws-faults.ts";

const TERMINAL = new Set(["SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"]);

function flatten(n: ActionNode | undefined, out: ActionNode[] = []): ActionNode[] {
  if (!n) return out;
  out.push(n);
  for (const c of n.children) flatten(c, out);
  return out;
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>(
        (_, rej) => (timer = setTimeout(() => rej(new Error(`${what}: no result after ${ms} ms`)), ms)),
      ),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

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

describe("AWS handlers under faults", { timeout: 170_000 }, () => {
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

  it("a crash after a DynamoDB write, before the SQS send that follows it", async () => {
    let n = 0;
    const undo = inject(runtime().sqs, "crash-before-send", (cmd) =>
      cmd === "SendMessageBatchCommand" && ++n % 4 === 1 && n < 40 ? "before" : undefined,
    );
    try {
      await workload("crash before send");
    } finally {
      undo();
    }
  });

  it("a crash after an SQS send, before the DynamoDB write that follows it", async () => {
    let n = 0;
    const undo = inject(runtime().sqs, "crash-after-send", (cmd) =>
      cmd === "SendMessageBatchCommand" && ++n % 4 === 2 && n < 40 ? "after" : undefined,
    );
    try {
      await workload("crash after send");
    } finally {
      undo();
    }
  });

  it("a crash right after DynamoDB writes (conditional updates, puts, batch writes)", async () => {
    let n = 0;
    const undo = inject(runtime().ddb, "crash-after-write", (cmd) =>
      /^(UpdateCommand|PutCommand|BatchWriteCommand|UpdateItemCommand|PutItemCommand|BatchWriteItemCommand)$/.test(
        cmd,
      ) &&
      ++n % 5 === 3 &&
      n < 80
        ? "after"
        : undefined,
    );
    try {
      await workload("crash after write");
    } finally {
      undo();
    }
  });

  it("a crash after the result write, before the message delete (lost DeleteMessageBatch)", async () => {
    let n = 0;
    const undo = inject(dev.aws.clients.sqs, "lost-delete", (cmd) =>
      cmd === "DeleteMessageBatchCommand" && ++n <= 6 ? "before" : undefined,
    );
    try {
      await workload("lost delete");
    } finally {
      undo();
    }
  });

  it("throttling and transient errors: the first call of every operation fails, on both services", async () => {
    const undo = [
      failFirstOfEach(runtime().ddb, "throttle-ddb"),
      failFirstOfEach(runtime().sqs, "throttle-sqs", /^Send/),
    ];
    try {
      await workload("throttled");
    } finally {
      undo.forEach((u) => u());
    }
  });

  it("a child whose executor dies before writing times out in the parent with TaskTimeoutError", async () => {
    // Every write of the child's success fails: as if its Lambda died each time before the write.
    const undo = inject(runtime().ddb, "dies", (cmd, input) => {
      const v = input["ExpressionAttributeValues"] as Record<string, unknown> | undefined;
      return /Update/.test(cmd) && v?.[":task"] === "awsx_fragile.dies" && v?.[":st"] === "SUCCEEDED"
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
    const r = await client.run(t.slowGather, 6, 1500);
    await new Promise((res) => setTimeout(res, 600));
    await r.cancel();
    await assert.rejects(r.result(), (e: Error) => e.name === "CancelledError");
    const s = await r.status();
    assert.equal(s.state, "CANCELLED");
    assert.ok(flatten(s.root).every((n) => n.status === "CANCELLED"));
  });

  it("poison messages dead-letter after bounded retries; named runs fail clearly; a gone run is dropped", async () => {
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
      await new Promise((r) => setTimeout(r, 250));
    }
    const dead = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: res.executorDlqs["awsx"]!, MaxNumberOfMessages: 10 }),
    );
    const bodies = (dead.Messages ?? []).map((m) => m.Body);
    assert.deepEqual(bodies, ["garbage"], "the message for a gone run is dropped, not dead-lettered");
  });
});
