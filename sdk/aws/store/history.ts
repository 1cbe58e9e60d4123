/**
 * An action's history in DynamoDB: call records packed into chunk items under the action's
 * partition, traces one item per suspension, and child results spread over RESULT_SHARDS
 * partitions. Reads are paged Queries (never one request per child), so a 100,000-child parent
 * replays with ≈N/CHUNK_CALLS + N/≈2,000 requests and no item grows toward 400 KB.
 *
 * Call chunks are stored compressed (`z`: deflated JSON of compact records, ≈10 bytes a call for
 * small arguments instead of ≈200): a record's parent is the chunk's action, its inputs digest is
 * recomputed from its arguments and its id from the rest, so none of them is stored; what is stored
 * is read back into the core's CallRecord exactly. Write units are billed per KB and every replay
 * reads the chunks again, so this cuts their cost per child ≈20x.
 */
import { deflateRawSync, inflateRawSync } from "node:zlib";
import { GetCommand, PutCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import type { CallId, CallRecord, History, Outcome, TraceRecord } from "../../core/history.ts";
import { HISTORY_VERSION, IDENTITY_VERSION, parseCallRecord, parseOutcome } from "../../core/history.ts";
import type { CallSettings } from "../../core/task-def.ts";
import { ConfigurationError, HistoryError } from "../../errors.ts";
import { callIdentity } from "../../core/calls.ts";
import { observedSettled } from "../../core/delivery.ts";
import { digest } from "../../serde.ts";
import { offload, resolvePayload } from "../payloads.ts";
import { batchGet, batchPut, isConditionFailed, keyId, oldItem, queryAll } from "./io.ts";
import type { Runtime } from "../runtime.ts";
import type { CounterItem, ResultItem, SelfItem, WindowItem } from "./table.ts";
import { CHUNK_CALLS, RESULT_SHARDS, actionPk, chunkSk, resultPk, selfKey, traceSk } from "./table.ts";

/**
 * Arguments of a call kept inline in its chunk up to this many bytes, counted as the chunk stores
 * them (UTF-8 of the JSON-escaped string: a CJK character is 3 bytes, an emoji 4, a quote in a
 * string argument 4); larger ones are offloaded. CHUNK_CALLS of them stay far below 400 KB.
 */
export const CALL_ARGS_INLINE = 3_000;
/**
 * Largest compressed chunk written (bytes), leaving room for its keys under DynamoDB's 400 KB item
 * limit. Arguments bounded above and names by CALL_NAMES_BYTES (sdk/core/calls.ts) keep 100 rows
 * under ≈380 KB; this is the last guard, with an error naming the names, not a validation error.
 */
export const CHUNK_BYTES = 390_000;

/** The bytes `args` takes inside a chunk (its UTF-8, JSON-escaped): what CALL_ARGS_INLINE bounds. */
export const inlineBytes = (args: string): number => Buffer.byteLength(JSON.stringify(args));

export interface Loaded {
  history: History;
  self: SelfItem | undefined;
  /** Window parts, the one the counter hosts included. */
  windows: WindowItem[];
  /** Calls in the order recorded, per epoch (for re-dispatch after a crash). */
  callsByEpoch: Map<number, CallRecord[]>;
}

/** The action partition alone (counter, self, chunks, traces, windows). */
export async function loadActionItems(rt: Runtime, action: CallId): Promise<Record<string, unknown>[]> {
  return queryAll(rt, {
    KeyConditionExpression: "pk = :pk",
    ExpressionAttributeValues: { ":pk": actionPk(action) },
    ConsistentRead: true,
  });
}

/** What a status view reads of a child result: all but its outcome (a payload a view never shows). */
export const RESULT_STATE = "pk, sk, #status, attempt, startedAt, ended, cached, kids, reused";

/**
 * Every child result of `action`, from all shards (paged Queries, in parallel); with `stateOnly`,
 * without their outcomes ({@link RESULT_STATE}).
 */
export async function loadResults(
  rt: Runtime,
  action: CallId,
  consistent = true,
  stateOnly = false,
): Promise<Map<CallId, ResultItem>> {
  const shards = await Promise.all(
    Array.from({ length: RESULT_SHARDS }, (_, s) =>
      queryAll(rt, {
        KeyConditionExpression: "pk = :pk",
        ExpressionAttributeValues: { ":pk": resultPk(action, s) },
        ConsistentRead: consistent,
        ...(stateOnly
          ? { ProjectionExpression: RESULT_STATE, ExpressionAttributeNames: { "#status": "status" } }
          : {}),
      }),
    ),
  );
  const out = new Map<CallId, ResultItem>();
  for (const items of shards) for (const it of items) out.set(String(it["sk"]), it as unknown as ResultItem);
  return out;
}

/**
 * The child results a replay needs: every one counted by `counted` (co + ce of the counter, read
 * strongly before this). A completion is counted only after its outcome is written, so a read that
 * finds at least `counted` outcomes has seen enough: were a counted outcome missing, as many
 * uncounted ones were seen, each of which will still be counted, and the counts the replay waits
 * for still come (trigger.ts: an over-count only resumes early). Such a read may be eventually
 * consistent, at half the price; one that finds fewer (lag, or a parent over-counted by a
 * duplicate) is read again strongly consistent.
 */
async function resultsFor(rt: Runtime, action: CallId, counted: number): Promise<Map<CallId, ResultItem>> {
  const cheap = await loadResults(rt, action, false);
  let outcomes = 0;
  for (const r of cheap.values()) if (r.outcome !== undefined) outcomes++;
  return outcomes >= counted ? cheap : loadResults(rt, action);
}

/**
 * An action's history. `counted` (a replay's snapshot of its counter) lets the child results be
 * read eventually consistent (resultsFor); without it they are read strongly consistent. A read
 * that lacks an outcome an earlier replay observed (its observation records name it: counts alone
 * cannot tell) is read again strongly consistent.
 */
export async function loadHistory(rt: Runtime, action: CallId, counted?: number): Promise<Loaded> {
  const [items, results] = await Promise.all([
    loadActionItems(rt, action),
    counted === undefined ? loadResults(rt, action) : resultsFor(rt, action, counted),
  ]);
  const loaded = await assemble(rt, items, results);
  if (counted === undefined || observedSettled(loaded.history)) return loaded;
  return assemble(rt, items, await loadResults(rt, action));
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
  let self: SelfItem | undefined;
  // Only committed epochs' calls are history: an epoch's chunks are written before its commit, and
  // those of one that never committed (its writer died, or the action was ended first) were never
  // sent. Its owner's next replay makes the same calls again and sends them with the commit.
  const committed = committedEpoch(items);
  // Query returns items in sort-key order: chunks by epoch then number, so call order is kept.
  for (const it of items) {
    const sk = String(it["sk"]);
    if (sk === "CNT") {
      const counter = it as unknown as CounterItem;
      if (counter.win) windows.push({ pk: counter.pk, sk: counter.sk, ...counter.win });
    } else if (sk === "SELF") self = it as unknown as SelfItem;
    else if (sk.startsWith("W#")) windows.push(it as unknown as WindowItem);
    else if (sk.startsWith("C#")) {
      const epoch = chunkEpoch(sk);
      if (epoch > committed) continue;
      const list = callsByEpoch.get(epoch) ?? [];
      callsByEpoch.set(epoch, list);
      for (const rec of decodeChunk(it)) {
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
  // In call order (the chunks' keys are zero-padded epoch and number, and each chunk lists its
  // calls as the body made them): a replay matches its calls to the records by position, with no
  // digest and no counter per call (core/calls.ts matchInOrder), where decodeChunk already took two.
  return { history: { calls, outcomes, traces, inCallOrder: true }, self, windows, callsByEpoch };
}

/** The epoch an action's counter committed last, from its partition's items (0: none). */
export function committedEpoch(items: readonly Record<string, unknown>[]): number {
  const cnt = items.find((it) => it["sk"] === "CNT");
  return typeof cnt?.["epoch"] === "number" ? cnt["epoch"] : 0;
}

/** The epoch of a call chunk, from its sort key (`C#<epoch>#<n>`). */
export const chunkEpoch = (sk: string): number => Number(sk.slice(2, 8));

/** Thrown when this replay ran without traces its own delivery recorded before: replay on top of them. */
export class TraceConflict extends Error {}

/**
 * Thrown when another delivery owns the epoch this replay would write: it (or its redelivery)
 * commits it, so this replay writes nothing — two replays of one epoch that saw different results
 * or traces would otherwise write different call lists under the same keys.
 */
export class EpochTaken extends Error {}

/** Who may write an epoch's calls: one replay of one attempt. */
export interface EpochOwner {
  /**
   * A resume's replay: the token of the replay lease it holds (store/counters.ts claimReplay). A
   * first execution: the SQS message id of its delivery (a redelivery keeps it).
   */
  by: string;
  attempt: number;
  /**
   * Whether `by` holds the parent's replay lease. No other replay of the epoch is alive then (a
   * claim of the same attempt by another is a dead holder's, or one fenced off at its commit), so
   * it takes such a claim over as its own.
   */
  leased: boolean;
}

/**
 * Claims epoch `epoch` of `action` for `owner` and records the suspension's traces, in one
 * conditional put of the epoch's trace item (written even with no traces: it is the claim). The
 * first replay of an epoch to get here owns it; any other writes nothing (EpochTaken), so an
 * epoch's calls and window parts come from one decision. A later attempt takes over an epoch an
 * earlier one claimed and never committed (a retry before the first commit; the deadline check
 * fences the timed-out attempt first: coord/deadline.ts). The owner's own redelivery, or the
 * holder of the replay lease after a dead one (`leased`), finds the claim and goes on; if its
 * replay ran without the traces recorded then, it replays on top of them.
 */
export async function claimEpoch(
  rt: Runtime,
  run: string,
  action: CallId,
  epoch: number,
  owner: EpochOwner,
  traces: TraceRecord[],
  expiresAt: number,
): Promise<void> {
  const body = traces.length
    ? await offload(rt.payloads, `${run}/${action}`, JSON.stringify(traces), 300_000)
    : undefined;
  try {
    await rt.doc.send(
      new PutCommand({
        TableName: rt.config.table,
        Item: {
          pk: actionPk(action),
          sk: traceSk(epoch),
          ...(body === undefined ? {} : { traces: body }),
          by: owner.by,
          a: owner.attempt,
          expiresAt,
        },
        // The first claim wins; only a later attempt replaces one (an abandoned earlier attempt's).
        ConditionExpression: "attribute_not_exists(pk) OR a < :a",
        ExpressionAttributeValues: { ":a": owner.attempt },
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      }),
    );
  } catch (e) {
    if (!isConditionFailed(e)) throw e;
    const held = oldItem(e);
    if (held?.["a"] !== owner.attempt || (held["by"] !== owner.by && !owner.leased))
      throw new EpochTaken(`epoch ${epoch} of ${action} is owned by another delivery`);
    if (!traces.length) return;
    // This delivery's own claim, or a dead holder's. A trace recorded then and made again: replay on
    // top of the record. New ones only (it has seen more since, e.g. outcomes observed): add them.
    const recorded = await claimedTraces(rt, held);
    const keys = new Set(recorded.map((t) => t.key));
    if (traces.some((t) => keys.has(t.key)))
      throw new TraceConflict(`traces of ${action} epoch ${epoch} were recorded before`);
    const merged = await offload(
      rt.payloads,
      `${run}/${action}`,
      JSON.stringify([...recorded, ...traces]),
      300_000,
    );
    await rt.doc.send(
      new PutCommand({
        TableName: rt.config.table,
        Item: { ...held, by: owner.by, traces: merged },
        ConditionExpression: "#by = :held AND a = :a", // the claim as read
        ExpressionAttributeNames: { "#by": "by" },
        ExpressionAttributeValues: { ":held": held["by"], ":a": owner.attempt },
      }),
    );
  }
}

async function claimedTraces(rt: Runtime, held: Record<string, unknown>): Promise<TraceRecord[]> {
  if (held["traces"] === undefined) return [];
  return JSON.parse(await resolvePayload(rt.payloads, String(held["traces"]))) as TraceRecord[];
}

/**
 * Fences attempt `attempt` of `action` off its first suspension (see claimEpoch), so a deadline
 * check may retry it: true unless that attempt claimed its first epoch already (it is a parent
 * committing its first suspension, and times out as one). A redelivered check finds its own fence.
 */
export async function fenceFirstEpoch(
  rt: Runtime,
  action: CallId,
  attempt: number,
  expiresAt: number,
): Promise<boolean> {
  try {
    await rt.doc.send(
      new PutCommand({
        TableName: rt.config.table,
        Item: { pk: actionPk(action), sk: traceSk(1), by: FENCE, a: attempt, expiresAt },
        ConditionExpression: "attribute_not_exists(pk) OR a < :a",
        ExpressionAttributeValues: { ":a": attempt },
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      }),
    );
    return true;
  } catch (e) {
    if (!isConditionFailed(e)) throw e;
    const held = oldItem(e);
    return held?.["by"] === FENCE && held["a"] === attempt;
  }
}

const FENCE = "deadline";

/** Whether a deadline check fenced attempt `attempt` of `action` (and so retried it). */
export async function isFenced(rt: Runtime, action: CallId, attempt: number): Promise<boolean> {
  const got = await rt.doc.send(
    new GetCommand({
      TableName: rt.config.table,
      Key: { pk: actionPk(action), sk: traceSk(1) },
      ConsistentRead: true,
    }),
  );
  return got.Item?.["by"] === FENCE && got.Item["a"] === attempt;
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
  /** Checked before each write request: a replay that lost its lease stops writing (run-action.ts). */
  before?: () => Promise<void>,
): Promise<CallRecord[]> {
  const stored = await Promise.all(
    calls.map(async (c) =>
      inlineBytes(c.args) > CALL_ARGS_INLINE
        ? { ...c, args: await rt.payloads.put(`${run}/${c.id}`, c.args) }
        : c,
    ),
  );
  const items: Record<string, unknown>[] = [];
  // When the calls were made: a status tree shows when a sleep among them fires (sdk/aws/status.ts).
  const at = rt.now();
  // A recovered run's calls share their parent's twins: stored once per chunk, the calls' own
  // recomputed on reading (as their ids are).
  const ptw = stored[0]?.tw?.map(([run, parent]) => [run, parent]);
  for (let i = 0; i < stored.length; i += CHUNK_CALLS) {
    items.push({
      pk: actionPk(action),
      sk: chunkSk(epoch, i / CHUNK_CALLS),
      z: encodeChunk(action, stored.slice(i, i + CHUNK_CALLS)),
      ...(ptw ? { ptw } : {}),
      at,
      expiresAt,
    });
  }
  await batchPut(rt, items, before);
  return stored;
}

/**
 * Compact record: [v, id (0: its identity from the other fields), task, group, n, args, digest (0:
 * digest of args), window (0: none), identity scheme (absent in rows written before it was: 1),
 * settings a call site overrides (`task.override`; absent: none)]. A
 * call's id is a digest of its parent, task, group, inputs and n (sdk/core/calls.ts), so it is
 * recomputed rather than stored: ids are the one part of a chunk that does not compress, ≈2/3 of it.
 * A row of another identity scheme gets an id recomputed by this one, which matches nothing; the
 * replay fails on its scheme before matching (sdk/core/replay.ts).
 */
type Compact = [
  number,
  string | 0,
  string,
  string,
  number,
  string,
  string | 0,
  [string, number, number] | 0,
  number?,
  CallSettings?,
];

export function encodeChunk(action: CallId, calls: readonly CallRecord[]): Uint8Array {
  const rows: Compact[] = calls.map((c) => {
    const row: Compact = [
      c.v,
      c.id === callIdentity(action, c.task, c.group, c.digest, c.n) ? 0 : c.id,
      c.task,
      c.group,
      c.n,
      c.args,
      c.digest === digest(c.args) ? 0 : c.digest, // an offloaded argument's digest is of the value
      c.window ? [c.window.key, c.window.index, c.window.limit] : 0,
      c.idv ?? IDENTITY_VERSION,
    ];
    if (c.settings) row.push(c.settings);
    return row;
  });
  const z = deflateRawSync(JSON.stringify(rows));
  if (z.byteLength > CHUNK_BYTES) {
    const widest = calls.reduce((a, c) =>
      a.task.length + a.group.length >= c.task.length + c.group.length ? a : c,
    );
    throw new ConfigurationError(
      `the calls of ${action} do not fit in a history item (${z.byteLength} bytes compressed, at most ` +
        `${CHUNK_BYTES}): their task names and group paths are too long (e.g. task ${widest.task} in group ` +
        `${JSON.stringify(widest.group.slice(0, 200))}); keep them under 1 KB`,
    );
  }
  return z;
}

/** The call records of a chunk item (compressed `z`, or the earlier `calls` list of JSON records). */
export function decodeChunk(it: Record<string, unknown>): CallRecord[] {
  const sk = String(it["sk"]);
  const action = String(it["pk"]).slice(2);
  const legacy = it["calls"];
  if (Array.isArray(legacy)) return legacy.map((s) => parseCallRecord(String(s)));
  const z = it["z"];
  if (!(z instanceof Uint8Array))
    throw new HistoryError(`corrupted history record (call chunk ${sk} of ${action}): no calls`);
  let rows: unknown;
  try {
    rows = JSON.parse(inflateRawSync(z).toString("utf8"));
  } catch (e) {
    throw new HistoryError(`corrupted history record (call chunk ${sk} of ${action}): ${String(e)}`, {
      cause: e,
    });
  }
  if (!Array.isArray(rows))
    throw new HistoryError(`corrupted history record (call chunk ${sk} of ${action}): not a list`);
  const ptw = it["ptw"] as [string, string][] | undefined;
  return rows.map((r: unknown) => {
    const [v, id, task, group, n, args, d, w, idv = 1, settings] = r as Compact;
    if (typeof v !== "number" || v > HISTORY_VERSION)
      throw new HistoryError(
        `history record (call in ${sk} of ${action}) has format v${String(v)}, newer than this Aloft ` +
          `(v${HISTORY_VERSION}); upgrade Aloft to read this run`,
      );
    if (
      (typeof id !== "string" && id !== 0) ||
      typeof task !== "string" ||
      typeof group !== "string" ||
      typeof args !== "string" ||
      typeof n !== "number" ||
      !Number.isInteger(idv)
    )
      throw new HistoryError(`corrupted history record (call in ${sk} of ${action})`);
    const dg = d || digest(args);
    const rec: CallRecord = {
      v,
      id: id || callIdentity(action, task, group, dg, n),
      parent: action,
      task,
      group,
      digest: dg,
      n,
      args,
      idv,
    };
    if (w) rec.window = { key: w[0], index: w[1], limit: w[2] };
    if (settings && typeof settings === "object") rec.settings = settings;
    if (ptw) rec.tw = ptw.map(([run, parent]) => [run, parent, callIdentity(parent, task, group, dg, n)]);
    return rec;
  });
}

/**
 * The calls at `positions` of an epoch's list (a window's next items), from their chunks. Chunks
 * never change once written, so an eventually consistent read serves; a chunk it misses (written
 * moments ago) is read again strongly consistent.
 */
export async function readCalls(
  rt: Runtime,
  action: CallId,
  epoch: number,
  positions: readonly number[],
): Promise<CallRecord[]> {
  if (!positions.length) return [];
  const chunks = [...new Set(positions.map((p) => Math.floor(p / CHUNK_CALLS)))];
  const keyOf = (n: number) => ({ pk: actionPk(action), sk: chunkSk(epoch, n) });
  const got = await batchGet(rt, chunks.map(keyOf));
  const missing = chunks.filter((n) => !got.has(keyId(keyOf(n))));
  if (missing.length) for (const [k, v] of await batchGet(rt, missing.map(keyOf), true)) got.set(k, v);
  const decoded = new Map<number, CallRecord[]>();
  for (const n of chunks) {
    const it = got.get(keyId(keyOf(n)));
    if (!it) throw new HistoryError(`call chunk ${n} of ${action} epoch ${epoch} is missing`);
    decoded.set(n, decodeChunk(it));
  }
  return positions.map((p) => {
    const c = decoded.get(Math.floor(p / CHUNK_CALLS))?.[p % CHUNK_CALLS];
    if (!c) throw new HistoryError(`call ${p} of ${action} epoch ${epoch} is missing`);
    return c;
  });
}

/**
 * A parent's SELF item, written at its first suspension: what a resume or a failure needs to
 * address it later. Unconditional: every delivery of the first epoch writes the same item.
 */
export async function writeSelf(rt: Runtime, item: Omit<SelfItem, "pk" | "sk">): Promise<void> {
  await rt.doc.send(new PutCommand({ TableName: rt.config.table, Item: { ...selfKey(item.id), ...item } }));
}

export async function readSelf(rt: Runtime, action: CallId): Promise<SelfItem | undefined> {
  const out = await rt.doc.send(
    new GetCommand({ TableName: rt.config.table, Key: selfKey(action), ConsistentRead: true }),
  );
  return out.Item as SelfItem | undefined;
}

/**
 * One page of an action's items whose sort key begins with `prefix` (C# chunks, W# window parts):
 * at most `limit`, after the sort key `after`; `more` when the query stopped at the limit.
 */
export async function readPrefix(
  rt: Runtime,
  action: CallId,
  prefix: string,
  page: { limit?: number | undefined; after?: string | undefined } = {},
): Promise<{ items: Record<string, unknown>[]; more: boolean }> {
  const pk = actionPk(action);
  const out = await rt.doc.send(
    new QueryCommand({
      TableName: rt.config.table,
      KeyConditionExpression: "pk = :pk AND begins_with(sk, :p)",
      ExpressionAttributeValues: { ":pk": pk, ":p": prefix },
      ConsistentRead: true,
      ...(page.limit ? { Limit: page.limit } : {}),
      ...(page.after === undefined ? {} : { ExclusiveStartKey: { pk, sk: page.after } }),
    }),
  );
  return { items: out.Items ?? [], more: out.LastEvaluatedKey !== undefined };
}
