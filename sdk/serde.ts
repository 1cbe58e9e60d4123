/**
 * Payloads: task inputs and outputs as JSON text, extended with tagged forms for the values JSON
 * cannot hold (`Date`, `Map`, `Set`, `BigInt`, `Uint8Array`, `undefined`, non-finite numbers).
 * A tagged value is `{"$t": tag, "v": ...}`; a user object that itself has a `$t` key is wrapped
 * as `{"$t":"o","v":{...}}` so decoding is never ambiguous.
 *
 * Anything else (functions, symbols, class instances, cycles) is rejected with a
 * {@link SerializationError} naming where in the value it sits and what type it is.
 */
import { hash } from "node:crypto";
import { SerializationError } from "./errors.ts";

/** A serialised payload: JSON text in the tagged format above. */
export type Payload = string;

const TAG = "$t";

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (typeof v === "function") return `function ${(v as { name?: string }).name || "(anonymous)"}`;
  if (typeof v === "object") return (v as object).constructor?.name ?? "Object (null prototype)";
  return typeof v;
}

function encode(v: unknown, path: string[], seen: Set<object>): unknown {
  switch (typeof v) {
    case "string":
    case "boolean":
      return v;
    case "number":
      return Number.isFinite(v) ? v : { [TAG]: "n", v: String(v) };
    case "undefined":
      return { [TAG]: "u" };
    case "bigint":
      return { [TAG]: "b", v: v.toString() };
    case "object":
      break;
    default:
      throw unserialisable(v, path);
  }
  if (v === null) return null;
  const obj = v as object;
  if (seen.has(obj)) throw new SerializationError(`a cycle at ${at(path)}: payloads must be trees`);
  seen.add(obj);
  try {
    if (Array.isArray(obj)) {
      const out = new Array<unknown>(obj.length);
      for (let i = 0; i < obj.length; i++) {
        path.push(`[${i}]`);
        out[i] = encode(obj[i], path, seen);
        path.pop();
      }
      return out;
    }
    if (obj instanceof Date) return { [TAG]: "d", v: obj.getTime() };
    if (obj instanceof Uint8Array) return { [TAG]: "y", v: Buffer.from(obj).toString("base64") };
    if (obj instanceof Map) {
      const entries: unknown[] = [];
      let i = 0;
      for (const [k, val] of obj) {
        path.push(`<map entry ${i++}>`);
        entries.push([encode(k, path, seen), encode(val, path, seen)]);
        path.pop();
      }
      return { [TAG]: "m", v: entries };
    }
    if (obj instanceof Set) {
      const items: unknown[] = [];
      let i = 0;
      for (const item of obj) {
        path.push(`<set item ${i++}>`);
        items.push(encode(item, path, seen));
        path.pop();
      }
      return { [TAG]: "s", v: items };
    }
    const proto = Object.getPrototypeOf(obj) as object | null;
    if (proto !== Object.prototype && proto !== null) throw unserialisable(obj, path);
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(obj)) {
      path.push(`.${key}`);
      out[key] = encode((obj as Record<string, unknown>)[key], path, seen);
      path.pop();
    }
    return TAG in out ? { [TAG]: "o", v: out } : out;
  } finally {
    seen.delete(obj);
  }
}

function at(path: string[]): string {
  return path.length ? path.join("") : "the top level";
}

function unserialisable(v: unknown, path: string[]): SerializationError {
  return new SerializationError(
    `cannot serialise a ${typeName(v)} at ${at(path)}: task inputs and outputs must be JSON values, ` +
      `Date, Map, Set, BigInt, Uint8Array or undefined`,
  );
}

function decode(v: unknown): unknown {
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map(decode);
  const o = v as Record<string, unknown>;
  const tag = o[TAG];
  if (typeof tag === "string") {
    const inner = o["v"];
    switch (tag) {
      case "u":
        return undefined;
      case "n":
        return Number(inner);
      case "b":
        return BigInt(inner as string);
      case "d":
        // An invalid Date's time is NaN, which JSON writes as null; `new Date(null)` would be the epoch.
        return new Date(inner === null ? NaN : (inner as number));
      case "y":
        return new Uint8Array(Buffer.from(inner as string, "base64"));
      case "m":
        return new Map((inner as [unknown, unknown][]).map(([k, val]) => [decode(k), decode(val)]));
      case "s":
        return new Set((inner as unknown[]).map(decode));
      case "o":
        return decodeObject(inner as Record<string, unknown>);
      default:
        throw new SerializationError(`unknown payload tag ${JSON.stringify(tag)}: written by a newer Aloft?`);
    }
  }
  return decodeObject(o);
}

function decodeObject(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(o)) out[key] = decode(o[key]);
  return out;
}

/**
 * Serialises a value. `what` names it in errors (e.g. `argument 2 of data_pipeline.processChunk`).
 * @example serialize(new Map([["a", 1n]]), "result") // '{"$t":"m","v":[["a",{"$t":"b","v":"1"}]]}'
 */
export function serialize(value: unknown, what = "value"): Payload {
  const flat = flatPayload(value);
  if (flat !== undefined) return flat;
  try {
    return JSON.stringify(encode(value, [], new Set()));
  } catch (e) {
    if (e instanceof SerializationError) {
      throw new SerializationError(`${what}: ${e.message}`, { cause: e });
    }
    throw e;
  }
}

/**
 * A flat value's payload (a string, boolean, finite number or null), the same as {@link serialize}'s,
 * or undefined for any other value: no walk, no allocation beyond JSON's own.
 */
export function flatPayload(value: unknown): Payload | undefined {
  if (typeof value === "string" || typeof value === "boolean") return JSON.stringify(value);
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  if (value === null) return "null";
  return undefined;
}

/** Reverses {@link serialize}. */
export function deserialize(payload: Payload): unknown {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload);
  } catch (e) {
    throw new SerializationError(`payload is not valid JSON (${(e as Error).message})`, { cause: e });
  }
  return decode(parsed);
}

/** A short, stable digest (base64url of SHA-256, 128 bits) used in call identities and cache keys. */
export function digest(...parts: string[]): string {
  return digestList(parts);
}

/**
 * {@link digest} of a list of any length (a spread of a million arguments overflows the stack: a
 * gather of a million children digests its members' ids).
 */
export function digestList(parts: readonly string[]): string {
  // Each part followed by a NUL, hashed as one UTF-8 string: the same bytes as one update per part
  // and NUL, at a third of the cost (a one-shot hash, Node 20.12+). Call identities take four
  // digests per child (two per replay of the parent).
  // The first 22 characters, copied through a scratch buffer (no buffer made per digest): `slice`
  // would keep all 43 alive behind a view of them (96 bytes instead of 40), and call ids live as
  // long as their action, a gather holding N at once.
  const full = hash("sha256", `${parts.join("\u0000")}\u0000`, "base64url");
  DIGEST_SCRATCH.write(full, 0, 22, "latin1");
  return DIGEST_SCRATCH.toString("latin1", 0, 22);
}

/** Where {@link digestList} copies a digest's characters (synchronously: one per thread is enough). */
const DIGEST_SCRATCH = Buffer.allocUnsafe(22);
