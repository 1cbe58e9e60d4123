/**
 * Signals and signal waits in the table (docs/aws.md, "Sleep and signals"). One partition per run:
 *
 * | item   | pk       | sk                              | written by                              |
 * |--------|----------|---------------------------------|-----------------------------------------|
 * | signal | `S#<run>`| `N#<name hash>#<seq>`           | the sender (AloftClient.signal)         |
 * | wait   | `S#<run>`| `W#<name hash>#<at>#<pos>#<id>` | its dispatcher, before sending its exec |
 *
 * A signal's `seq` comes from one conditional update of the run item (`sq`), which is also the
 * check that the run is still running. A signal is paired with a wait by one transaction:
 *
 *   signal.by   := wait id     if the signal has no `by`      (consumed once)
 *   wait.got    := signal sk   if the wait has no `got`       (satisfied once; `got` = "timeout" when timed out)
 *   result item of the wait    has no outcome                 (not cancelled, not ended)
 *
 * so under duplicate deliveries and concurrent matchers a signal goes to exactly one wait. The
 * wait's outcome is then written as any child's (store/results.ts), and both items are deleted: a
 * partition holds only what is still open (reads stay proportional to that, not to every signal a
 * run ever received). A crash after the pairing and before the outcome leaves `got` and `by` set,
 * and whoever looks next (a redelivered exec, a redelivered signal message, the next matcher)
 * finishes it from the record.
 */
import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { RunEndedError } from "../../errors.ts";
import { digest } from "../../serde.ts";
import type { ExecMessage } from "../messages.ts";
import type { Payload } from "../../serde.ts";
import { offload, resolvePayload } from "../payloads.ts";
import { isConditionFailed, oldItem, transactWrite, updateOrRead } from "./io.ts";
import { notCancelled } from "./results.ts";
import type { Runtime } from "../runtime.ts";
import { expiry, runKey } from "./table.ts";

/** `got` of a wait that timed out. */
export const TIMED_OUT = "timeout";

export interface WaitItem {
  pk: string;
  sk: string;
  /** The wait's exec message: what its outcome is written and reported with. */
  x: string;
  name: string;
  got?: string;
}

export interface SignalItem {
  pk: string;
  sk: string;
  payload: string;
  /** The sort key of the wait that consumed it. */
  by?: string;
}

const pad = (n: number, w: number): string => String(n).padStart(w, "0");
/** Names go into sort keys hashed: a name may hold `#`, and must not be a prefix of another's keys. */
/** A signal name in a sort key: fixed length, whatever characters the name holds. */
const nameKey = (name: string): string => digest(name);
const signalPk = (run: string): string => `S#${run}`;

export function waitKey(m: Pick<ExecMessage, "run" | "id" | "dw">, name: string): { pk: string; sk: string } {
  const at = m.dw?.at ?? 0;
  const pos = m.dw?.pos ?? 0;
  return { pk: signalPk(m.run), sk: `W#${nameKey(name)}#${pad(at, 15)}#${pad(pos, 6)}#${m.id}` };
}

/**
 * Stores signal `name` for a running run: the run item's `sq` counts signals (in send order), and
 * its condition refuses a run that ended. Returns the signal's sequence number.
 */
export async function storeSignal(rt: Runtime, run: string, name: string, payload: Payload): Promise<number> {
  let seq: number;
  try {
    const out = await rt.doc.send(
      new UpdateCommand({
        TableName: rt.config.table,
        Key: runKey(run),
        UpdateExpression: "SET sq = if_not_exists(sq, :zero) + :one",
        ConditionExpression: "#status = :running",
        ExpressionAttributeNames: { "#status": "status" },
        ExpressionAttributeValues: { ":zero": 0, ":one": 1, ":running": "RUNNING" },
        ReturnValues: "UPDATED_NEW",
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      }),
    );
    seq = out.Attributes!["sq"] as number;
  } catch (e) {
    if (!isConditionFailed(e)) throw e;
    const status = oldItem(e)?.["status"];
    throw new RunEndedError(
      status === undefined
        ? `no run ${run} (not started yet, expired, or another stack): signal ${JSON.stringify(name)} was not sent`
        : `run ${run} has ended (${String(status)}): signal ${JSON.stringify(name)} was not sent, since no wait can take it`,
      { cause: e },
    );
  }
  const now = rt.now();
  const item: SignalItem & { name: string; sent: number; expiresAt: number } = {
    pk: signalPk(run),
    sk: `N#${nameKey(name)}#${pad(seq, 12)}`,
    name,
    payload: await offload(rt.payloads, `${run}/signal-${seq}`, payload),
    sent: now,
    expiresAt: expiry(now, rt.config.retentionDays, 7),
  };
  await rt.doc.send(new PutCommand({ TableName: rt.config.table, Item: item }));
  return seq;
}

/** Records a wait (once: a redispatch finds the first record, with `got` if it ended). */
export async function registerWait(rt: Runtime, m: ExecMessage, name: string): Promise<WaitItem> {
  const item: WaitItem & { expiresAt: number } = {
    ...waitKey(m, name),
    x: JSON.stringify(m),
    name,
    expiresAt: expiry(rt.now(), rt.config.retentionDays, 7),
  };
  try {
    await rt.doc.send(
      new PutCommand({
        TableName: rt.config.table,
        Item: item,
        ConditionExpression: "attribute_not_exists(pk)",
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      }),
    );
    return item;
  } catch (e) {
    if (!isConditionFailed(e)) throw e;
    return (oldItem(e) as WaitItem | undefined) ?? item;
  }
}

/** The first `limit` items of a run's signal partition under `prefix`, in key order (consistent). */
async function firstOf(
  rt: Runtime,
  run: string,
  prefix: string,
  limit: number,
): Promise<Record<string, unknown>[]> {
  const out = await rt.doc.send(
    new QueryCommand({
      TableName: rt.config.table,
      KeyConditionExpression: "pk = :pk AND begins_with(sk, :p)",
      ExpressionAttributeValues: { ":pk": signalPk(run), ":p": prefix },
      ConsistentRead: true,
      Limit: limit,
    }),
  );
  return out.Items ?? [];
}

/** The first `limit` waits of `name` still recorded (open, or over and not yet cleared), in call order. */
export async function waitsOf(rt: Runtime, run: string, name: string, limit: number): Promise<WaitItem[]> {
  return (await firstOf(rt, run, `W#${nameKey(name)}#`, limit)) as unknown as WaitItem[];
}

/** The first `limit` signals of `name` still recorded (unconsumed, or consumed and not yet cleared), in send order. */
export async function signalsOf(
  rt: Runtime,
  run: string,
  name: string,
  limit: number,
): Promise<SignalItem[]> {
  return (await firstOf(rt, run, `N#${nameKey(name)}#`, limit)) as unknown as SignalItem[];
}

/** A wait by its sort key (the `by` of the signal it consumed). */
export async function readWait(rt: Runtime, run: string, sk: string): Promise<WaitItem | undefined> {
  const out = await rt.doc.send(
    new GetCommand({ TableName: rt.config.table, Key: { pk: signalPk(run), sk }, ConsistentRead: true }),
  );
  return out.Item as WaitItem | undefined;
}

/** The payload of the signal a wait took. */
export async function signalPayload(rt: Runtime, run: string, sk: string): Promise<Payload> {
  const out = await rt.doc.send(
    new GetCommand({ TableName: rt.config.table, Key: { pk: signalPk(run), sk }, ConsistentRead: true }),
  );
  const item = out.Item as SignalItem | undefined;
  if (!item) throw new Error(`signal ${sk} of run ${run} is missing (expired?)`);
  return resolvePayload(rt.payloads, item.payload);
}

/**
 * Pairs a signal with a wait in one transaction (see the top of this file). `taken`: the signal or
 * the wait was paired by someone else meanwhile (look again); `ended`: the wait's action ended
 * (cancelled, or its run ended), so the wait is dropped.
 */
export async function pair(rt: Runtime, w: WaitItem, s: SignalItem): Promise<"paired" | "taken" | "ended"> {
  const m = JSON.parse(w.x) as ExecMessage;
  const cancelled = await transactWrite(rt, [
    {
      Update: {
        TableName: rt.config.table,
        Key: { pk: s.pk, sk: s.sk },
        UpdateExpression: "SET #by = :w",
        ConditionExpression: "attribute_exists(pk) AND attribute_not_exists(#by)",
        ExpressionAttributeNames: { "#by": "by" },
        ExpressionAttributeValues: { ":w": w.sk },
      },
    },
    {
      Update: {
        TableName: rt.config.table,
        Key: { pk: w.pk, sk: w.sk },
        UpdateExpression: "SET got = :s",
        ConditionExpression: "attribute_exists(pk) AND attribute_not_exists(got)",
        ExpressionAttributeValues: { ":s": s.sk },
      },
    },
    notCancelled(rt, m.parent!, m.id),
  ]);
  if (!cancelled) return "paired";
  return cancelled.codes[2] === "ConditionalCheckFailed" ? "ended" : "taken";
}

/** Marks a wait timed out unless a signal got to it first; returns the wait as it is now. */
export async function timeOut(rt: Runtime, w: Pick<WaitItem, "pk" | "sk">): Promise<WaitItem | undefined> {
  return (await updateOrRead(rt, {
    Key: { pk: w.pk, sk: w.sk },
    UpdateExpression: "SET got = :t",
    ConditionExpression: "attribute_exists(pk) AND attribute_not_exists(got)",
    ExpressionAttributeValues: { ":t": TIMED_OUT },
  })) as WaitItem | undefined;
}

/** Clears a wait or a signal whose part is over (the wait's outcome is written). */
export async function dropItem(rt: Runtime, key: { pk: string; sk: string }): Promise<void> {
  await rt.doc.send(new DeleteCommand({ TableName: rt.config.table, Key: { pk: key.pk, sk: key.sk } }));
}

/** The key of the signal a wait took (its `got`). */
export function signalKey(run: string, sk: string): { pk: string; sk: string } {
  return { pk: signalPk(run), sk };
}
