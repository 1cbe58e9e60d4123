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
 * Hosted: a parent's counter item holds its first one-part window that fits beside it in one write
 * unit (`win`, named `@<key>#0`, written by the commit that creates it). Its release also counts the
 * completions — `SET win.slots[s] = win.upto + :j, ... ADD co :ok, ce :err IF st <> :E AND
 * win.name = :w AND win.slots[s] = :q ...` — so a hosted window costs no write beyond the count,
 * and executors make it themselves (lambdas/executor.ts). Which part is hosted depends only on
 * whether the counter ever hosted one, so every replay of an epoch decides alike.
 *
 * Items never grow with the limit beyond SLOTS_PER_PART slots: a larger window is split into parts,
 * item i of the map belonging to part i % parts with position ⌊i / parts⌋ in it; each part is a
 * window over its own items and the parts' limits add up to the map's. A map whose limit is at
 * least its size has no window at all.
 */
import { createHash } from "node:crypto";
import { PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { CallRecord } from "../../core/history.ts";
import type { WindowTag } from "../messages.ts";
import { isConditionFailed, oldItem } from "./io.ts";
import type { Runtime } from "../runtime.ts";
import { addCompletions } from "./counters.ts";
import type { CounterItem, WindowItem } from "./table.ts";
import { NEVER, counterKey, windowKey } from "./table.ts";

/** Slots per part: two short numbers a slot keep a part item under 1 KB (one write unit). */
export const SLOTS_PER_PART = 64;
/** Completions per conditional update (expressions are limited to 4 KB). */
const RELEASES_PER_UPDATE = 40;
/** `pend[s]` of a slot whose first occupant is sent with the commit that creates the window. */
const SENT = -1;

/**
 * Release tokens are 1..MAX_TOKEN. Five digits keep a hosted window small; two messages sharing a
 * token cost at most one duplicate exec of an item (recorded once).
 */
export const MAX_TOKEN = 99_999;

/** The token a release marks its slot with: a number from the delivering message's id. */
export function releaseToken(messageId: string): number {
  return (createHash("sha1").update(messageId).digest().readUInt32BE(0) % MAX_TOKEN) + 1;
}

/** A hosted part's name: the parent's counter item holds it (see "Hosted" above). */
export const isHosted = (name: string): boolean => name.startsWith("@");

/** A part's identity whether hosted or not: `<map window key>#<part>`. */
export const partId = (w: Pick<WindowItem, "key" | "part">): string => `${w.key}#${w.part}`;

/**
 * The size in bytes DynamoDB bills for a hosted part at its largest (every position and token at
 * its widest): a number costs 1 byte per 2 significant digits + 1, a list or map entry 1 more.
 */
function hostedBytes(limit: number, size: number, key: string): number {
  const num = (max: number) => Math.ceil(String(Math.max(1, Math.floor(max))).length / 2) + 1;
  const slots = limit * (1 + num(size + limit)); // positions in `slots`
  const pend = limit * (1 + num(MAX_TOKEN)); // tokens in `pend`
  // Attribute names: `win` and its fields.
  const names = [
    "win",
    "name",
    "key",
    "part",
    "parts",
    "size",
    "limit",
    "epoch",
    "offset",
    "slots",
    "pend",
    "upto",
  ];
  // name and key (strings count in UTF-8 bytes); part, parts, size, limit, upto; epoch and offset
  // (any count of earlier calls).
  const scalars = 2 * (Buffer.byteLength(key) + 3) + 5 * num(size + limit) + 2 * num(NEVER);
  return 3 + slots + pend + names.join("").length + scalars + 2 * names.length;
}

/** Whether a one-part window of `limit` over `size` items fits beside its parent's counter in one write unit. */
export function fitsHosted(limit: number, size: number, key: string): boolean {
  return partsFor(limit) === 1 && hostedBytes(limit, size, key) + COUNTER_BYTES <= WRITE_UNIT;
}

/**
 * A counter item without a hosted window stays under this size (its keys, counts, thresholds,
 * lease and markers at their widest); a hosted part must fit in what is left of one write unit.
 */
const COUNTER_BYTES = 340;
const WRITE_UNIT = 1024;

/** How many parts a window of `limit` slots is split into. */
export const partsFor = (limit: number): number => Math.ceil(limit / SLOTS_PER_PART);

/** The part (its partId) of window `key` that item `index` belongs to. */
export function partOf(key: string, index: number, limit: number): string {
  return `${key}#${index % partsFor(limit)}`;
}

export { tagFrom } from "../messages.ts";
export type { WindowTag } from "../messages.ts";

type Part = Pick<WindowItem, "name" | "part" | "parts" | "size" | "slots">;

/** The map index of position `q` of a part (≥ size: no such item). */
export const itemAt = (w: Pick<WindowItem, "part" | "parts">, q: number): number => q * w.parts + w.part;

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
 * `stored` is the epoch's call list in order (a map's items are contiguous in it). With `host`
 * (the parent's counter has never hosted a part), the first map whose window is one part that fits
 * beside the counter in one write unit is hosted by the counter (named `@<key>#0`).
 */
export function planWindows(
  stored: readonly CallRecord[],
  epoch: number,
  host = false,
): Omit<WindowItem, "pk" | "sk">[] {
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
    const hosted = host && fitsHosted(limit, size, c.window.key);
    if (hosted) host = false;
    for (let part = 0; part < parts; part++) {
      // An even share of the limit per part (the shares add up to it).
      const share = Math.floor(limit / parts) + (part < limit % parts ? 1 : 0);
      out.push({
        name: `${hosted ? "@" : ""}${c.window.key}#${part}`,
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

/** A completion as the window sees it: the slot it held, its position, its message's token. */
export interface Release {
  ws: number;
  wq: number;
  tok: number;
  /** Other tokens that carried the same completion in the batch (any of them may be the mark). */
  also?: number[];
  ok: boolean;
}

/** Completions counted with a hosted release (the batch's others for the same parent). */
export interface Counts {
  ok: number;
  err: number;
}

/**
 * Slots whose next occupants must be sent: `released` moved their slots on in part `w` (as it is
 * after the move). Storage never sends; the caller sends them (lambdas/windows.ts), after the
 * commit — a crash in between leaves `pend` marks from which the redelivery sends them again.
 */
export interface Freed {
  w: WindowItem;
  released: Release[];
}

/**
 * Releases the slots of completed items of window part `name` of `parent`, exactly once each;
 * returns the slots whose next items are to be let out.
 */
export async function releaseSlots(
  rt: Runtime,
  parent: string,
  name: string,
  done: readonly Release[],
): Promise<Freed[]> {
  const freed: Freed[] = [];
  for (const some of chunks(done))
    freed.push(...(await releaseSome(rt, parent, name, some, undefined)).freed);
  return freed;
}

/**
 * Releases completed items of the part the counter of `parent` hosts, and counts them — with
 * `extra`, the batch's other completions for this parent — in the same write: a hosted window costs
 * no write beyond the count. Only items whose slot is released are counted (a duplicate or late
 * completion of a hosted item is not counted twice). Returns the counter after the count, or
 * undefined if the parent is gone or ended (the completions are moot), and the slots freed.
 */
export async function releaseHosted(
  rt: Runtime,
  parent: string,
  name: string,
  done: readonly Release[],
  extra: Counts,
): Promise<{ cnt: CounterItem | undefined; freed: Freed[] }> {
  let cnt: CounterItem | undefined;
  let counts: Counts | undefined = extra;
  const freed: Freed[] = [];
  for (const some of chunks(done)) {
    const r = await releaseSome(rt, parent, name, some, counts);
    freed.push(...r.freed);
    if (r.gone) return { cnt: undefined, freed };
    if (r.counter) {
      cnt = r.counter;
      counts = undefined; // counted once, with the first update that went through
    }
  }
  if (counts) {
    // Every hosted completion was a duplicate: the others still count.
    cnt = await addCompletions(rt, parent, counts.ok, counts.err);
  }
  return { cnt, freed };
}

/** A slot's completions, latest position only, in groups that fit one update expression. */
function chunks(done: readonly Release[]): Release[][] {
  // Positions in a slot only grow: of two completions naming one slot, the later occupant's is the
  // live one (an earlier occupant's was released before the later one was even let out).
  const bySlot = new Map<number, Release>();
  for (const d of done) if ((bySlot.get(d.ws)?.wq ?? -1) < d.wq) bySlot.set(d.ws, d);
  const todo = [...bySlot.values()].sort((a, b) => a.wq - b.wq);
  const out: Release[][] = [];
  for (let i = 0; i < todo.length; i += RELEASES_PER_UPDATE) out.push(todo.slice(i, i + RELEASES_PER_UPDATE));
  return out;
}

interface Released {
  freed: Freed[];
  /** Hosted: the counter after an update that went through (with the counts). */
  counter?: CounterItem;
  /** Hosted: the parent's counter is gone or ended. */
  gone?: boolean;
}

async function releaseSome(
  rt: Runtime,
  parent: string,
  name: string,
  todo: Release[],
  counts: Counts | undefined,
): Promise<Released> {
  const hosted = isHosted(name);
  // A hosted part lives in the counter's `win` map; every path below is relative to it.
  const at = hosted ? "win." : "";
  const key = hosted ? counterKey(parent) : windowKey(parent, name);
  const freed: Freed[] = [];
  for (let round = 0; todo.length; round++) {
    if (round > RELEASES_PER_UPDATE) throw new Error(`window ${name} of ${parent}: releases keep failing`);
    const values: Record<string, unknown> = { ":k": todo.length };
    const set: string[] = [];
    const cond: string[] = [];
    todo.forEach((d, j) => {
      values[`:j${j}`] = j;
      values[`:q${j}`] = d.wq;
      values[`:t${j}`] = d.tok;
      set.push(`${at}slots[${d.ws}] = ${at}upto + :j${j}`, `${at}pend[${d.ws}] = :t${j}`);
      cond.push(`${at}slots[${d.ws}] = :q${j}`);
    });
    let update = `SET ${set.join(", ")}, ${at}upto = ${at}upto + :k`;
    const names: Record<string, string> = {};
    if (hosted) {
      // The counts ride along: the batch's other completions, and these (released only here).
      const ok = (counts?.ok ?? 0) + todo.filter((d) => d.ok).length;
      const err = (counts?.err ?? 0) + todo.filter((d) => !d.ok).length;
      update += " ADD co :ok, ce :err";
      Object.assign(values, { ":ok": ok, ":err": err, ":E": "E", ":name": name });
      names["#n"] = "name";
      // The part is this one, and the parent has not ended (then its windows stop, as on W# items
      // whose completions find the counter ended before they are released).
      cond.unshift("st <> :E", "win.#n = :name");
    }
    let w: WindowItem;
    let after: Record<string, unknown> | undefined;
    try {
      const out = await rt.doc.send(
        new UpdateCommand({
          TableName: rt.config.table,
          Key: key,
          UpdateExpression: update,
          // Each slot is freed once, by the item that holds it: a duplicate or late completion
          // finds another position there. New positions come from `upto` as it was (no read).
          ConditionExpression: cond.join(" AND "),
          ...(hosted ? { ExpressionAttributeNames: names } : {}),
          ExpressionAttributeValues: values,
          ReturnValues: "ALL_NEW",
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        }),
      );
      after = out.Attributes;
      w = (hosted ? after?.["win"] : after) as WindowItem;
    } catch (e) {
      if (!isConditionFailed(e)) throw e;
      const item = oldItem(e);
      if (hosted && (!item || item["st"] === "E")) return { freed, gone: true };
      const old = (hosted ? item?.["win"] : item) as WindowItem | undefined;
      if (!old) return { freed }; // no window (the parent's state is gone)
      if (old.name !== name) throw new Error(`window ${name} of ${parent} is not the one its counter hosts`);
      const held = todo.filter((d) => old.slots[d.ws] === d.wq);
      // A completion whose slot moved on, marked by this very message: its earlier delivery
      // committed the move and may have crashed before sending the new occupant. Send it (again,
      // if it was sent).
      const mine = (d: Release, t: number | undefined) =>
        t === d.tok || (t !== undefined && !!d.also?.includes(t));
      const unsent = todo.filter((d) => old.slots[d.ws] !== d.wq && mine(d, old.pend[d.ws]));
      if (unsent.length) freed.push({ w: old, released: unsent });
      todo = held;
      continue;
    }
    freed.push({ w, released: todo });
    return hosted ? { freed, counter: after as unknown as CounterItem } : { freed };
  }
  return { freed };
}
