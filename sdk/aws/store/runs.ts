/**
 * Run items (R#<run>/RUN): created once, cancelled once, marked by the reconciler; and the run
 * index (gsi1), which is sharded (table.ts RUN_INDEX_SHARDS): a listing queries every partition
 * newest-first and merges; the reconciler pages through the live partitions only.
 */
import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { Runtime } from "../runtime.ts";
import { isConditionFailed } from "./io.ts";
import type { RunItem, RunStatusValue } from "./table.ts";
import {
  TABLE_SCHEMA,
  allRunIndexPks,
  endedIndexPk,
  expiry,
  liveIndexPk,
  runIndexShard,
  runKey,
} from "./table.ts";

/** What the index projects of a run item. */
export interface RunRow {
  run: string;
  task: string;
  status: RunStatusValue;
  created: number;
  ended?: number;
  gsi1sk: string;
}

async function page(
  rt: Runtime,
  pk: string,
  limit: number,
  newestFirst: boolean,
  start?: Record<string, unknown>,
): Promise<{ rows: RunRow[]; next: Record<string, unknown> | undefined }> {
  const { gsi1 } = TABLE_SCHEMA;
  const out = await rt.doc.send(
    new QueryCommand({
      TableName: rt.config.table,
      IndexName: gsi1.name,
      KeyConditionExpression: `${gsi1.partitionKey} = :p`,
      ExpressionAttributeValues: { ":p": pk },
      ScanIndexForward: !newestFirst,
      Limit: limit,
      ...(start ? { ExclusiveStartKey: start } : {}),
    }),
  );
  return { rows: (out.Items ?? []) as RunRow[], next: out.LastEvaluatedKey };
}

/**
 * The `limit` most recent runs: each partition's `limit` newest (one Query each, in parallel),
 * merged by creation time. The pre-sharding `RUNS` partition is read too, so runs indexed before
 * the upgrade are still listed until they expire.
 */
export async function listRunRows(rt: Runtime, limit: number): Promise<RunRow[]> {
  const pages = await Promise.all(allRunIndexPks().map((pk) => page(rt, pk, limit, true)));
  const byRun = new Map<string, RunRow>();
  for (const p of pages) for (const r of p.rows) byRun.set(r.run, r);
  return [...byRun.values()].sort((a, b) => (a.gsi1sk < b.gsi1sk ? 1 : -1)).slice(0, limit);
}

/** One page of running runs of a live shard, oldest first, from `start` (a previous page's end). */
export function liveRuns(
  rt: Runtime,
  shard: number,
  limit: number,
  start?: Record<string, unknown>,
): Promise<{ rows: RunRow[]; next: Record<string, unknown> | undefined }> {
  return page(rt, liveIndexPk(shard), limit, false, start);
}

/** Creates a run's item, once: false when it exists (a redelivered start finds the first one's). */
export async function createRun(rt: Runtime, item: RunItem): Promise<boolean> {
  try {
    await rt.doc.send(
      new PutCommand({
        TableName: rt.config.table,
        Item: item,
        ConditionExpression: "attribute_not_exists(pk)",
      }),
    );
    return true;
  } catch (e) {
    if (!isConditionFailed(e)) throw e;
    return false;
  }
}

/** A run's item (consistent by default: a run's status decides what its messages do). */
export async function readRun(rt: Runtime, run: string, consistent = true): Promise<RunItem | undefined> {
  const out = await rt.doc.send(
    new GetCommand({ TableName: rt.config.table, Key: runKey(run), ConsistentRead: consistent }),
  );
  return out.Item as RunItem | undefined;
}

/** Lists `recovery` among the recoveries of the ended run `run` (docs/recover.md). */
export async function addRecovery(rt: Runtime, run: string, recovery: string): Promise<void> {
  await rt.doc.send(
    new UpdateCommand({
      TableName: rt.config.table,
      Key: runKey(run),
      UpdateExpression: "SET recoveries = list_append(if_not_exists(recoveries, :none), :r)",
      ExpressionAttributeValues: { ":none": [], ":r": [recovery] },
    }),
  );
}

/** Records that a run's root exec was sent (unconditional: a redelivered start may send it again). */
export async function markStarted(rt: Runtime, run: string): Promise<void> {
  await rt.doc.send(
    new UpdateCommand({
      TableName: rt.config.table,
      Key: runKey(run),
      UpdateExpression: "SET started = :t",
      ExpressionAttributeValues: { ":t": true },
    }),
  );
}

/** Ends a running run CANCELLED with `outcome`; false when it had already ended (a run ends once). */
export async function cancelRun(rt: Runtime, run: string, outcome: string, now: number): Promise<boolean> {
  try {
    await rt.doc.send(
      new UpdateCommand({
        TableName: rt.config.table,
        Key: runKey(run),
        // Out of the live index partition (the reconciler's) into the ended one.
        UpdateExpression: "SET #status = :c, outcome = :o, ended = :n, expiresAt = :x, gsi1pk = :ix",
        ConditionExpression: "#status = :running",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: {
          ":c": "CANCELLED",
          ":o": outcome,
          ":n": now,
          ":x": expiry(now, rt.config.retentionDays),
          ":running": "RUNNING",
          ":ix": endedIndexPk(runIndexShard(run)),
        },
      }),
    );
    return true;
  } catch (e) {
    if (!isConditionFailed(e)) throw e;
    return false;
  }
}

/** The reconciler's mark on a run: what it last saw and since when (left alone if the run expired). */
export async function setReconcileMark(
  rt: Runtime,
  run: string,
  rc: NonNullable<RunItem["rc"]>,
): Promise<void> {
  try {
    await rt.doc.send(
      new UpdateCommand({
        TableName: rt.config.table,
        Key: runKey(run),
        UpdateExpression: "SET rc = :rc",
        ConditionExpression: "attribute_exists(pk)", // never recreate an expired run
        ExpressionAttributeValues: { ":rc": rc },
      }),
    );
  } catch (e) {
    if (!isConditionFailed(e)) throw e;
  }
}

const CURSOR_KEY = { pk: "RECONCILE", sk: "CURSOR" };

/** Where the reconciler's last tick stopped in the live index. */
export interface ReconcileCursor {
  shard: number;
  start?: Record<string, unknown> | undefined;
}

export async function readReconcileCursor(rt: Runtime): Promise<ReconcileCursor> {
  const got = await rt.doc.send(new GetCommand({ TableName: rt.config.table, Key: CURSOR_KEY }));
  const start = got.Item?.["start"] as Record<string, unknown> | undefined;
  return { shard: Number(got.Item?.["shard"] ?? 0), ...(start ? { start } : {}) };
}

/** Unconditional: two ticks at once at worst look at the same runs twice. */
export async function writeReconcileCursor(rt: Runtime, c: ReconcileCursor): Promise<void> {
  await rt.doc.send(
    new PutCommand({
      TableName: rt.config.table,
      Item: { ...CURSOR_KEY, shard: c.shard, ...(c.start ? { start: c.start } : {}) },
    }),
  );
}
