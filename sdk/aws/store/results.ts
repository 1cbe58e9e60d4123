/**
 * The terminal transition of an action: one conditional write that records its outcome exactly
 * once. A child's outcome goes to its parent's result shard; the root's to the run item, which is
 * also how a run ends in exactly one terminal state.
 */
import { GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { TransactWriteCommandInput } from "@aws-sdk/lib-dynamodb";
import { formatOutcome, parseOutcome } from "../../core/history.ts";
import type { Outcome, Twin } from "../../core/history.ts";
import { offload, resolvePayload } from "../payloads.ts";
import { isConditionFailed, oldItem } from "./io.ts";
import type { Runtime } from "../runtime.ts";
import type { ResultItem, RunItem, TerminalStatus } from "./table.ts";
import { endedIndexPk, expiry, resultKey, runIndexShard, runKey } from "./table.ts";

export interface Terminal {
  run: string;
  parent: string | null;
  id: string;
  status: TerminalStatus;
  outcome: Outcome;
  /** The attempt that ends it; undefined for a cancellation, which ends any attempt. */
  attempt: number | undefined;
  startedAt?: number;
  cached?: boolean;
  /** A recovery reused the outcome this source run recorded. */
  reused?: string;
  /** The action made child calls (the status tree looks under it). */
  kids?: boolean;
  /** The release token of the message whose delivery writes it (ResultItem.by). */
  by?: number;
}

export type WriteResult =
  { written: true } | { written: false; existing: Record<string, unknown> | undefined };

/**
 * Writes a terminal outcome once. On a lost race the item as it was is returned, so a redelivered
 * message whose first delivery wrote the outcome (and crashed before telling the parent) can still
 * send the completion with the recorded outcome.
 */
export async function writeTerminal(rt: Runtime, t: Terminal): Promise<WriteResult> {
  const body = await offload(rt.payloads, `${t.run}/${t.id}`, formatOutcome(t.outcome));
  // `ended` is the time of this write (after any offload), the moment the outcome becomes visible.
  const now = rt.now();
  const root = t.parent === null;
  const values: Record<string, unknown> = {
    ":st": t.status,
    ":o": body,
    ":end": now,
    ":x": expiry(now, rt.config.retentionDays, root ? 0 : 7),
  };
  let set = "#status = :st, outcome = :o, ended = :end, expiresAt = :x";
  let cond: string;
  if (root) {
    values[":running"] = "RUNNING";
    // Out of the live index partition (the reconciler's) into the ended one.
    values[":ix"] = endedIndexPk(runIndexShard(t.run));
    set += ", gsi1pk = :ix";
    // A run ends once: only from RUNNING, and only by the attempt the run item names.
    cond = "#status = :running";
  } else {
    // A child's item holds only what its parent's replay and the status tree read: its task and
    // group are in the parent's call records (every byte here is read again by each replay).
    // An action ends once: no outcome yet, and (unless cancelling) written by the current attempt.
    cond = "attribute_not_exists(outcome)";
  }
  if (t.attempt !== undefined) {
    values[":a"] = t.attempt;
    set += ", attempt = :a";
    cond += " AND (attribute_not_exists(attempt) OR attempt = :a)";
  }
  if (t.startedAt !== undefined) {
    values[":sa"] = t.startedAt;
    set += ", startedAt = :sa";
  }
  if (t.cached) {
    values[":c"] = true;
    set += ", cached = :c";
  }
  if (t.reused) {
    values[":ru"] = t.reused;
    set += ", reused = :ru";
  }
  if (t.kids) {
    values[":k"] = true;
    set += ", kids = :k";
  }
  if (t.by !== undefined) {
    values[":by"] = t.by;
    set += ", #by = :by"; // BY is a reserved word
  }
  try {
    await rt.doc.send(
      new UpdateCommand({
        TableName: rt.config.table,
        Key: root ? runKey(t.run) : resultKey(t.parent!, t.id),
        UpdateExpression: `SET ${set}`,
        ConditionExpression: cond,
        ExpressionAttributeNames: { "#status": "status", ...(t.by === undefined ? {} : { "#by": "by" }) },
        ExpressionAttributeValues: values,
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      }),
    );
    return { written: true };
  } catch (e) {
    if (isConditionFailed(e)) return { written: false, existing: oldItem(e) };
    throw e;
  }
}

/**
 * Moves an action from attempt `from` to `from + 1` before a retry is sent. Guards against a
 * duplicate delivery of a failing attempt starting a second chain of retries. `by` (ResultItem.rb)
 * is the release token of the message whose delivery bumps it: a delivery of the same message
 * that loses the bump sends the retry too (its twin may have died before sending it). On a lost
 * race the item as it was is returned.
 */
export async function bumpAttempt(
  rt: Runtime,
  run: string,
  parent: string | null,
  id: string,
  from: number,
  by: number,
): Promise<{ bumped: true } | { bumped: false; existing: Record<string, unknown> | undefined }> {
  const root = parent === null;
  try {
    await rt.doc.send(
      new UpdateCommand({
        TableName: rt.config.table,
        Key: root ? runKey(run) : resultKey(parent, id),
        UpdateExpression: root
          ? "SET attempt = :to, rb = :by"
          : "SET attempt = :to, rb = :by, expiresAt = :x",
        // Only the current attempt may start the next one, and never after the action ended.
        ConditionExpression: root
          ? "#status = :running AND (attribute_not_exists(attempt) OR attempt = :from)"
          : "attribute_not_exists(outcome) AND (attribute_not_exists(attempt) OR attempt = :from)",
        ...(root ? { ExpressionAttributeNames: { "#status": "status" } } : {}),
        ExpressionAttributeValues: {
          ":to": from + 1,
          ":from": from,
          ":by": by,
          ...(root ? { ":running": "RUNNING" } : { ":x": expiry(rt.now(), rt.config.retentionDays, 7) }),
        },
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      }),
    );
    return { bumped: true };
  } catch (e) {
    if (isConditionFailed(e)) return { bumped: false, existing: oldItem(e) };
    throw e;
  }
}

/**
 * Whether a lost bump from `from` was made by a delivery of the message whose release token is
 * `by` (two invocations of one message at once), which may have died before sending the retry.
 */
export function bumpedByTwin(
  existing: Record<string, unknown> | undefined,
  from: number,
  by: number,
): boolean {
  return existing?.["attempt"] === from + 1 && existing["rb"] === by && existing["outcome"] === undefined;
}

/**
 * The first of a recovered call's twins (sdk/core/recover.ts) that succeeded in its source run: that
 * run and the recorded value (resolved: a large one is stored again, under the recovery's run).
 */
export async function readReusable(
  rt: Runtime,
  twins: readonly Twin[],
): Promise<{ run: string; value: string } | undefined> {
  for (const [run, parent, id] of twins) {
    // Eventually consistent: a source run has ended, and a success it recorded moments ago that
    // this read misses only means the call runs again.
    const it = (await readAction(rt, run, parent, id, false)) as ResultItem | undefined;
    if (it?.status !== "SUCCEEDED" || it.outcome === undefined) continue;
    const o = parseOutcome(`outcome of ${id}`, await resolvePayload(rt.payloads, it.outcome));
    if (o.ok) return { run, value: o.value };
  }
  return undefined;
}

/** The result item of a child, or the run item for the root (consistent read). */
export async function readAction(
  rt: Runtime,
  run: string,
  parent: string | null,
  id: string,
  consistent = true,
): Promise<ResultItem | RunItem | undefined> {
  const out = await rt.doc.send(
    new GetCommand({
      TableName: rt.config.table,
      Key: parent === null ? runKey(run) : resultKey(parent, id),
      ConsistentRead: consistent,
    }),
  );
  return out.Item as ResultItem | RunItem | undefined;
}

/**
 * A transaction's check that the action `parent`/`id` has no outcome yet: a wait that was not
 * cancelled (the task that created it ended without awaiting it).
 */
export function notCancelled(
  rt: Runtime,
  parent: string,
  id: string,
): NonNullable<TransactWriteCommandInput["TransactItems"]>[number] {
  return {
    ConditionCheck: {
      TableName: rt.config.table,
      Key: resultKey(parent, id),
      ConditionExpression: "attribute_not_exists(outcome)",
    },
  };
}
