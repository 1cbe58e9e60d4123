/**
 * Cancelling what remains under an action that ended (finished, failed, timed out, cancelled):
 * each unsettled child is marked ended (so one still in its first execution never fans out, and
 * one that suspended never resumes) and gets a CANCELLED outcome (conditional, so a child that
 * finished first keeps its result). Children that had children are swept in turn. A sweep works
 * through an action's calls a page at a time, so no invocation's work grows with their number.
 */
import type { CallId, CallRecord } from "../../core/history.ts";
import { MESSAGE_VERSION } from "../messages.ts";
import type { SweepMessage } from "../messages.ts";
import { batchGet, keyId } from "./io.ts";
import type { Runtime } from "../runtime.ts";
import { endCounter } from "./counters.ts";
import { decodeChunk } from "./history.ts";
import { writeTerminal } from "./results.ts";
import { actionPk, resultKey } from "./table.ts";
import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import { cancelledError } from "../../core/policy.ts";

/** Call chunks (of up to 100 calls) one sweep message handles; more continue in the next. */
export const sweepLimits = { chunksPerPage: 10 };

/** Writes per round: the requests of one round go out together. */
const PARALLEL = 25;

/**
 * Cancels `children` of `parent`; returns the ids of those that had children themselves, which
 * the caller sweeps next. Each is marked ended before its outcome is written, so none resumes or
 * first commits in between.
 */
export async function cancelChildren(
  rt: Runtime,
  run: string,
  parent: CallId,
  children: readonly CallId[],
  reason: string,
): Promise<CallId[]> {
  const outcome = { ok: false as const, error: cancelledError(reason) };
  const parents: CallId[] = [];
  for (let i = 0; i < children.length; i += PARALLEL) {
    await Promise.all(
      children.slice(i, i + PARALLEL).map(async (id) => {
        const kids = await endCounter(rt, id);
        if (kids) parents.push(id);
        await writeTerminal(rt, { run, parent, id, status: "CANCELLED", outcome, attempt: undefined, kids });
      }),
    );
  }
  return parents;
}

/** The sweep of `id` (from its first call chunk, or after `after`). */
export function sweepOf(run: string, id: CallId, reason: string, after?: string): SweepMessage {
  return { k: "sweep", v: MESSAGE_VERSION, run, id, reason, ...(after === undefined ? {} : { after }) };
}

/**
 * One page of a sweep: the calls of up to `sweepLimits.chunksPerPage` chunks after `m.after`,
 * those without a result cancelled. Returns the sweeps that follow: the next page, and one per
 * cancelled child that had children.
 */
export async function sweepPage(rt: Runtime, m: SweepMessage): Promise<SweepMessage[]> {
  const pk = actionPk(m.id);
  const page = await rt.doc.send(
    new QueryCommand({
      TableName: rt.config.table,
      KeyConditionExpression: "pk = :pk AND begins_with(sk, :c)",
      ExpressionAttributeValues: { ":pk": pk, ":c": "C#" },
      ConsistentRead: true,
      Limit: sweepLimits.chunksPerPage,
      ...(m.after === undefined ? {} : { ExclusiveStartKey: { pk, sk: m.after } }),
    }),
  );
  const items = page.Items ?? [];
  const calls: CallRecord[] = items.flatMap((it) => decodeChunk(it));
  const open = await unsettled(rt, m.id, calls);
  const parents = await cancelChildren(rt, m.run, m.id, open, m.reason);
  const next = parents.map((p) => sweepOf(m.run, p, m.reason));
  const last = items.at(-1)?.["sk"];
  if (page.LastEvaluatedKey && typeof last === "string") next.push(sweepOf(m.run, m.id, m.reason, last));
  return next;
}

/** The calls among `calls` of `parent` with no outcome (an outcome written meanwhile is kept: writes are conditional). */
async function unsettled(rt: Runtime, parent: CallId, calls: readonly CallRecord[]): Promise<CallId[]> {
  const got = await batchGet(
    rt,
    calls.map((c) => resultKey(parent, c.id)),
  );
  return calls
    .filter((c) => got.get(keyId(resultKey(parent, c.id)))?.["outcome"] === undefined)
    .map((c) => c.id);
}
