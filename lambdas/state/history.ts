/**
 * An action's history in DynamoDB: call records packed into chunk items under the action's
 * partition, traces one item per suspension, and child results spread over RESULT_SHARDS
 * partitions. Reads are paged Queries (never one request per child), so a 100,000-child parent
 * replays with ≈N/CHUNK_CALLS + N/≈2,000 requests and no item grows toward 400 KB.
 */
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import type { CallId, CallRecord, History, Outcome, TraceRecord } from "../../sdk/core/history.ts";
import { HISTORY_VERSION, parseCallRecord, parseOutcome } from "../../sdk/core/history.ts";
import { HistoryError } from "../../sdk/errors.ts";
import { offload, resolvePayload } from "../payloads.ts";
import { batchGet, batchPut, isConditionFailed, queryAll } from "../runtime.ts";
import type { Runtime } from "../runtime.ts";
import type { CounterItem, ResultItem, SelfItem, WindowItem } from "./table.ts";
import { CHUNK_CALLS, RESULT_SHARDS, actionPk, chunkSk, resultPk, traceSk } from "./table.ts";

/** Arguments of a call kept inline in its chunk up to this size; larger ones are offloaded. */
const CALL_ARGS_INLINE = 3_000;

export interface Loaded {
  history: History;
  counter: CounterItem | undefined;
  self: SelfItem | undefined;
  windows: WindowItem[];
  /** Calls in the order recorded, per epoch (for re-dispatch after a crash). */
  callsByEpoch: Map<number, CallRecord[]>;
  results: Map<CallId, ResultItem>;
}

/** The action partition alone (counter, self, chunks, traces, windows). */
export async function loadActionItems(rt: Runtime, action: CallId): Promise<Record<string, unknown>[]> {
  return queryAll(rt, {
    KeyConditionExpression: "pk = :pk",
    ExpressionAttributeValues: { ":pk": actionPk(action) },
    ConsistentRead: true,
  });
}

/** Every child result of `action`, from all shards (paged Queries, in parallel). */
export async function loadResults(rt: Runtime, action: CallId): Promise<Map<CallId, ResultItem>> {
  const shards = await Promise.all(
    Array.from({ length: RESULT_SHARDS }, (_, s) =>
      queryAll(rt, {
        KeyConditionExpression: "pk = :pk",
        ExpressionAttributeValues: { ":pk": resultPk(action, s) },
        ConsistentRead: true,
      }),
    ),
  );
  const out = new Map<CallId, ResultItem>();
  for (const items of shards) for (const it of items) out.set(String(it["sk"]), it as unknown as ResultItem);
  return out;
}

export async function loadHistory(rt: Runtime, action: CallId): Promise<Loaded> {
  const [items, results] = await Promise.all([loadActionItems(rt, action), loadResults(rt, action)]);
  return assemble(rt, items, results);
}

async function assemble(
  rt: Runtime,
  items: Record<string, unknown>[],
  results: Map<CallId, ResultItem>,
): Promise<Loaded> {
  const calls = new Map<CallId, CallRecord>();
  const callsByEpoch = new Map<number, CallRecord[]>();
  const traces = new Map<string, TraceRecord>();
  const windows: WindowItem[] = [];
  let counter: CounterItem | undefined;
  let self: SelfItem | undefined;
  // Query returns items in sort-key order: chunks by epoch then number, so call order is kept.
  for (const it of items) {
    const sk = String(it["sk"]);
    if (sk === "CNT") counter = it as unknown as CounterItem;
    else if (sk === "SELF") self = it as unknown as SelfItem;
    else if (sk.startsWith("W#")) windows.push(it as unknown as WindowItem);
    else if (sk.startsWith("C#")) {
      const epoch = Number(sk.slice(2, 8));
      const list = callsByEpoch.get(epoch) ?? [];
      callsByEpoch.set(epoch, list);
      const raw = it["calls"];
      if (!Array.isArray(raw))
        throw new HistoryError(`corrupted history record (call chunk ${sk}): calls is not a list`);
      for (const s of raw) {
        const rec = parseCallRecord(String(s));
        calls.set(rec.id, rec);
        list.push(rec);
      }
    } else if (sk.startsWith("T#")) {
      const text = await resolvePayload(rt.payloads, String(it["traces"] ?? "[]"));
      let list: unknown;
      try {
        list = JSON.parse(text);
      } catch (e) {
        throw new HistoryError(`corrupted history record (traces ${sk}): not JSON`, { cause: e });
      }
      for (const t of list as TraceRecord[]) {
        if (typeof t?.v !== "number" || t.v > HISTORY_VERSION || typeof t.key !== "string") {
          throw new HistoryError(`corrupted or newer history record (trace in ${sk})`);
        }
        traces.set(t.key, t);
      }
    }
  }
  const outcomes = new Map<CallId, Outcome>();
  await Promise.all(
    [...results].map(async ([id, r]) => {
      if (r.outcome === undefined) return;
      outcomes.set(id, parseOutcome(`outcome of ${id}`, await resolvePayload(rt.payloads, r.outcome)));
    }),
  );
  return { history: { calls, outcomes, traces }, counter, self, windows, callsByEpoch, results };
}

/** Thrown when another replay of the same epoch recorded its traces first: replay again on top of them. */
export class TraceConflict extends Error {}

/**
 * Records a suspension's traces. Conditional (`attribute_not_exists`): traces are the one
 * non-deterministic part of a replay, so the first replay to record them wins and any other replay
 * of the same epoch must re-run on top of them rather than overwrite what calls were derived from.
 */
export async function writeTraces(
  rt: Runtime,
  run: string,
  action: CallId,
  epoch: number,
  traces: TraceRecord[],
  expiresAt: number,
): Promise<void> {
  if (!traces.length) return;
  const body = await offload(rt.payloads, `${run}/${action}`, JSON.stringify(traces), 300_000);
  try {
    await rt.doc.send(
      new PutCommand({
        TableName: rt.config.table,
        Item: { pk: actionPk(action), sk: traceSk(epoch), traces: body, expiresAt },
        ConditionExpression: "attribute_not_exists(pk)", // first replay of this epoch to trace wins
      }),
    );
  } catch (e) {
    if (isConditionFailed(e))
      throw new TraceConflict(`traces of ${action} epoch ${epoch} were recorded by another replay`);
    throw e;
  }
}

/**
 * Records a suspension's new calls in chunks of CHUNK_CALLS. Unconditional puts are safe: the
 * calls are a deterministic function of the history (traces included), so a concurrent replay of
 * the same epoch writes identical chunks.
 */
export async function writeCalls(
  rt: Runtime,
  run: string,
  action: CallId,
  epoch: number,
  calls: CallRecord[],
  expiresAt: number,
): Promise<CallRecord[]> {
  const stored = await Promise.all(
    calls.map(async (c) =>
      c.args.length > CALL_ARGS_INLINE
        ? { ...c, args: await offload(rt.payloads, `${run}/${c.id}`, c.args, CALL_ARGS_INLINE) }
        : c,
    ),
  );
  const items: Record<string, unknown>[] = [];
  for (let i = 0; i < stored.length; i += CHUNK_CALLS) {
    items.push({
      pk: actionPk(action),
      sk: chunkSk(epoch, i / CHUNK_CALLS),
      calls: stored.slice(i, i + CHUNK_CALLS).map((c) => JSON.stringify(c)),
      expiresAt,
    });
  }
  await batchPut(rt, items);
  return stored;
}

/** Calls at positions [from, to) of an epoch's list (a window's slice), from their chunks. */
export async function readCallRange(
  rt: Runtime,
  action: CallId,
  epoch: number,
  from: number,
  to: number,
): Promise<CallRecord[]> {
  if (to <= from) return [];
  const first = Math.floor(from / CHUNK_CALLS);
  const last = Math.floor((to - 1) / CHUNK_CALLS);
  const keys = [];
  for (let n = first; n <= last; n++) keys.push({ pk: actionPk(action), sk: chunkSk(epoch, n) });
  const got = await batchGet(rt, keys, true);
  const out: CallRecord[] = [];
  for (let n = first; n <= last; n++) {
    const it = got.get(`${actionPk(action)}|${chunkSk(epoch, n)}`);
    if (!it) throw new HistoryError(`call chunk ${n} of ${action} epoch ${epoch} is missing`);
    const list = (it["calls"] as string[]).map((s) => parseCallRecord(s));
    for (let j = 0; j < list.length; j++) {
      const pos = n * CHUNK_CALLS + j;
      if (pos >= from && pos < to) out.push(list[j]!);
    }
  }
  return out;
}
