/**
 * Map windows: at most `limit` children of a `map` in flight, exactly — under duplicate and late
 * completions, two coordinators advancing the same window at once, and crashes anywhere.
 *
 * A window is a list of slots. Slot s holds the position (in input order) of the one item that
 * occupies it; a position past the map's end means the slot is retired. Exec and done messages of
 * an item carry its slot and position. A completion frees its slot and hands it to the next
 * position, in ONE conditional UpdateItem per batch of completions:
 *
 *   SET slots[s] = upto + :j, pend[s] = :t, ..., upto = upto + :k    IF slots[s] = :q AND ...
 *
 * `slots[s] = :q` is the per-child "released" flag: once the slot has moved on, a duplicate or late
 * completion of the item (a second delivery of its exec, a resent done, a retried coordinator batch)
 * finds it no longer there and frees nothing. Positions are handed out by DynamoDB itself
 * (`upto + :j`, evaluated on the item as it was), so two coordinators releasing different slots of
 * one window never conflict, and two releasing the same slot cannot both succeed. Every position is
 * given to one slot once; the distinct items ever let out are therefore at most `limit` + the items
 * whose slot was released, and each release is of an item that completed.
 *
 * Commit, then send: the commit marks each new occupant pending with a token of the message that
 * carried the completion (`pend[s]` = token of that SQS message id; SQS keeps a message's id across
 * its redeliveries). A crash between commit and send leaves the mark: the redelivered message finds
 * its completion's slot moved on with `pend[s]` naming it, and sends the occupant (a send that did
 * happen is repeated: a duplicate exec of the same item, recorded once). Any other message carrying
 * the same completion (a duplicate done, a late timeout check) finds another token and sends
 * nothing, so duplicates do not cascade down a slot — with no second write to clear the mark.
 *
 * Items never grow with the limit beyond SLOTS_PER_PART slots: a larger window is split into parts,
 * item i of the map belonging to part i % parts with position ⌊i / parts⌋ in it; each part is a
 * window over its own items and the parts' limits add up to the map's. A map whose limit is at
 * least its size has no window at all.
 */
import { createHash } from "node:crypto";
import { PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { CallRecord } from "../../sdk/core/history.ts";
import { execOf, sendExecs } from "../dispatch.ts";
import { isConditionFailed, oldItem } from "../runtime.ts";
import type { Runtime } from "../runtime.ts";
import { readCalls } from "./history.ts";
import type { WindowItem } from "./table.ts";
import { windowKey } from "./table.ts";

/** Slots per part: two short numbers a slot keep a part item under 1 KB (one write unit). */
export const SLOTS_PER_PART = 64;
/** Completions per conditional update (expressions are limited to 4 KB). */
const RELEASES_PER_UPDATE = 40;
/** `pend[s]` of a slot whose first occupant is sent with the commit that creates the window. */
const SENT = -1;

/** The token a release marks its slot with: a number from the delivering message's id (1..2^31-1). */
export function releaseToken(messageId: string): number {
  return createHash("sha1").update(messageId).digest().readUInt32BE(0) >>> 1 || 1;
}

/** How many parts a window of `limit` slots is split into. */
export const partsFor = (limit: number): number => Math.ceil(limit / SLOTS_PER_PART);

/** The name of the part of window `key` that item `index` belongs to (`<key>#<part>`). */
export function windowName(key: string, index: number, limit: number): string {
  return `${key}#${index % partsFor(limit)}`;
}

/** What an exec message (and its done) carries for an item of a windowed map. */
export interface WindowTag {
  /** The window part's name. */
  window: string;
  /** The slot the item holds, and its position in the part. */
  ws: number;
  wq: number;
}

export { tagFrom } from "../messages.ts";

type Part = Pick<WindowItem, "name" | "part" | "parts" | "size" | "slots">;

/** The map index of position `q` of a part (≥ size: no such item). */
const itemAt = (w: Pick<WindowItem, "part" | "parts">, q: number): number => q * w.parts + w.part;

/** The items holding a slot of `w` now, with their tags. */
export function occupants(w: Part): Map<number, WindowTag> {
  const out = new Map<number, WindowTag>();
  w.slots.forEach((q, s) => {
    const i = itemAt(w, q);
    if (i < w.size) out.set(i, { window: w.name, ws: s, wq: q });
  });
  return out;
}

/** Whether item `index` has been given a slot (let out) in this part's state. */
export function isAssigned(w: Pick<WindowItem, "parts" | "upto">, index: number): boolean {
  return Math.floor(index / w.parts) < w.upto;
}

/**
 * The window parts of a suspension's new calls, each with its first positions in its slots.
 * `stored` is the epoch's call list in order (a map's items are contiguous in it).
 */
export function planWindows(stored: readonly CallRecord[], epoch: number): Omit<WindowItem, "pk" | "sk">[] {
  const sizes = new Map<string, number>();
  for (const c of stored) if (c.window) sizes.set(c.window.key, (sizes.get(c.window.key) ?? 0) + 1);
  const out: Omit<WindowItem, "pk" | "sk">[] = [];
  const seen = new Set<string>();
  stored.forEach((c, pos) => {
    if (!c.window || seen.has(c.window.key)) return;
    seen.add(c.window.key);
    const size = sizes.get(c.window.key)!;
    const limit = c.window.limit;
    if (limit >= size) return;
    const parts = partsFor(limit);
    for (let part = 0; part < parts; part++) {
      // An even share of the limit per part (the shares add up to it).
      const share = Math.floor(limit / parts) + (part < limit % parts ? 1 : 0);
      out.push({
        name: `${c.window.key}#${part}`,
        key: c.window.key,
        part,
        parts,
        size,
        limit: share,
        epoch,
        offset: pos - c.window.index,
        slots: Array.from({ length: share }, (_, q) => q),
        pend: Array.from({ length: share }, () => SENT),
        upto: share,
      });
    }
  });
  return out;
}

/** Creates a part; a concurrent replay of the same epoch creating it too is a no-op. */
export async function createWindowPart(
  rt: Runtime,
  action: string,
  w: Omit<WindowItem, "pk" | "sk">,
  expiresAt: number,
): Promise<void> {
  try {
    await rt.doc.send(
      new PutCommand({
        TableName: rt.config.table,
        Item: { ...windowKey(action, w.name), ...w, expiresAt },
        ConditionExpression: "attribute_not_exists(pk)", // never reset a window already advancing
      }),
    );
  } catch (e) {
    if (!isConditionFailed(e)) throw e;
  }
}

/** A completion as the window sees it: the slot it held, its position, and its message's token. */
export interface Release {
  ws: number;
  wq: number;
  tok: number;
}

/**
 * Releases the slots of completed items of window part `name` of `parent`, exactly once each, and
 * lets the next items out. Returns the map indices sent (for tests and logs).
 */
export async function releaseSlots(
  rt: Runtime,
  run: string,
  parent: string,
  name: string,
  done: readonly Release[],
): Promise<number[]> {
  // Positions in a slot only grow: of two completions naming one slot, the later occupant's is the
  // live one (an earlier occupant's was released before the later one was even let out).
  const bySlot = new Map<number, Release>();
  for (const d of done) if ((bySlot.get(d.ws)?.wq ?? -1) < d.wq) bySlot.set(d.ws, d);
  const todo = [...bySlot.values()].sort((a, b) => a.wq - b.wq);
  const sent: number[] = [];
  for (let i = 0; i < todo.length; i += RELEASES_PER_UPDATE)
    sent.push(...(await releaseSome(rt, run, parent, name, todo.slice(i, i + RELEASES_PER_UPDATE))));
  return sent;
}

async function releaseSome(
  rt: Runtime,
  run: string,
  parent: string,
  name: string,
  todo: Release[],
): Promise<number[]> {
  const key = windowKey(parent, name);
  for (let round = 0; todo.length; round++) {
    if (round > RELEASES_PER_UPDATE) throw new Error(`window ${name} of ${parent}: releases keep failing`);
    const values: Record<string, unknown> = { ":k": todo.length };
    const set: string[] = [];
    const cond: string[] = [];
    todo.forEach((d, j) => {
      values[`:j${j}`] = j;
      values[`:q${j}`] = d.wq;
      values[`:t${j}`] = d.tok;
      set.push(`slots[${d.ws}] = upto + :j${j}`, `pend[${d.ws}] = :t${j}`);
      cond.push(`slots[${d.ws}] = :q${j}`);
    });
    let w: WindowItem;
    try {
      const out = await rt.doc.send(
        new UpdateCommand({
          TableName: rt.config.table,
          Key: key,
          UpdateExpression: `SET ${set.join(", ")}, upto = upto + :k`,
          // Each slot is freed once, by the item that holds it: a duplicate or late completion
          // finds another position there. New positions come from `upto` as it was (no read).
          ConditionExpression: cond.join(" AND "),
          ExpressionAttributeValues: values,
          ReturnValues: "ALL_NEW",
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        }),
      );
      w = out.Attributes as WindowItem;
    } catch (e) {
      if (!isConditionFailed(e)) throw e;
      const old = oldItem(e) as WindowItem | undefined;
      if (!old) return []; // no window (the parent's state is gone)
      const held = todo.filter((d) => old.slots[d.ws] === d.wq);
      // A completion whose slot moved on, marked by this very message: its earlier delivery committed
      // the move and may have crashed before sending the new occupant. Send it (again, if it was).
      const unsent = todo.filter((d) => old.slots[d.ws] !== d.wq && old.pend[d.ws] === d.tok);
      if (unsent.length) await sendOccupants(rt, run, parent, old, unsent);
      todo = held;
      continue;
    }
    return sendOccupants(rt, run, parent, w, todo);
  }
  return [];
}

/** Sends the occupants of the slots `released` freed. */
async function sendOccupants(
  rt: Runtime,
  run: string,
  parent: string,
  w: WindowItem,
  released: Release[],
): Promise<number[]> {
  const items = released
    .map((d) => ({ d, q: w.slots[d.ws]!, i: itemAt(w, w.slots[d.ws]!) }))
    .filter((x) => x.i < w.size);
  if (!items.length) return [];
  const calls = await readCalls(
    rt,
    parent,
    w.epoch,
    items.map((x) => w.offset + x.i),
  );
  await sendExecs(
    rt,
    calls.map((c, n) => ({ msg: execOf(run, c, { window: w.name, ws: items[n]!.d.ws, wq: items[n]!.q }) })),
  );
  return items.map((x) => x.i);
}
