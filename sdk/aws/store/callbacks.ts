/**
 * Callbacks in the table (docs/aws.md, "Callbacks"): one item per callback in its run's signal
 * partition, `S#<run>` / `K#<secret>`, never deleted while it may be read (TTL removes it with the
 * run's other items), so a late completion is told what became of it.
 *
 * | attribute | set by                                   | meaning                                   |
 * |-----------|------------------------------------------|-------------------------------------------|
 * | parent, id| the suspension that records the call     | the callback's action (registered before  |
 * |           | (before its commit: before any child can | its id can reach a child)                 |
 * |           | hand the id out)                         |                                           |
 * | x         | the callback's first exec                | its exec message: how its outcome is      |
 * |           |                                          | written and reported                      |
 * | done, o   | the first of: a completer, the timeout   | how it ended, and the outcome             |
 *
 * Who ends it, once (`done` is the point of decision):
 *
 *   completer   TransactWriteItems
 *                 callback item  SET done, o, at     IF attribute_exists(pk) AND attribute_not_exists(done)
 *                 run item       ConditionCheck      IF status = RUNNING
 *                 its result     ConditionCheck      IF attribute_not_exists(outcome)   (not cancelled)
 *               then a `callback` message to the coordinator
 *   timeout     the exec, sent again delayed:  SET done = TIMED_OUT  IF attribute_not_exists(done)
 *
 * Whoever then sees both `done` and `x` — the coordinator on the message, the exec when it attaches
 * `x` (a completion before the exec ran), the timeout exec — writes the outcome as any child's
 * (conditional, store/results.ts) and tells the parent; a crash in between leaves `done`, from which
 * the next look (a redelivery, the reconciler's `callback` message) finishes it.
 */
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { CallbackCompletedError, RunEndedError, UnknownCallbackError } from "../../errors.ts";
import { endedText } from "../../core/callbacks.ts";
import { CALLBACK_TASK, durableWaitOf, shownId } from "../../core/durable-waits.ts";
import type { CallRecord, Outcome } from "../../core/history.ts";
import { formatOutcome, parseOutcome } from "../../core/history.ts";
import type { ExecMessage } from "../messages.ts";
import { offload, resolvePayload } from "../payloads.ts";
import type { Runtime } from "../runtime.ts";
import { putOnce, transactWrite, updateOrRead } from "./io.ts";
import { notCancelled } from "./results.ts";
import { readRun } from "./runs.ts";
import type { TerminalStatus } from "./table.ts";
import { expiry, runKey } from "./table.ts";

export interface CallbackItem {
  pk: string;
  sk: string;
  /** The callback's action: its parent and call id. */
  parent: string;
  id: string;
  /** Its exec message, once its first exec ran. */
  x?: string;
  done?: TerminalStatus;
  /** `formatOutcome` of how it ended, or a payload reference. */
  o?: string;
  at?: number;
}

export const callbackKey = (run: string, secret: string) => ({ pk: `S#${run}`, sk: `K#${secret}` });

/** Puts per round: the puts of one round go out together. */
const PARALLEL = 25;

/**
 * Registers the callbacks among a suspension's new calls (once: a redelivered suspension finds them).
 * Called before the suspension's commit, so a callback is known before any child can hand its id out.
 */
export async function registerCallbacks(
  rt: Runtime,
  run: string,
  parent: string,
  calls: readonly CallRecord[],
  expiresAt: number,
): Promise<void> {
  const items = calls.flatMap((c) => {
    const w = c.task === CALLBACK_TASK ? durableWaitOf(c.task, c.args) : undefined;
    if (w?.kind !== "callback") return [];
    const item: CallbackItem & { expiresAt: number } = {
      ...callbackKey(run, w.secret),
      parent,
      id: c.id,
      expiresAt,
    };
    return [item as unknown as Record<string, unknown>];
  });
  for (let i = 0; i < items.length; i += PARALLEL)
    await Promise.all(items.slice(i, i + PARALLEL).map((item) => putOnce(rt, item)));
}

/** Attaches the callback's exec message (its first exec); returns the item as it is now. */
export async function attachExec(
  rt: Runtime,
  m: ExecMessage,
  secret: string,
): Promise<CallbackItem | undefined> {
  // A failed condition means no item: updateOrRead then returns nothing.
  return (await updateOrRead(rt, {
    Key: callbackKey(m.run, secret),
    UpdateExpression: "SET x = if_not_exists(x, :x)",
    ConditionExpression: "attribute_exists(pk)",
    ExpressionAttributeValues: { ":x": JSON.stringify({ ...m, notBefore: undefined }) },
  })) as CallbackItem | undefined;
}

/** Times a callback out unless a completion got there first; returns the item as it is now. */
export async function timeOutCallback(
  rt: Runtime,
  key: { pk: string; sk: string },
  outcome: Outcome,
): Promise<CallbackItem | undefined> {
  return (await updateOrRead(rt, {
    Key: { pk: key.pk, sk: key.sk },
    UpdateExpression: "SET done = :d, o = :o, #at = :at",
    ConditionExpression: "attribute_exists(pk) AND attribute_not_exists(done)",
    ExpressionAttributeNames: { "#at": "at" },
    ExpressionAttributeValues: { ":d": "TIMED_OUT", ":o": formatOutcome(outcome), ":at": rt.now() },
  })) as CallbackItem | undefined;
}

export async function readCallback(
  rt: Runtime,
  run: string,
  secret: string,
): Promise<CallbackItem | undefined> {
  const out = await rt.doc.send(
    new GetCommand({ TableName: rt.config.table, Key: callbackKey(run, secret), ConsistentRead: true }),
  );
  return out.Item as CallbackItem | undefined;
}

/** The outcome a callback ended with. */
export async function callbackOutcome(rt: Runtime, item: CallbackItem): Promise<Outcome> {
  return parseOutcome(`callback ${item.sk}`, await resolvePayload(rt.payloads, item.o!));
}

/**
 * A completer's write (see the top of this file): the first completion of a callback that waits,
 * in a run that runs. Anything else is the error that says which.
 */
export async function completeCallbackItem(
  rt: Runtime,
  run: string,
  secret: string,
  outcome: Outcome,
): Promise<void> {
  const id = shownId(run, secret);
  const item = await readCallback(rt, run, secret);
  if (!item) {
    const status = (await readRun(rt, run))?.status;
    if (status === undefined)
      throw new UnknownCallbackError(
        `no run ${run} (not started yet, expired, or another stack): callback ${id} is unknown`,
      );
    if (status !== "RUNNING")
      throw new RunEndedError(`run ${run} has ended (${status}): callback ${id} cannot be completed`);
    throw new UnknownCallbackError(
      `run ${run} has no callback ${id}: check the id (the whole string cb.id gave)`,
      {
        details: { running: true },
      },
    );
  }
  if (item.done !== undefined) throw new CallbackCompletedError(endedText(item.done, item.at, id));
  const body = await offload(rt.payloads, `${run}/callback-${secret}`, formatOutcome(outcome));
  const now = rt.now();
  const cancelled = await transactWrite(rt, [
    {
      Update: {
        TableName: rt.config.table,
        Key: callbackKey(run, secret),
        UpdateExpression: "SET done = :d, o = :o, #at = :at, expiresAt = :x",
        // Completed once: the first completion, or the timeout, wins.
        ConditionExpression: "attribute_exists(pk) AND attribute_not_exists(done)",
        ExpressionAttributeNames: { "#at": "at" },
        ExpressionAttributeValues: {
          ":d": outcome.ok ? "SUCCEEDED" : "FAILED",
          ":o": body,
          ":at": now,
          ":x": expiry(now, rt.config.retentionDays, 7),
        },
      },
    },
    {
      // Its run still runs.
      ConditionCheck: {
        TableName: rt.config.table,
        Key: runKey(run),
        ConditionExpression: "#status = :running",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: { ":running": "RUNNING" },
      },
    },
    // Its wait was not cancelled.
    notCancelled(rt, item.parent, item.id),
  ]);
  if (!cancelled) return;
  const { codes, error: e } = cancelled;
  const failed = (i: number) => codes[i] === "ConditionalCheckFailed";
  if (failed(0)) {
    const now = await readCallback(rt, run, secret);
    throw new CallbackCompletedError(endedText(now?.done, now?.at, id), { cause: e });
  }
  if (failed(1)) {
    const status = (await readRun(rt, run))?.status ?? "expired";
    throw new RunEndedError(`run ${run} has ended (${status}): callback ${id} cannot be completed`, {
      cause: e,
    });
  }
  if (failed(2)) throw new CallbackCompletedError(endedText("CANCELLED", undefined, id), { cause: e });
  throw e;
}
