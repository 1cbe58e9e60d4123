/**
 * The run index is sharded (sdk/aws/store/table.ts): running runs under LIVE#<n>, ended ones under
 * RUNS#<n>, so run starts and ends spread over 32 partitions instead of one. A listing reads every
 * partition, and the pre-sharding `RUNS` one, and merges newest-first. On DynamoDB Local.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { startDevStack } from "../dev/stack.ts";
import type { DevStack } from "../dev/stack.ts";
import { runtime } from "../sdk/aws/runtime.ts";
import { writeTerminal } from "../sdk/aws/store/results.ts";
import { liveRuns } from "../sdk/aws/store/runs.ts";
import { RUN_INDEX_SHARDS, newRunItem, runIndexShard } from "../sdk/aws/store/table.ts";
import { AloftClient } from "../sdk/aws/client.ts";
import "./fixtures/aws-tasks.ts";

describe("run index shards", { timeout: 60_000 }, () => {
  let dev: DevStack;
  let client: AloftClient;
  before(async () => {
    process.env["POWERTOOLS_LOG_LEVEL"] ??= "SILENT";
    dev = await startDevStack({ reconcileIntervalMs: 0 });
    client = new AloftClient(dev.config);
  });
  after(async () => {
    client.destroy();
    await dev.stop();
  });

  it("spreads runs over the shards, lists them newest first across shards and the legacy partition", async () => {
    const rt = runtime();
    const put = (Item: Record<string, unknown>) =>
      rt.doc.send(new PutCommand({ TableName: rt.config.table, Item }));
    const runs = Array.from({ length: 60 }, (_, i) => `r-shard-${i}`);
    const shards = new Set(runs.map(runIndexShard));
    assert.ok(shards.size >= 12, `60 runs over ${shards.size} of ${RUN_INDEX_SHARDS} shards`);
    assert.equal(runIndexShard("r-shard-7"), runIndexShard("r-shard-7"), "stable");
    const items = runs.map((run, i) =>
      newRunItem({ run, task: "awsx.double", args: "[1]", created: 1_000 + 2 * i }),
    );
    assert.ok(new Set(items.map((i) => i.gsi1pk)).size >= 12, "index keys are spread");
    await Promise.all(items.map((i) => put({ ...i })));
    // Two runs indexed before sharding: one among the newest, one old.
    for (const [run, created] of [
      ["r-legacy-new", 1_111],
      ["r-legacy-old", 10],
    ] as const)
      await put({ ...newRunItem({ run, task: "awsx.double", args: "[]", created }), gsi1pk: "RUNS" });
    // An ended run moves from the live partition to the ended one and is still listed.
    await writeTerminal(rt, {
      run: "r-shard-58",
      parent: null,
      id: "r-shard-58",
      status: "SUCCEEDED",
      outcome: { ok: true, value: "1" },
      attempt: undefined,
    });
    const listed = await client.listRuns(10);
    assert.deepEqual(
      listed.map((r) => r.id),
      [
        "r-shard-59",
        "r-shard-58",
        "r-shard-57",
        "r-shard-56",
        "r-legacy-new",
        "r-shard-55",
        "r-shard-54",
        "r-shard-53",
        "r-shard-52",
        "r-shard-51",
      ],
    );
    assert.equal(listed[1]!.status, "SUCCEEDED");
    // The live partitions hold running runs only.
    const live = (
      await Promise.all(Array.from({ length: RUN_INDEX_SHARDS }, (_, s) => liveRuns(rt, s, 100)))
    ).flatMap((p) => p.rows.map((r) => r.run));
    assert.ok(live.includes("r-shard-57") && !live.includes("r-shard-58"));
    assert.ok(
      (await client.listRuns(100)).some((r) => r.id === "r-legacy-old"),
      "old entries still listed",
    );
  });
});
