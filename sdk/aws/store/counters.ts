/**
 * The conditional writes on a parent's counter item (`A#<action>`/`CNT`); map windows: windows.ts.
 * Each condition is the guard of one effect; the comment on it says which. Timeline: docs/aws.md.
 */
import { GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { isConditionFailed, oldItem } from "./io.ts";
import type { Runtime } from "../runtime.ts";
import type { Trigger } from "./trigger.ts";
import type { CounterItem } from "./table.ts";
import { counterKey, expiry } from "./table.ts";
import { mayProgress } from "./trigger.ts";
import { sinceCommit } from "./table.ts";
import type { EndedBy } from "./table.ts";

async function update<T>(
  rt: Runtime,
  input: Omit<ConstructorParameters<typeof UpdateCommand>[0], "TableName">,
): Promise<T | undefined> {
  try {
    const out = await rt.doc.send(
      new UpdateCommand({ TableName: rt.config.table, ReturnValues: "ALL_NEW", ...input }),
    );
    return out.Attributes as T;
  } catch (e) {
    if (isConditionFailed(e)) return undefined;
    throw e;
  }
}

/**
 * Commits a suspension: epoch `from` → `from + 1`, with the thresholds of its wait and the counts
 * read before its history was. Returns the new counter, or undefined when another replay of the
 * same epoch committed first (its calls were identical: the loser only finishes what the winner
 * may have left unsent, from the stored state — exec/suspend.ts).
 */
export function commitSuspension(
  rt: Runtime,
  a: {
    run: string;
    action: string;
    from: number;
    snap: { co: number; ce: number };
    trigger: Trigger;
    expiresAt: number;
    /** How many calls the suspension recorded (none: it is dispatched as it commits). */
    calls: number;
    /** A window part the counter hosts from now on (planWindows). */
    win?: CounterItem["win"];
    /** The suspension cancelled children (CounterItem.cx). */
    cancels?: boolean;
    /** The replay lease the committing replay holds (claimReplay); every resume holds one. */
    lease?: string;
  },
): Promise<CounterItem | undefined> {
  return update<CounterItem>(rt, {
    Key: counterKey(a.action),
    UpdateExpression:
      "SET epoch = :e1, st = :S, bo = :bo, be = :be, D = :D, B = :B, run = :run, expiresAt = :x, " +
      "co = if_not_exists(co, :zero), ce = if_not_exists(ce, :zero), nc = :nc, ct = :ct" +
      (a.calls === 0 ? ", disp = :e1" : "") +
      (a.win ? ", win = :win" : "") +
      (a.cancels ? ", cx = :cx" : ""),
    // The epoch moves forward once per suspension: only a replay of the current epoch may commit,
    // and never after the action ended (E), and only while it still holds the epoch's replay lease
    // (one that outlived it was fenced off by the replay that took the lease over). The first
    // suspension creates the item.
    ConditionExpression:
      a.from === 0
        ? "attribute_not_exists(pk)"
        : `epoch = :e AND st <> :E${a.lease === undefined ? "" : " AND leaseBy = :me"}`,
    ExpressionAttributeValues: {
      ":e1": a.from + 1,
      ":S": "S",
      ":bo": a.snap.co,
      ":be": a.snap.ce,
      ":D": a.trigger.D,
      ":B": a.trigger.B,
      ":run": a.run,
      ":x": a.expiresAt,
      ":zero": 0,
      ":nc": a.calls,
      ":ct": rt.now(),
      ...(a.win ? { ":win": a.win } : {}),
      ...(a.cancels ? { ":cx": true } : {}),
      ...(a.from === 0 ? {} : { ":e": a.from, ":E": "E" }),
      ...(a.from === 0 || a.lease === undefined ? {} : { ":me": a.lease }),
    },
  });
}

/** A parent's counter, read consistently (undefined for an action that never suspended). */
export async function readCounter(rt: Runtime, action: string): Promise<CounterItem | undefined> {
  const got = await rt.doc.send(
    new GetCommand({ TableName: rt.config.table, Key: counterKey(action), ConsistentRead: true }),
  );
  return got.Item as CounterItem | undefined;
}

/** Counts a batch of completions. Undefined when the parent is gone or has ended (they are moot). */
export function addCompletions(
  rt: Runtime,
  action: string,
  ok: number,
  err: number,
): Promise<CounterItem | undefined> {
  return update<CounterItem>(rt, {
    Key: counterKey(action),
    UpdateExpression: "ADD co :ok, ce :err",
    // Counting is not deduplicated (see trigger.ts: an over-count only resumes early); it only
    // requires a live parent, so completions arriving after the parent ended change nothing.
    ConditionExpression: "attribute_exists(pk) AND st <> :E",
    ExpressionAttributeValues: { ":ok": ok, ":err": err, ":E": "E" },
  });
}

/**
 * S → R for `epoch`: `won` for the one caller that wins the right to resume the parent; a loser
 * gets the counter as it was. The mark names the winner (`rby`, a release token of one of its
 * messages) and its time (`rat`), so that only a redelivery of the winner — or a twin delivery of
 * its messages, or anyone once the mark is old — sends a resume the winner may have crashed before
 * sending (resume.ts), not every completion counted meanwhile.
 */
export async function markResuming(
  rt: Runtime,
  action: string,
  epoch: number,
  by: number,
): Promise<{ won: true } | { won: false; existing: CounterItem | undefined }> {
  try {
    await rt.doc.send(
      new UpdateCommand({
        TableName: rt.config.table,
        Key: counterKey(action),
        UpdateExpression: "SET st = :R, rby = :by, rat = :now",
        // One resume per suspension: only the transition out of S at this epoch wins.
        ConditionExpression: "epoch = :e AND st = :S",
        ExpressionAttributeValues: { ":R": "R", ":S": "S", ":e": epoch, ":by": by, ":now": rt.now() },
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      }),
    );
    return { won: true };
  } catch (e) {
    if (isConditionFailed(e)) return { won: false, existing: oldItem(e) as CounterItem | undefined };
    throw e;
  }
}

/** Records that the resume of `epoch` was sent, so a redelivered trigger does not send it again. */
export async function markSent(rt: Runtime, action: string, epoch: number): Promise<void> {
  await update(rt, {
    Key: counterKey(action),
    UpdateExpression: "SET sent = :e",
    ConditionExpression: "epoch = :e", // a later epoch's marker is never overwritten by a late writer
    ExpressionAttributeValues: { ":e": epoch },
  });
}

/**
 * Records that every call of `epoch` was sent (a redelivered exec then has nothing to redo). Returns
 * the counter as it now is — a resume waits for this mark (resume.ts maybeResume), so whoever sets
 * it checks for one — or undefined when the epoch moved on or the action ended.
 */
export function markDispatched(rt: Runtime, action: string, epoch: number): Promise<CounterItem | undefined> {
  return update<CounterItem>(rt, {
    Key: counterKey(action),
    UpdateExpression: "SET disp = :e",
    ConditionExpression: "epoch = :e AND st <> :E",
    ExpressionAttributeValues: { ":e": epoch, ":E": "E" },
  });
}

/**
 * Marks an action ended: no more resumes, its windows stop, queued descendants cancel themselves.
 * It writes the mark whether or not the action ever suspended: one still in its first execution
 * (no counter yet) then finds the mark when it commits its first suspension — that commit requires
 * no item — and never fans out (a cancel or a timeout landing before the first commit). Returns
 * whether the action had children to sweep (it had committed a suspension).
 */
export async function endCounter(rt: Runtime, action: string, by: EndedBy = "other"): Promise<boolean> {
  const out = await rt.doc.send(
    new UpdateCommand({
      TableName: rt.config.table,
      Key: counterKey(action),
      // The first ender is kept: it is the one that writes the outcome (or its redelivery does).
      UpdateExpression: "SET st = :E, eb = if_not_exists(eb, :by), expiresAt = if_not_exists(expiresAt, :x)",
      ExpressionAttributeValues: { ":E": "E", ":by": by, ":x": expiry(rt.now(), rt.config.retentionDays, 7) },
      ReturnValues: "ALL_OLD",
    }),
  );
  return (out.Attributes as CounterItem | undefined)?.epoch !== undefined;
}

/** A replay's claim on its parent: at `epoch`, for `ms` unless renewed, by the replay `owner`. */
export interface ReplayClaim {
  action: string;
  epoch: number;
  ms: number;
  /** A token of this one replay (its message id and a random part). */
  owner: string;
  /** When the claim was last made or renewed (rt.now), by this process's account. */
  renewedAt?: number;
}

/** Thrown by holdReplay: another replay took this one's lease over (it outlived it). */
export class LeaseLost extends Error {}

/**
 * Makes sure a claim still holds for a while before a write that must not land after another
 * replay took it over (an epoch's call chunks: unconditional puts). Free while the renewals keep
 * it fresh (renewed within a third of its length: two thirds are left); otherwise it renews it
 * now, and throws LeaseLost if it cannot.
 */
export async function holdReplay(rt: Runtime, c: ReplayClaim): Promise<void> {
  if (c.renewedAt !== undefined && rt.now() - c.renewedAt < c.ms / 3) return;
  if (!(await renewReplay(rt, c)))
    throw new LeaseLost(`the replay of ${c.action} at epoch ${c.epoch} lost its lease to another`);
}

/**
 * Claims the replay of an epoch. A replay of a resume is one invocation's alone: another delivery
 * of the same resume — a duplicate message, or the same message handed to two invocations at once
 * (SQS delivers at least once) — is refused while the claim holds, and looks again later. Two
 * invocations replaying one epoch at once could see different outcomes (one arrived between their
 * reads) and decide differently; each decision alone is right, both written are a corrupt epoch.
 * The holder renews the claim while it works (renewReplay), so only a dead holder's claim expires:
 * after a crash, the message comes back one visibility lease later (lambdas/visibility.ts), after
 * the claim has expired, and its replay takes the epoch over (claimEpoch).
 */
export async function claimReplay(rt: Runtime, c: ReplayClaim): Promise<boolean> {
  const now = rt.now();
  const out = await update<CounterItem>(rt, {
    Key: counterKey(c.action),
    // `rp` counts replays on the item each one writes anyway (not on the run item: a hot item).
    UpdateExpression: "SET lease = :until, leaseEpoch = :e, leaseBy = :me ADD rp :one",
    // Only the current epoch of a live parent, and only if no unexpired claim of another holds it.
    ConditionExpression:
      "epoch = :e AND st <> :E AND (attribute_not_exists(lease) OR leaseEpoch <> :e OR lease < :now OR leaseBy = :me)",
    ExpressionAttributeValues: {
      ":until": now + c.ms,
      ":e": c.epoch,
      ":E": "E",
      ":now": now,
      ":me": c.owner,
      ":one": 1,
    },
  });
  if (out) c.renewedAt = now;
  return out !== undefined;
}

/** Extends a claim its holder still has (false: the epoch moved on, or the claim was lost). */
export async function renewReplay(rt: Runtime, c: ReplayClaim): Promise<boolean> {
  const now = rt.now();
  const out = await update<CounterItem>(rt, {
    Key: counterKey(c.action),
    UpdateExpression: "SET lease = :until",
    ConditionExpression: "epoch = :e AND leaseEpoch = :e AND leaseBy = :me",
    ExpressionAttributeValues: { ":until": now + c.ms, ":e": c.epoch, ":me": c.owner },
  });
  if (out) c.renewedAt = now;
  return out !== undefined;
}

/** Gives a claim back after a failure this process saw (a real crash lets it expire instead). */
export async function releaseReplay(rt: Runtime, c: ReplayClaim): Promise<void> {
  await update(rt, {
    Key: counterKey(c.action),
    UpdateExpression: "SET lease = :zero",
    ConditionExpression: "leaseEpoch = :e AND leaseBy = :me",
    ExpressionAttributeValues: { ":zero": 0, ":e": c.epoch, ":me": c.owner },
  });
}

/** Whether the completions counted since the epoch's replay may satisfy its wait (store/trigger.ts). */
export function waitMayBeMet(c: CounterItem): boolean {
  const n = sinceCommit(c);
  return mayProgress(c, n.ok, n.err);
}
