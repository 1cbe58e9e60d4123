/**
 * The recorded history of one action (one task invocation): the child calls it made, how they
 * ended, and the results of its `trace` calls. Every record carries the format version `v`; a
 * reader refuses records from a newer format rather than misreading them.
 */
import type { SerializedError } from "../errors.ts";
import { HistoryError } from "../errors.ts";
import type { Payload } from "../serde.ts";
import type { CallSettings } from "./task-def.ts";

/** The history format this build writes and reads. */
export const HISTORY_VERSION = 1;

/**
 * The call identity scheme (docs/identity.md) this build derives child ids with, recorded with every
 * call. A replay under another scheme would derive other ids and never find the recorded results,
 * so it fails instead (replay.ts). Bump it with any change to how an id or an inputs digest is made.
 */
export const IDENTITY_VERSION = 1;

/** Identity of an action (a task call). See docs/identity.md. */
export type CallId = string;

/** How an action (or a trace) ended. */
export type Outcome = { ok: true; value: Payload } | { ok: false; error: SerializedError };

/** Where a call's outcome would be in one source run of a recovery: that run, the parent's twin, the twin. */
export type Twin = [run: string, parent: CallId, id: CallId];

/** A child call made by a parent, as dispatched. */
export interface CallRecord {
  v: number;
  id: CallId;
  parent: CallId;
  /** Registered task name, e.g. `data_pipeline.processChunk`. */
  task: string;
  /** Group path ("" for none), e.g. `preprocess/processChunk`. */
  group: string;
  /** Digest of the serialised inputs. */
  digest: string;
  /** Sequence among calls with the same task, group and inputs in this parent. */
  n: number;
  /** Serialised argument list. */
  args: Payload;
  /** Set when the call belongs to a `map` with a concurrency limit. */
  window?: { key: string; index: number; limit: number };
  /** The identity scheme its id was derived with; absent: 1 (records from before it was recorded). */
  idv?: number;
  /** Settings this call site overrides (`task.override`); not part of the identity. */
  settings?: CallSettings;
  /**
   * In a recovered run: where the same call's outcome is in each source run (sdk/core/recover.ts),
   * newest first. Set by the adapters, not part of the identity.
   */
  tw?: Twin[];
}

/** A recorded `trace` result. */
export interface TraceRecord {
  v: number;
  /**
   * `<group>|<name>|<args digest>|<sequence>`; or `combinator:<kind>|<members digest>|<sequence>`
   * for the child that decided a `Promise.race/any` (or an `all`'s rejection), as its index.
   */
  key: string;
  outcome: Outcome;
  /** The traced function returned a promise (so replay returns one too). */
  async?: boolean;
  /** A traced generator function: the outcome holds what it yielded (sdk/trace-generator.ts). */
  gen?: "sync" | "async";
}

/** What a replay needs to know about one action's past. Maps, so a 100k fan-out looks up in O(1). */
export interface History {
  calls: ReadonlyMap<CallId, CallRecord>;
  /** Outcomes of settled children (a subset of `calls`). */
  outcomes: ReadonlyMap<CallId, Outcome>;
  traces: ReadonlyMap<string, TraceRecord>;
  /**
   * `calls` iterates in the order the body made them (as recorded, epoch after epoch), so a replay
   * may match its calls to them by position (calls.ts). Set only by a reader that guarantees it.
   */
  inCallOrder?: boolean;
}

export const emptyHistory = (): History => ({ calls: new Map(), outcomes: new Map(), traces: new Map() });

function fail(what: string, detail: string): never {
  throw new HistoryError(`corrupted history record (${what}): ${detail}`);
}

function checkVersion(what: string, v: unknown): void {
  if (typeof v !== "number" || !Number.isInteger(v)) fail(what, "missing format version");
  if (v > HISTORY_VERSION) {
    throw new HistoryError(
      `history record (${what}) has format v${v}, newer than this Aloft (v${HISTORY_VERSION}); ` +
        `upgrade Aloft to read this run`,
    );
  }
}

function str(what: string, o: Record<string, unknown>, key: string): string {
  const v = o[key];
  if (typeof v !== "string") fail(what, `field ${key} is ${v === undefined ? "missing" : typeof v}`);
  return v;
}

/**
 * The fields of a call a store keeps in columns of their own (the embedded store's actions row),
 * so its stored record need not repeat them (sdk/local/store.ts).
 */
export interface CallColumns {
  id: CallId;
  parent: CallId;
  task: string;
  group: string;
  args: Payload;
  window: CallRecord["window"];
}

/**
 * Parses and validates a stored call record. With `cols`, the fields they hold are taken from them,
 * and the record carries no inputs digest ("": the replay that makes the call again re-makes it).
 */
export function parseCallRecord(json: string, cols?: CallColumns): CallRecord {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch (e) {
    throw new HistoryError(`corrupted history record (call): not JSON`, { cause: e });
  }
  if (!o || typeof o !== "object") fail("call", "not an object");
  checkVersion("call", o["v"]);
  const id = cols ? cols.id : str("call", o, "id");
  const what = `call ${id}`;
  const rec: CallRecord = {
    v: o["v"] as number,
    id,
    parent: cols ? cols.parent : str(what, o, "parent"),
    task: cols ? cols.task : str(what, o, "task"),
    group: cols ? cols.group : str(what, o, "group"),
    digest: cols ? "" : str(what, o, "digest"),
    n: typeof o["n"] === "number" ? o["n"] : fail(what, "field n is not a number"),
    args: cols ? cols.args : str(what, o, "args"),
  };
  const window = cols ? cols.window : o["window"];
  if (window !== undefined) rec.window = window as CallRecord["window"];
  if (o["settings"] !== undefined) {
    if (!o["settings"] || typeof o["settings"] !== "object") fail(what, "field settings is not an object");
    rec.settings = o["settings"] as CallSettings;
  }
  if (o["tw"] !== undefined) {
    if (!Array.isArray(o["tw"])) fail(what, "field tw is not a list");
    rec.tw = o["tw"] as Twin[];
  }
  if (o["idv"] !== undefined)
    rec.idv = Number.isInteger(o["idv"])
      ? (o["idv"] as number)
      : fail(what, "field idv is not a whole number");
  return rec;
}

/** Parses and validates a stored outcome. */
export function parseOutcome(what: string, json: string): Outcome {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch (e) {
    throw new HistoryError(`corrupted history record (${what}): not JSON`, { cause: e });
  }
  if (!o || typeof o !== "object") fail(what, "not an object");
  checkVersion(what, o["v"]);
  if (o["ok"] === true) return { ok: true, value: str(what, o, "value") };
  if (o["ok"] === false) {
    const err = o["error"] as Record<string, unknown> | undefined;
    if (!err || typeof err !== "object" || typeof err["message"] !== "string")
      fail(what, "error is malformed");
    return { ok: false, error: err as unknown as SerializedError };
  }
  return fail(what, "field ok is neither true nor false");
}

/** The stored form of an outcome (with its format version). */
export function formatOutcome(o: Outcome): string {
  // Fields listed, not spread: a spread makes a new hidden class per object (one per child).
  return JSON.stringify(
    o.ok
      ? { v: HISTORY_VERSION, ok: true, value: o.value }
      : { v: HISTORY_VERSION, ok: false, error: o.error },
  );
}

/** The states an action or run ends in, on every engine. */
export type TerminalStatus = "SUCCEEDED" | "FAILED" | "TIMED_OUT" | "CANCELLED";
export const TERMINAL: ReadonlySet<string> = new Set<TerminalStatus>([
  "SUCCEEDED",
  "FAILED",
  "TIMED_OUT",
  "CANCELLED",
]);
