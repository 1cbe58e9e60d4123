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
import { decodeChunk, readPrefix } from "./history.ts";
import { writeTerminal } from "./results.ts";
import { resultKey } from "./table.ts";
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
  by?: number,
): Promise<CallId[]> {
  const outcome = { ok: false as const, error: cancelledError(reason) };
  const parents: CallId[] = [];
  for (let i = 0; i < children.length; i += PARALLEL) {
    await Promise.all(
      children.slice(i, i + PARALLEL).map(async (id) => {
        const kids = await endCounter(rt, id);
        if (kids) parents.push(id);
        await writeTerminal(rt, {
          run,
          parent,
          id,
          status: "CANCELLED",
          outcome,
          attempt: undefined,
          kids,
          ...(by === undefined ? {} : { by }),
        });
      }),
    );
  }
  return parents;
}

/** The sweep of `id` (from its first call chunk, or after `after`). */
export function sweepOf(run: string, id: CallId, reason: string, after?: string): SweepMessage {
  return { k: "sweep", v: MESSAGE_VERSION, run, id, reason, ...(after === undefined ? {} : { after }) };
}

/** Children one `sweep` message with listed `ids` cancels (≈45 KB of ids). */
export const SWEEP_IDS = 1000;

/** Cancels a replay cancels here; more go to the coordinator in sweeps of listed ids. */
export const CANCEL_INLINE = 100;

/**
 * Stops the children a parent's replay cancelled (`future.cancel()`, a map's completion rules or a
 * `map.aio` loop left early), as a run cancel stops them: each is ended and gets a CANCELLED
 * outcome (conditional: one that finished first keeps its result; the parent's history says
 * cancelled anyway). Up to CANCEL_INLINE here; returns the sweeps that do the rest, and those of
 * cancelled children that had children, for the caller to send.
 */
export async function cancelCalls(
  rt: Runtime,
  run: string,
  parent: CallId,
  task: string,
  ids: readonly CallId[],
): Promise<SweepMessage[]> {
  const reason = `its parent ${task} cancelled it`;
  const parents = await cancelChildren(rt, run, parent, ids.slice(0, CANCEL_INLINE), reason);
  const out = parents.map((p) => sweepOf(run, p, reason));
  for (let i = CANCEL_INLINE; i < ids.length; i += SWEEP_IDS)
    out.push({ ...sweepOf(run, parent, reason), ids: ids.slice(i, i + SWEEP_IDS) });
  return out;
}

/**
 * One page of a sweep: the calls of up to `sweepLimits.chunksPerPage` chunks after `m.after`,
 * those without a result cancelled. Returns the sweeps that follow: the next page, and one per
 * cancelled child that had children. `by` is the release token of the sweep message being
 * handled (none for the client's own first page): a child this message cancelled on an earlier
 * delivery (or a twin delivery of it), which may have died before sending that child's sweep, is
 * swept again.
 */
export async function sweepPage(rt: Runtime, m: SweepMessage, by?: number): Promise<SweepMessage[]> {
  if (m.ids) {
    // Not filtered by outcome: ending a child says whether it had children, every time.
    const parents = await cancelChildren(rt, m.run, m.id, m.ids, m.reason, by);
    return parents.map((p) => sweepOf(m.run, p, m.reason));
  }
  const { items, more } = await readPrefix(rt, m.id, "C#", {
    limit: sweepLimits.chunksPerPage,
    after: m.after,
  });
  const calls: CallRecord[] = items.flatMap((it) => decodeChunk(it));
  const { open, mine } = await unsettled(rt, m.id, calls, by);
  const parents = await cancelChildren(rt, m.run, m.id, open, m.reason, by);
  const next = [...mine, ...parents].map((p) => sweepOf(m.run, p, m.reason));
  const last = items.at(-1)?.["sk"];
  if (more && typeof last === "string") next.push(sweepOf(m.run, m.id, m.reason, last));
  return next;
}

/**
 * The calls among `calls` of `parent` with no outcome (an outcome written meanwhile is kept: writes
 * are conditional), and those a delivery of the message `by` names cancelled that had children.
 */
async function unsettled(
  rt: Runtime,
  parent: CallId,
  calls: readonly CallRecord[],
  by: number | undefined,
): Promise<{ open: CallId[]; mine: CallId[] }> {
  const got = await batchGet(
    rt,
    calls.map((c) => resultKey(parent, c.id)),
  );
  const open: CallId[] = [];
  const mine: CallId[] = [];
  for (const c of calls) {
    const r = got.get(keyId(resultKey(parent, c.id)));
    if (r?.["outcome"] === undefined) open.push(c.id);
    else if (by !== undefined && r["by"] === by && r["status"] === "CANCELLED" && r["kids"]) mine.push(c.id);
  }
  return { open, mine };
}
