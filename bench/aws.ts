/**
 * The AWS path on the local implementations (DynamoDB Local, fauxqs): a gather of N children and a
 * map of N with concurrency 50, through the real handlers and the local event-source poller.
 * Prints wall time, parent replays, AWS API calls per child by operation (counted with SDK
 * middleware), capacity units as DynamoDB reports them (ReturnConsumedCapacity), and the
 * orchestration cost per million children at list prices.
 *   node --import tsx bench/aws.ts [n=1000]
 */
import { startDevStack } from "../lambdas/dev.ts";
import { runtime } from "../lambdas/runtime.ts";
import { AloftClient } from "../sdk/aws/client.ts";
import { wideGather, wideMap } from "../test/fixtures/aws-tasks.ts";

/** US East list prices (ANCHORS.md). */
const PRICES = {
  dynamoWriteUnit: 0.625 / 1e6,
  dynamoReadUnit: 0.125 / 1e6,
  sqsRequest: 0.4 / 1e6,
  lambdaRequest: 0.2 / 1e6,
};

interface Stack {
  middlewareStack: { add(mw: unknown, o: { step: "initialize"; name: string; override?: boolean }): void };
}

const calls = new Map<string, number>();
const capacity = { read: 0, write: 0 };
const READS = /^(Get|BatchGet|Query|Scan)/;

function meter(client: Stack, name: string, consumed: boolean): void {
  client.middlewareStack.add(
    (
      next: (a: { input: Record<string, unknown> }) => Promise<{ output: Record<string, unknown> }>,
      ctx: { commandName?: string },
    ) =>
      async (args: { input: Record<string, unknown> }) => {
        const cmd = (ctx.commandName ?? "?").replace(/Command$/, "");
        calls.set(cmd, (calls.get(cmd) ?? 0) + 1);
        if (consumed) args.input["ReturnConsumedCapacity"] = "TOTAL";
        const out = await next(args);
        if (consumed) {
          const cc = out.output["ConsumedCapacity"] as
            { CapacityUnits?: number }[] | { CapacityUnits?: number } | undefined;
          const units = (Array.isArray(cc) ? cc : cc ? [cc] : []).reduce(
            (s, c) => s + (c.CapacityUnits ?? 0),
            0,
          );
          if (READS.test(cmd)) capacity.read += units;
          else capacity.write += units;
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
meter(rt.ddb, "bench-ddb", true);
meter(rt.sqs, "bench-sqs", false);
meter(client.rt.ddb, "bench-client-ddb", true);
meter(client.rt.sqs, "bench-client-sqs", false);
meter(dev.aws.clients.sqs as unknown as Stack, "bench-poller-sqs", false);

console.log(
  "price table (USD): DynamoDB $0.625/M write units, $0.125/M read units; SQS $0.40/M requests (64 KB chunks); Lambda $0.20/M requests",
);
try {
  for (const scenario of ["gather", "map"] as const) {
    calls.clear();
    capacity.read = capacity.write = 0;
    const before = dev.pollers.map((p) => p.stats.invocations);
    const t0 = performance.now();
    const r = scenario === "gather" ? await client.run(wideGather, n) : await client.run(wideMap, n, 50);
    const value = await r.result();
    const wall = performance.now() - t0;
    // Let the last deletes and completions settle so they are counted.
    await new Promise((res) => setTimeout(res, 1500));
    const replays = await r.replays();
    const invocations = dev.pollers.reduce((s, p, i) => s + p.stats.invocations - before[i]!, 0);
    // Status reads by the benchmark itself (result polling) are client calls, not orchestration.
    const receives = invocations; // productive receives; idle long polls are excluded (see docs/aws.md)
    const sqsReq =
      (calls.get("SendMessageBatch") ?? 0) +
      (calls.get("SendMessage") ?? 0) +
      (calls.get("DeleteMessageBatch") ?? 0) +
      receives;
    const perChild = (x: number) => x / n;
    const cost = {
      dynamoWrite: perChild(capacity.write) * PRICES.dynamoWriteUnit * 1e6,
      dynamoRead: perChild(capacity.read) * PRICES.dynamoReadUnit * 1e6,
      sqs: perChild(sqsReq) * PRICES.sqsRequest * 1e6,
      lambda: perChild(invocations) * PRICES.lambdaRequest * 1e6,
    };
    const total = cost.dynamoWrite + cost.dynamoRead + cost.sqs + cost.lambda;
    console.log(
      `\n${scenario} of ${n}${scenario === "map" ? " (concurrency 50)" : ""}: result ${JSON.stringify(value)}`,
    );
    console.log(
      `  wall ${(wall / 1000).toFixed(2)} s, parent replays ${replays}, Lambda invocations ${invocations} (${perChild(invocations).toFixed(3)}/child)`,
    );
    console.log("  AWS API calls per child:");
    for (const [op, c] of [...calls].sort((a, b) => b[1] - a[1])) {
      if (op === "ReceiveMessage" || op === "GetQueueAttributes") continue;
      console.log(`    ${op.padEnd(20)} ${perChild(c).toFixed(3)}`);
    }
    console.log(
      `    ${"ReceiveMessage".padEnd(20)} ${perChild(receives).toFixed(3)} (non-empty receives; ${calls.get("ReceiveMessage") ?? 0} made incl. idle polls)`,
    );
    console.log(
      `  DynamoDB capacity per child: ${perChild(capacity.write).toFixed(3)} WRU, ${perChild(capacity.read).toFixed(3)} RRU`,
    );
    console.log(
      `  cost per million children: DynamoDB writes $${cost.dynamoWrite.toFixed(3)} + reads $${cost.dynamoRead.toFixed(3)} + ` +
        `SQS $${cost.sqs.toFixed(3)} + Lambda $${cost.lambda.toFixed(3)} = $${total.toFixed(3)}`,
    );
  }
} finally {
  client.destroy();
  await dev.stop();
}
