/** Task results reused across runs (K#<key>/CACHE): `cache` on a task; the key is the core's cacheKey. */
import { GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import type { Runtime } from "../runtime.ts";
import { cacheItemKey } from "./table.ts";

/** The cached value (an encoded payload, maybe an S3 reference), if any. */
export async function readCached(rt: Runtime, key: string): Promise<string | undefined> {
  const hit = await rt.doc.send(new GetCommand({ TableName: rt.config.table, Key: cacheItemKey(key) }));
  const value = hit.Item?.["value"];
  return typeof value === "string" ? value : undefined;
}

/** Unconditional: equal inputs give equal results, so the last writer's value is as good as any. */
export async function writeCached(rt: Runtime, key: string, value: string, task: string): Promise<void> {
  await rt.doc.send(
    new PutCommand({
      TableName: rt.config.table,
      Item: { ...cacheItemKey(key), value, task, created: rt.now() },
    }),
  );
}
