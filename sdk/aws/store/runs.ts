/**
 * Reading the run index (gsi1), which is sharded (table.ts RUN_INDEX_SHARDS): a listing queries
 * every partition newest-first and merges; the reconciler pages through the live partitions only.
 */
import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import type { Runtime } from "../runtime.ts";
import type { RunStatusValue } from "./table.ts";
import { TABLE_SCHEMA, allRunIndexPks, liveIndexPk } from "./table.ts";

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
