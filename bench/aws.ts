/**
 * The AWS path on the local implementations (DynamoDB Local, fauxqs): three scenarios, a gather of
 * N children, a map of N with concurrency 50, and a gather of N children that each have a timeout,
 * through the real handlers and the local event-source poller.
 * Then what a cache hit costs (a second run of a gather of N cached children) beside what a reused
 * child of a recovery costs (`recover` of a gather of N whose last child failed).
 * Then what a durable sleep, a signal and a callback cost: a gather of N `sleep("1s")`, and a gather of N
 * `waitForSignal`, each for its own signal, with the N signals sent by a client (whose calls are
 * metered too: sending is part of a signal's cost).
 * Prints wall time, parent replays, AWS API calls per child by operation (counted with SDK
 * middleware), billed units, and the orchestration cost per million children at list prices.
 *
 * Billed units follow AWS's rules, not only what DynamoDB Local reports (ReturnConsumedCapacity):
 * DynamoDB Local charges nothing for keys a BatchGetItem does not find, for a Query that finds
 * nothing, and for a write whose condition fails, where AWS charges a read (0.5 or 1 unit) per key,
 * a minimum read per Query, and the write (1 unit for the items Aloft guards, all under 1 KB). The
 * bench adds those. SQS bills each request per 64 KB of payload; receives are counted when they
 * return messages (idle long polls are a fixed cost per queue, not per child).
 *   node --import tsx bench/aws.ts [n=1000]
 */
import { startDevStack } from "../dev/stack.ts";
import { buildRuntime, makeClients, runtime } from "../sdk/aws/runtime.ts";
import { reconcile } from "../lambdas/reconcile.ts";
import { readCounter } from "../sdk/aws/store/counters.ts";
import { AloftClient } from "../sdk/aws/client.ts";
import {
  cachedGather,
  failLast,
  gatherCallbacks,
  gatherFailingLast,
  handedOut,
  gatherSignals,
  gatherSleeps,
  wideGather,
  wideGatherTimed,
  wideMap,
} from "../test/fixtures/aws-tasks.ts";
import type { AwsRun } from "../sdk/aws/client.ts";

/** USD per million units or requests (AWS list prices, US East). */
const PRICES = {
  dynamoWriteUnit: 0.625,
  dynamoReadUnit: 0.125,
  sqsRequest: 0.4,
  lambdaRequest: 0.2,
};

/** $0.625, $0.40: at least two decimals, and every one the price has. */
function usd(x: number): string {
  return `$${Number(x.toFixed(2)) === x ? x.toFixed(2) : String(x)}`;
}

interface Stack {
  middlewareStack: { add(mw: unknown, o: { step: "initialize"; name: string; override?: boolean }): void };
}

type Io = { input: Record<string, unknown> };
type Out = { output: Record<string, unknown> };

const calls = new Map<string, number>();
/** Read and write units: as DynamoDB Local reports them, and what it leaves out that AWS bills. */
const capacity = { read: 0, write: 0, readAdded: 0, writeAdded: 0 };
const sqs = { requests: 0, idleReceives: 0 };
const READS = /^(Get|BatchGet|Query|Scan)/;
const CHUNK = 64 * 1024;

function units(out: Record<string, unknown>): number {
  const cc = out["ConsumedCapacity"] as { CapacityUnits?: number }[] | { CapacityUnits?: number } | undefined;
  return (Array.isArray(cc) ? cc : cc ? [cc] : []).reduce((s, c) => s + (c.CapacityUnits ?? 0), 0);
}

function meterDynamo(client: Stack, name: string): void {
  client.middlewareStack.add(
    (next: (a: Io) => Promise<Out>, ctx: { commandName?: string }) => async (args: Io) => {
      const cmd = (ctx.commandName ?? "?")
        .replace(/Command$/, "")
        .replace(/^(Get|Put|Update|Delete)$/, "$1Item");
      calls.set(cmd, (calls.get(cmd) ?? 0) + 1);
      args.input["ReturnConsumedCapacity"] = "TOTAL";
      let out: Out;
      try {
        out = await next(args);
      } catch (e) {
        // A write whose condition fails is billed (and DynamoDB Local reports nothing for it).
        if ((e as Error).name === "ConditionalCheckFailedException") capacity.writeAdded += 1;
        throw e;
      }
      const u = units(out.output);
      if (READS.test(cmd)) capacity.read += u;
      else capacity.write += u;
      if (cmd === "BatchGetItem") {
        const req = args.input["RequestItems"] as Record<
          string,
          { Keys: unknown[]; ConsistentRead?: boolean }
        >;
        const got = (out.output["Responses"] ?? {}) as Record<string, unknown[]>;
        for (const [table, r] of Object.entries(req)) {
          const missing = r.Keys.length - (got[table]?.length ?? 0);
          capacity.readAdded += missing * (r.ConsistentRead ? 1 : 0.5);
        }
      } else if (cmd === "Query" && u === 0) capacity.readAdded += args.input["ConsistentRead"] ? 1 : 0.5;
      return out;
    },
    { step: "initialize", name, override: true },
  );
}

function meterSqs(client: Stack, name: string): void {
  client.middlewareStack.add(
    (next: (a: Io) => Promise<Out>, ctx: { commandName?: string }) => async (args: Io) => {
      const cmd = (ctx.commandName ?? "?").replace(/Command$/, "");
      calls.set(cmd, (calls.get(cmd) ?? 0) + 1);
      const out = await next(args);
      const bytes = (bodies: (string | undefined)[]) =>
        Math.max(1, Math.ceil(bodies.reduce((s, b) => s + Buffer.byteLength(b ?? ""), 0) / CHUNK));
      if (cmd === "SendMessageBatch")
        sqs.requests += bytes(
          (args.input["Entries"] as { MessageBody?: string }[]).map((e) => e.MessageBody),
        );
      else if (cmd === "SendMessage") sqs.requests += bytes([args.input["MessageBody"] as string]);
      else if (cmd === "DeleteMessageBatch") sqs.requests += 1;
      else if (cmd === "ReceiveMessage") {
        const msgs = (out.output["Messages"] ?? []) as { Body?: string }[];
        if (msgs.length) sqs.requests += bytes(msgs.map((m) => m.Body));
        else sqs.idleReceives++;
      }
      return out;
    },
    { step: "initialize", name, override: true },
  );
}

const n = Number(process.argv[2] ?? 1000);
process.env["POWERTOOLS_LOG_LEVEL"] ??= "ERROR";
const dev = await startDevStack({
  visibilityTimeoutSeconds: 60,
  executorConcurrency: 8,
  coordinatorConcurrency: 2,
});
const client = new AloftClient(dev.config);
const rt = runtime();
// The reconciler, on clients of its own (metered apart), with its clock an hour ahead: every run
// it finds is past the bound, so a tick does a full check (the walk, the mark) of each.
const recon = buildRuntime(rt.config, makeClients());
recon.now = () => Date.now() + 3_600_000;
const reconUnits = { read: 0, write: 0 };
(recon.ddb as unknown as Stack).middlewareStack.add(
  (next: (a: Io) => Promise<Out>, ctx: { commandName?: string }) => async (args: Io) => {
    args.input["ReturnConsumedCapacity"] = "TOTAL";
    const out = await next(args);
    if (READS.test((ctx.commandName ?? "").replace(/Command$/, "")))
      reconUnits.read += Math.max(0.5, units(out.output));
    else reconUnits.write += Math.max(1, units(out.output));
    return out;
  },
  { step: "initialize", name: "bench-reconciler", override: true },
);
const reconcilerChecks: { label: string; rru: number; wru: number }[] = [];
meterDynamo(rt.ddb, "bench-ddb");
meterSqs(rt.sqs, "bench-sqs");
meterSqs(client.rt.sqs, "bench-client-sqs");
meterSqs(dev.aws.clients.sqs as unknown as Stack, "bench-poller-sqs");
// Sends the signals of the signal scenario: every call it makes is part of what a signal costs.
const signaller = new AloftClient(dev.config);
meterDynamo(signaller.rt.ddb as unknown as Stack, "bench-signaller-ddb");
meterSqs(signaller.rt.sqs as unknown as Stack, "bench-signaller-sqs");

/** Once the run's root has committed its `n` waits: sends `n` signals, 20 at a time. */
async function signalAll(r: AwsRun<unknown>, count: number): Promise<void> {
  for (let i = 0; i < 400 && (await readCounter(rt, r.id))?.epoch === undefined; i++)
    await new Promise((res) => setTimeout(res, 50));
  for (let i = 0; i < count; i += 20)
    await Promise.all(
      Array.from({ length: Math.min(20, count - i) }, (_, k) => signaller.signal(r.id, `s${i + k}`, i + k)),
    );
}

/** Once the run has handed out its `n` callback ids: completes them, 20 at a time. */
async function completeAll(count: number): Promise<void> {
  for (let i = 0; i < 600 && handedOut.length < count; i++) await new Promise((res) => setTimeout(res, 50));
  const ids = handedOut.splice(0);
  for (let i = 0; i < ids.length; i += 20)
    await Promise.all(ids.slice(i, i + 20).map((id, k) => signaller.completeCallback(id, i + k)));
}

console.log(
  `price table (USD, US East list prices): DynamoDB on-demand ${usd(PRICES.dynamoWriteUnit)} per million write units, ` +
    `${usd(PRICES.dynamoReadUnit)} per million read units; SQS ${usd(PRICES.sqsRequest)} per million requests (each 64 KB of payload a request); ` +
    `Lambda ${usd(PRICES.lambdaRequest)} per million requests`,
);
try {
  let failed = "";
  const scenarios: {
    label: string;
    run: () => Promise<AwsRun<unknown>>;
    settleMs: number;
    /** Done before the metering starts: what the measured run builds on. */
    prepare?: () => Promise<void>;
  }[] = [
    { label: `gather of ${n}`, run: () => client.run(wideGather, n), settleMs: 1500 },
    // A cache hit and a reused child (recover, docs/recover.md) side by side: the same gather,
    // each child answered from a stored result instead of running.
    {
      label: `gather of ${n} cached children, second run (every child a cache hit): per hit`,
      prepare: async () => void (await (await client.run(cachedGather, n, "bench")).result()),
      run: () => client.run(cachedGather, n, "bench"),
      settleMs: 1500,
    },
    {
      label: `recovery of a gather of ${n} whose last child failed (${n - 1} reused): per child`,
      prepare: async () => {
        failLast.on = true;
        const src = await client.run(gatherFailingLast, n);
        failed = src.id;
        await src.result().catch(() => undefined);
        failLast.on = false;
      },
      run: () => client.recover(failed),
      settleMs: 1500,
    },
    { label: `map of ${n} (concurrency 50)`, run: () => client.run(wideMap, n, 50), settleMs: 1500 },
    // Children with a 2 s timeout: each attempt's deadline check arrives 2 s after it started.
    {
      label: `gather of ${n}, children with a timeout`,
      run: () => client.run(wideGatherTimed, n),
      settleMs: 4000,
    },
    {
      label: `gather of ${n} sleeps ("1s"): per sleep`,
      run: () => client.run(gatherSleeps, n),
      settleMs: 1500,
    },
    {
      label: `gather of ${n} createCallback, ${n} completions sent: per callback`,
      run: async () => {
        handedOut.length = 0;
        const r = await client.run(gatherCallbacks, n);
        void completeAll(n);
        return r;
      },
      settleMs: 1500,
    },
    {
      label: `gather of ${n} waitForSignal, ${n} signals sent: per signal`,
      run: async () => {
        const r = await client.run(gatherSignals, n);
        void signalAll(r, n);
        return r;
      },
      settleMs: 1500,
    },
  ];
  for (const scenario of scenarios) {
    await scenario.prepare?.();
    if (scenario.prepare) await new Promise((res) => setTimeout(res, 1500)); // its last deletes settle
    calls.clear();
    Object.assign(capacity, { read: 0, write: 0, readAdded: 0, writeAdded: 0 });
    Object.assign(sqs, { requests: 0, idleReceives: 0 });
    const before = dev.pollers.map((p) => p.stats.invocations);
    const t0 = performance.now();
    const r = await scenario.run();
    // One reconciler check of this run while it runs (once its root has suspended).
    for (let i = 0; i < 100 && (await readCounter(rt, r.id))?.epoch === undefined; i++)
      await new Promise((res) => setTimeout(res, 50));
    Object.assign(reconUnits, { read: 0, write: 0 });
    const tick = await reconcile(recon, { stallMs: 900_000, failMs: 3_600_000 });
    if (tick.checked)
      reconcilerChecks.push({ label: scenario.label, rru: reconUnits.read, wru: reconUnits.write });
    const value = await r.result();
    const wall = performance.now() - t0;
    // Let the last deletes, completions and deadline checks settle so they are counted.
    await new Promise((res) => setTimeout(res, scenario.settleMs));
    const replays = await r.replays();
    const invocations = dev.pollers.reduce((s, p, i) => s + p.stats.invocations - before[i]!, 0);
    // The client's own reads (polling the run item for the result) are not orchestration: its
    // DynamoDB client is not metered. Its SQS client is (the run's start message).
    const perChild = (x: number) => x / n;
    const wru = capacity.write + capacity.writeAdded;
    const rru = capacity.read + capacity.readAdded;
    const cost = {
      dynamoWrite: perChild(wru) * PRICES.dynamoWriteUnit,
      dynamoRead: perChild(rru) * PRICES.dynamoReadUnit,
      sqs: perChild(sqs.requests) * PRICES.sqsRequest,
      lambda: perChild(invocations) * PRICES.lambdaRequest,
    };
    const total = cost.dynamoWrite + cost.dynamoRead + cost.sqs + cost.lambda;
    console.log(`\n${scenario.label}: result ${JSON.stringify(value)}`);
    console.log(
      `  wall ${(wall / 1000).toFixed(2)} s, parent replays ${replays}, Lambda invocations ${invocations} (${perChild(invocations).toFixed(3)}/child)`,
    );
    console.log("  AWS API calls per child:");
    for (const [op, c] of [...calls].sort((a, b) => b[1] - a[1])) {
      if (op === "GetQueueAttributes") continue;
      const note =
        op === "ReceiveMessage" ? ` (${sqs.idleReceives} of them idle long polls, not billed per child)` : "";
      console.log(`    ${op.padEnd(20)} ${perChild(c).toFixed(3)}${note}`);
    }
    console.log(
      `  DynamoDB units per child: ${perChild(wru).toFixed(3)} WRU (${perChild(capacity.write).toFixed(3)} reported ` +
        `+ ${perChild(capacity.writeAdded).toFixed(3)} failed conditional writes), ${perChild(rru).toFixed(3)} RRU ` +
        `(${perChild(capacity.read).toFixed(3)} reported + ${perChild(capacity.readAdded).toFixed(3)} keys not found / empty queries)`,
    );
    console.log(
      `  SQS billed requests per child: ${perChild(sqs.requests).toFixed(3)} (sends, non-empty receives, delete batches)`,
    );
    console.log(
      `  cost per million children: DynamoDB writes ${perChild(wru).toFixed(3)} × ${usd(PRICES.dynamoWriteUnit)} = $${cost.dynamoWrite.toFixed(3)}` +
        ` + reads ${perChild(rru).toFixed(3)} × ${usd(PRICES.dynamoReadUnit)} = $${cost.dynamoRead.toFixed(3)}` +
        ` + SQS ${perChild(sqs.requests).toFixed(3)} × ${usd(PRICES.sqsRequest)} = $${cost.sqs.toFixed(3)}` +
        ` + Lambda ${perChild(invocations).toFixed(3)} × ${usd(PRICES.lambdaRequest)} = $${cost.lambda.toFixed(3)}` +
        ` = $${total.toFixed(3)}`,
    );
  }
  // What the liveness machinery adds. The DLQ consumer costs nothing per child on a clean run:
  // no message dead-letters and no delivery fails (so no failure record is written either).
  // A sleep longer than SQS's 900 s delay hops: each further 900 s is one delayed send, and on
  // receipt (alone, as hops seldom share a batch) a receive, a delete and an executor invocation.
  const hop = 3 * PRICES.sqsRequest + PRICES.lambdaRequest;
  console.log(
    `\na sleep past 900 s adds, per further 900 s: a delayed send, a receive and a delete ` +
      `(${usd(PRICES.sqsRequest)} each per million) and an executor invocation (${usd(PRICES.lambdaRequest)}) ` +
      `= $${hop.toFixed(2)} per million sleeps (1 h: 3 hops, $${(3 * hop).toFixed(2)}; 1 day: 95 hops, ` +
      `$${(95 * hop).toFixed(2)}; 7 days: 671 hops, $${(671 * hop).toFixed(2)} per million)`,
  );
  const dlqInvocations = dev.deadLetterPollers.reduce((s2, p) => s2 + p.stats.invocations, 0);
  console.log(
    `\nDLQ consumer: ${dlqInvocations} invocations in these runs: $0 per million children. Fixed cost per DLQ, ` +
      `not per child: Lambda's SQS event source long-polls each queue (assuming its 5 pollers at 20 s ` +
      `polls: 21,600 empty receives a day = ${usd((21_600 * PRICES.sqsRequest) / 1e6)} a day per DLQ).`,
  );
  const day = 1440;
  const tickFixed = ((16 * 0.5 + 0.5) * PRICES.dynamoReadUnit) / 1e6 + (1 * PRICES.lambdaRequest) / 1e6; // 16 live-shard Queries + the cursor read, 1 invocation
  console.log(
    `reconciler: a tick every minute costs ${usd(Number((tickFixed * day).toFixed(5)))} a day per stack with no live run ` +
      `(16 live-index Queries, the cursor read, 1 Lambda request; + 1 cursor write: ${usd(Number(((day * PRICES.dynamoWriteUnit) / 1e6).toFixed(5)))} a day).`,
  );
  for (const c of reconcilerChecks) {
    const perCheck = (c.rru * PRICES.dynamoReadUnit + c.wru * PRICES.dynamoWriteUnit) / 1e6;
    // A check reads at most 1,000 calls of a waiting parent (and 25 counters), whatever N is: at a
    // million children it costs at most 1,000 / min(n, 1,000) times this one. A live run is checked
    // at most once per bound (900 s); a million children at 1,000 children/s take ≈ 1,000 s: 2 checks.
    const atMillion = perCheck * (1000 / Math.min(n, 1000));
    console.log(
      `  one check of the run (${c.label}): ${c.rru.toFixed(1)} RRU + ${c.wru.toFixed(1)} WRU = $${perCheck.toFixed(7)}; ` +
        `at a million children ≤ $${atMillion.toFixed(6)} a check, ≈ 2 checks (1,000 children/s): ` +
        `+$${(2 * atMillion).toFixed(5)} per million children`,
    );
  }
} finally {
  recon.ddb.destroy();
  recon.doc.destroy();
  recon.sqs.destroy();
  recon.s3.destroy();
  client.destroy();
  signaller.destroy();
  await dev.stop();
}
