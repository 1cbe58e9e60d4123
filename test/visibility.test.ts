/**
 * The visibility lease (lambdas/visibility.ts) against the real fauxqs SQS, in virtual time at
 * production ratios: a 60 s lease renewed every 20 s, queues whose own visibility timeout is six
 * times a function timeout of minutes, tasks that run for minutes. The test is the event source
 * (receive, invoke with a Lambda context, delete what succeeded); a killed sandbox is an invocation
 * that never returns and whose timers are gone. The timing scenarios also run without the lease
 * (or with every heartbeat lost), and must then fail their own expectation: the assertions can
 * tell the difference. A task timeout reaches the lease only as the function's timeout (its
 * deadline, and 6x it as the queue's visibility); the coordinator's deadline checks are tested in
 * aws.test.ts.
 */
import assert from "node:assert/strict";
import { after, afterEach, before, beforeEach, describe, it } from "node:test";
import { setImmediate as turn } from "node:timers/promises";
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import type { SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { DEFAULT_LOCAL_REGION, LOCAL_CREDENTIALS } from "../dev/aws-clients.ts";
import { lambdaContext, toSqsRecord } from "../dev/sqs-event.ts";
import { startSqsLocal } from "../dev/sqs-local.ts";
import type { SqsLocal } from "../dev/sqs-local.ts";
import { TaskEnvironment } from "aloft";
import { visibilitySettings } from "../dev/stack.ts";
import { retryDelaySeconds, withHeartbeat } from "../lambdas/visibility.ts";
import type { BatchHandler, LeaseSettings } from "../lambdas/visibility.ts";
import { addMiddleware, inject } from "./helpers/aws-faults.ts";
import { VirtualClock } from "./helpers/virtual-clock.ts";

const LEASE = 60;
const S = 1000;
const MIN = 60 * S;

interface Queue {
  url: string;
  arn: string;
  dlqUrl: string;
}

describe("visibility lease and heartbeat (fauxqs, virtual time)", { timeout: 120_000 }, () => {
  let local: SqsLocal;
  let sqs: SQSClient;
  let inFlight = 0;
  let clock: VirtualClock;
  let restoreDate: () => void;
  let warnings: string[];
  const queues = new Map<string, Queue>();
  let n = 0;

  /** Done when no request to fauxqs is in flight and the promise chains after them have run. */
  const settle = async (): Promise<void> => {
    for (let quiet = 0; quiet < 3;) {
      await turn();
      quiet = inFlight === 0 ? quiet + 1 : 0;
    }
  };

  before(async () => {
    local = await startSqsLocal();
    sqs = new SQSClient({
      endpoint: local.endpoint,
      region: DEFAULT_LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
      useQueueUrlAsEndpoint: false,
    });
    addMiddleware(sqs, "count-in-flight", async (args, next) => {
      inFlight++;
      try {
        return await next(args);
      } finally {
        inFlight--;
      }
    });
  });
  after(async () => {
    sqs.destroy();
    await local.stop();
  });
  beforeEach(() => {
    clock = new VirtualClock(settle);
    restoreDate = clock.installAsDateNow(); // fauxqs times visibility with Date.now
    warnings = [];
  });
  afterEach(() => restoreDate());

  /** A queue with a DLQ, its own visibility timeout `visibility` seconds, holding `bodies`. */
  async function queue(visibility: number, bodies: string[], maxReceiveCount = 5): Promise<Queue> {
    const name = `vis-${++n}-${Math.random().toString(36).slice(2, 8)}`;
    const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }));
    const dlqArn = await arnOf(dlq.QueueUrl!);
    const out = await sqs.send(
      new CreateQueueCommand({
        QueueName: name,
        Attributes: {
          VisibilityTimeout: String(visibility),
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount }),
        },
      }),
    );
    const q = { url: out.QueueUrl!, arn: await arnOf(out.QueueUrl!), dlqUrl: dlq.QueueUrl! };
    queues.set(q.arn, q);
    for (const b of bodies) await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: b }));
    return q;
  }
  async function arnOf(url: string): Promise<string> {
    const a = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] }));
    return a.Attributes!.QueueArn!;
  }

  /** A Lambda function: `handler` wrapped in the lease, or bare (`lease: false`, the control). */
  function fn(handler: BatchHandler, lease: boolean, settings: Partial<LeaseSettings> = {}): BatchHandler {
    if (!lease) return handler;
    return withHeartbeat(handler, {
      settings: { visibilityTimeoutSeconds: LEASE, ...settings },
      clock,
      sqs: () => sqs,
      queueUrl: (arn) => queues.get(arn)?.url,
      log: (message) => warnings.push(message),
    });
  }

  /**
   * Lambda's event source: receives a batch and invokes `handler` with a context whose deadline is
   * `timeoutSeconds` away; when the invocation returns, deletes the messages that did not fail.
   */
  async function deliver(
    q: Queue,
    handler: BatchHandler,
    timeoutSeconds: number,
  ): Promise<{ records: SQSRecord[]; done: Promise<SQSBatchResponse> }> {
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: q.url,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        MessageSystemAttributeNames: ["All"],
      }),
    );
    const source = { eventSourceARN: q.arn, awsRegion: DEFAULT_LOCAL_REGION };
    const records = (out.Messages ?? []).map((m) => toSqsRecord(m, source));
    const context = lambdaContext({ functionName: "f", region: DEFAULT_LOCAL_REGION, timeoutSeconds });
    const event: SQSEvent = { Records: records };
    const done = records.length ? handler(event, context) : Promise.resolve({ batchItemFailures: [] });
    void done
      .then(async (r) => {
        const failed = new Set(r.batchItemFailures.map((f) => f.itemIdentifier));
        const ok = records.filter((m) => !failed.has(m.messageId));
        if (!ok.length) return;
        const Entries = ok.map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.receiptHandle }));
        await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: q.url, Entries }));
      })
      .catch(() => undefined);
    await settle();
    return { records, done };
  }

  /** Advances time in `stepMs` steps until a message of `q` is received (its bodies), or `limitMs` passes. */
  async function nextDelivery(
    q: Queue,
    limitMs: number,
    stepMs = S,
  ): Promise<{ afterMs: number; records: SQSRecord[] } | undefined> {
    const start = clock.now();
    while (clock.now() - start < limitMs) {
      await clock.advance(stepMs);
      const { records } = await deliver(q, async () => ({ batchItemFailures: [] }), 900);
      if (records.length) return { afterMs: clock.now() - start, records };
    }
    return undefined;
  }

  /** A task body that runs `ms` of virtual time (forever: a sandbox about to die mid-task). */
  const task =
    (runs: string[], ms: number | "forever"): BatchHandler =>
    async (event) => {
      for (const r of event.Records) runs.push(r.messageId);
      await (ms === "forever" ? new Promise<never>(() => undefined) : clock.sleep(ms));
      return { batchItemFailures: [] };
    };

  const cases: { name: string; fnTimeout: number; killAt: number; hangs?: boolean }[] = [
    // The queue keeps 6x the function timeout (AWS's advice for throttled retries); the lease is
    // taken as the invocation starts, so a crash before the first heartbeat is recovered as fast.
    { name: "with a task timeout (5 min), killed after 0.5 s", fnTimeout: 300, killAt: S / 2 },
    { name: "with a task timeout (5 min), killed after 5 s", fnTimeout: 300, killAt: 5 * S },
    { name: "with a task timeout (5 min), killed after 130 s", fnTimeout: 300, killAt: 130 * S },
    {
      name: "without a task timeout (a 15-minute function), killed after 130 s",
      fnTimeout: 900,
      killAt: 130 * S,
    },
    // Still running at the function's deadline (Lambda ends it there; the local poller cannot):
    // no heartbeat is sent past the deadline, so the message is back a lease after it at most.
    { name: "still running at the function's deadline (90 s)", fnTimeout: 90, killAt: 90 * S, hangs: true },
  ];
  for (const c of cases) {
    it(`a sandbox killed mid-invocation, ${c.name}: its message is back about one lease later`, async () => {
      const run = async (lease: boolean) => {
        const q = await queue(6 * c.fnTimeout, ["work"]);
        const runs: string[] = [];
        await deliver(
          q,
          fn(task(runs, "forever"), lease, { queueVisibilityTimeoutSeconds: 6 * c.fnTimeout }),
          c.fnTimeout,
        );
        assert.equal(runs.length, 1);
        await clock.advance(c.killAt);
        if (!c.hangs) clock.dropAll(); // the sandbox dies with its timers
        return nextDelivery(q, 5 * LEASE * S);
      };
      const back = await run(true);
      assert.ok(back, "the message never came back within five leases of the crash");
      // The last heartbeat was at most a third of a lease before the crash.
      assert.ok(back.afterMs <= LEASE * S, `back ${back.afterMs} ms after the crash: more than one lease`);
      assert.ok(back.afterMs > (2 / 3) * LEASE * S - S, `back ${back.afterMs} ms after the crash: too soon`);
      assert.equal(back.records[0]!.attributes.ApproximateReceiveCount, "2");
      assert.equal(
        await run(false),
        undefined,
        "without the lease the message came back early: the test cannot fail",
      );
    });
  }

  for (const queueVisibility of [LEASE, 6 * 300]) {
    it(`a task running 4 minutes (queue visibility ${queueVisibility} s) is never delivered twice`, async () => {
      const run = async (lease: boolean) => {
        const q = await queue(queueVisibility, ["long"]);
        const runs: string[] = [];
        const { done } = await deliver(
          q,
          fn(task(runs, 4 * MIN), lease, { queueVisibilityTimeoutSeconds: queueVisibility }),
          300,
        );
        let finished = false;
        void done.then(() => (finished = true));
        // Another poller tries the queue every second for the whole run, and a minute after.
        const again = await nextDelivery(q, 5 * MIN);
        return { runs: runs.length + (again ? again.records.length : 0), finished };
      };
      const leased = await run(true);
      assert.ok(leased.finished, "the task finished");
      assert.equal(leased.runs, 1, "the task was delivered again while it ran");
      assert.deepEqual(warnings, []);
      // Without the lease a 60 s queue hands the message out again mid-task.
      if (queueVisibility === LEASE) assert.equal((await run(false)).runs, 2);
    });
  }

  it("the lease is taken as an invocation starts: one request per ten messages, then one per third of a lease", async () => {
    let changes = 0;
    const undo = addMiddleware(sqs, "count-changes", async (args, next, command) => {
      if (command === "ChangeMessageVisibilityBatchCommand") changes++;
      return next(args);
    });
    try {
      const settings = { queueVisibilityTimeoutSeconds: 6 * 300 };
      const bodies = Array.from({ length: 10 }, (_, i) => `short-${i}`);
      const short = await deliver(await queue(6 * 300, bodies), fn(task([], 200), true, settings), 300);
      assert.equal(short.records.length, 10);
      await clock.advance(300);
      await short.done;
      assert.equal(changes, 1, "a 200 ms invocation of ten messages takes its lease in one request");
      const longer = await deliver(
        await queue(6 * 300, ["longer"]),
        fn(task([], 50 * S), true, settings),
        300,
      );
      await clock.advance(50 * S);
      await longer.done;
      assert.equal(changes, 1 + 3, "a 50 s invocation: the lease at its start, renewed at 20 s and 40 s");
    } finally {
      undo();
    }
  });

  it("a throttled heartbeat is absorbed: the next one renews the lease in time", async () => {
    const run = async (throttled: (call: number) => boolean) => {
      const q = await queue(LEASE, ["throttled"]);
      let call = 0;
      const fault = inject(sqs, "throttle-heartbeat", (cmd) =>
        cmd === "ChangeMessageVisibilityBatchCommand" && throttled(++call) ? "before" : undefined,
      );
      try {
        const runs: string[] = [];
        await deliver(q, fn(task(runs, 3 * MIN), true, { queueVisibilityTimeoutSeconds: LEASE }), 300);
        const again = await nextDelivery(q, 3 * MIN);
        return { again, injected: fault.injected };
      } finally {
        fault();
      }
    };
    const once = await run((call) => call === 1);
    assert.equal(once.injected, 1, "the first heartbeat was throttled");
    assert.equal(once.again, undefined, "delivered again after one throttled heartbeat");
    assert.deepEqual(warnings, ["heartbeat failed"]);
    // Every heartbeat lost: the message comes back a lease after the invocation began.
    const always = await run(() => true);
    assert.ok(always.again && always.again.afterMs <= LEASE * S, "lost heartbeats went unnoticed");
  });

  it("a failed item comes back after its own backoff (2^receives s), and dead-letters after maxReceiveCount", async () => {
    const run = async (lease: boolean) => {
      const q = await queue(6 * 300, ["fails", "succeeds"], 3);
      const failing: BatchHandler = async (event) => ({
        batchItemFailures: event.Records.filter((r) => r.body === "fails").map((r) => ({
          itemIdentifier: r.messageId,
        })),
      });
      const handler = fn(failing, lease, { queueVisibilityTimeoutSeconds: 6 * 300 });
      const delivered: number[] = [];
      const start = clock.now();
      // The event source polls every half second for two minutes.
      while (clock.now() - start < 2 * MIN) {
        const { records, done } = await deliver(q, handler, 300);
        if (records.length) {
          await done;
          await settle();
          delivered.push(clock.now() - start);
        }
        await clock.advance(S / 2);
      }
      return { delivered, dead: await depth(q.dlqUrl) };
    };
    const leased = await run(true);
    // Received at 0 (with its neighbour), again 2 s later, 4 s after that; its fourth receive
    // (8 s later) finds it past maxReceiveCount 3 and moves it to the dead-letter queue.
    assert.deepEqual(leased.delivered, [0, 2 * S, 6 * S]);
    assert.equal(leased.dead, 1);
    const bare = await run(false);
    assert.deepEqual(bare.delivered, [0], "without the lease a failed item waits out the queue's 30 minutes");
    assert.equal(bare.dead, 0);
  });

  it("a handler that throws: its whole batch comes back after the backoff, and the error still surfaces", async () => {
    const q = await queue(6 * 300, ["a", "b"]);
    const boom: BatchHandler = async () => {
      throw new Error("boom");
    };
    const { records, done } = await deliver(q, fn(boom, true, { queueVisibilityTimeoutSeconds: 1800 }), 300);
    assert.equal(records.length, 2);
    await assert.rejects(done, /boom/);
    const back = await nextDelivery(q, MIN, S / 2);
    assert.equal(back?.afterMs, 2 * S);
    assert.equal(back?.records.length, 2);
  });

  async function depth(url: string): Promise<number> {
    const a = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["ApproximateNumberOfMessages"] }),
    );
    return Number(a.Attributes?.ApproximateNumberOfMessages ?? 0);
  }

  it("aloft dev gives each queue its lease: a TaskEnvironment's visibilityTimeout, 60 s, or one for all", () => {
    new TaskEnvironment({ name: "vis_env", visibilityTimeout: "90s" });
    new TaskEnvironment({ name: "vis_default" });
    const envs = ["vis_env", "vis_default"];
    assert.deepEqual(visibilitySettings({}, envs), {
      coordinator: 60,
      executors: { vis_env: 90, vis_default: 60 },
    });
    assert.deepEqual(visibilitySettings({ coordinatorVisibilityTimeoutSeconds: 30 }, envs).coordinator, 30);
    assert.deepEqual(visibilitySettings({ visibilityTimeoutSeconds: 2 }, envs), {
      coordinator: 2,
      executors: { vis_env: 2, vis_default: 2 },
    });
  });

  it("retry delays double per receive and stop at the cap", () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7].map((r) => retryDelaySeconds(r, 60)),
      [2, 4, 8, 16, 32, 60, 60],
    );
  });
});
