/**
 * Recovering a run that ended badly (docs/recover.md): a new run of the same task and inputs in
 * which every call that succeeded in the source run returns its recorded outcome without running.
 *
 * A call is matched by identity, not by replaying the source's history: a call's id is a digest of
 * its parent's id, task, group, inputs and sequence (docs/identity.md), so the id the same call had
 * in the source run (its "twin") is that digest over the parent's twin. Every action of a recovered
 * run carries its twins (one per run in the recovery chain, newest first); the root's twin in a
 * source run is that run's id. Pure: the adapters look the twins up in their stores.
 */
import { ConfigurationError } from "../errors.ts";
import type { CallRecord, Twin } from "./history.ts";
import { callIdentity } from "./calls.ts";

export type { Twin } from "./history.ts";

/** Run states a recovery may start from. */
export const RECOVERABLE: ReadonlySet<string> = new Set(["FAILED", "CANCELLED", "TIMED_OUT"]);

/**
 * The root's twins in a recovery: the roots of the runs it recovers, `chain` (the source, then the
 * runs the source itself recovered, newest first), so a recovery of a recovery reuses what
 * succeeded in any of them. None for a run that recovers nothing.
 */
export function rootTwins(chain: readonly string[]): Twin[] | undefined {
  return chain.length ? chain.map((run) => [run, "", run]) : undefined;
}

/** A call's twins, from its parent's. */
export function twinsOf(
  parent: readonly Twin[],
  c: Pick<CallRecord, "task" | "group" | "digest" | "n">,
): Twin[] {
  return parent.map(([run, , id]) => [run, id, callIdentity(id, c.task, c.group, c.digest, c.n)]);
}

/** Checks that a run in `status` can be recovered; the error says why not and what to do. */
export function checkRecoverable(run: { id: string; task: string; status: string }): void {
  if (RECOVERABLE.has(run.status)) return;
  const why =
    run.status === "SUCCEEDED"
      ? "it succeeded: there is nothing to repair (run it again with aloft run to compute it anew)"
      : run.status === "RUNNING"
        ? "it is still RUNNING: wait for it to end, or cancel it first (aloft cancel), then recover it"
        : `it is ${run.status}`;
  throw new ConfigurationError(
    `run ${run.id} (${run.task}) cannot be recovered: ${why}. Only a run that ended FAILED, ` +
      `CANCELLED or TIMED_OUT can be`,
  );
}
