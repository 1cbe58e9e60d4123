/**
 * Cancelling what remains under an action that ended (finished, failed, timed out, cancelled):
 * each unsettled child gets a CANCELLED outcome (conditional, so a child that finished first keeps
 * its result), and each unsettled child that is itself a parent is marked ended so it never resumes
 * and its own queued children cancel themselves when their messages arrive.
 */
import type { CallId } from "../../sdk/core/history.ts";
import { CancelledError, serializeError } from "../../sdk/errors.ts";
import { batchGet, keyId } from "../runtime.ts";
import type { Runtime } from "../runtime.ts";
import { endCounter } from "./counters.ts";
import { loadHistory } from "./history.ts";
import { writeTerminal } from "./results.ts";
import { counterKey } from "./table.ts";

/**
 * Cancels `children` of `parent`; returns the ids of those that are parents themselves, whose own
 * children the caller cancels next (inline, or through a sweep message).
 */
export async function cancelChildren(
  rt: Runtime,
  run: string,
  parent: CallId,
  children: CallId[],
  reason: string,
): Promise<CallId[]> {
  if (!children.length) return [];
  const outcome = { ok: false as const, error: serializeError(new CancelledError(`cancelled: ${reason}`)) };
  const counters = await batchGet(rt, children.map(counterKey), true);
  const parents = new Set(children.filter((id) => counters.has(keyId(counterKey(id)))));
  // Mark sub-parents ended before their outcome is written, so none resumes in between.
  await Promise.all([...parents].map((id) => endCounter(rt, id)));
  for (let i = 0; i < children.length; i += 25) {
    await Promise.all(
      children.slice(i, i + 25).map((id) =>
        writeTerminal(rt, {
          run,
          parent,
          id,
          status: "CANCELLED",
          outcome,
          attempt: undefined,
          kids: parents.has(id),
        }),
      ),
    );
  }
  return [...parents];
}

/** The unsettled children of `action`, from its stored history. */
export async function unsettledChildren(rt: Runtime, action: CallId): Promise<CallId[]> {
  const { history } = await loadHistory(rt, action);
  return [...history.calls.keys()].filter((id) => !history.outcomes.has(id));
}

/** Cancels the whole subtree under `action`, level by level (the client's cancel). */
export async function cancelSubtree(rt: Runtime, run: string, action: CallId, reason: string): Promise<void> {
  let level = [action];
  while (level.length) {
    const next: CallId[] = [];
    for (const p of level)
      next.push(...(await cancelChildren(rt, run, p, await unsettledChildren(rt, p), reason)));
    level = next;
  }
}
