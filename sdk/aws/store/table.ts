/**
 * The single-table design (docs/aws.md): key builders and the shapes of every item. The table has
 * `pk`/`sk`, one index `gsi1` (`gsi1pk`/`gsi1sk`, runs by creation time) and TTL on `expiresAt`.
 *
 * | item          | pk                     | sk                 | written by                      |
 * |---------------|------------------------|--------------------|---------------------------------|
 * | run           | `R#<run>`              | `RUN`              | coordinator (start), executor   |
 * | counter       | `A#<action>`           | `CNT`              | executor (epoch), coordinator   |
 * | self          | `A#<action>`           | `SELF`             | executor, at first suspension   |
 * | call chunk    | `A#<action>`           | `C#<epoch>#<n>`    | executor, per suspension        |
 * | traces        | `A#<action>`           | `T#<epoch>`        | executor, per suspension        |
 * | window part   | `A#<action>`           | `W#<key>#<part>`   | executor; advanced by coordinator |
 * | child result  | `O#<parent>#<shard>`   | `<child>`          | executor / coordinator (timeout) |
 * | cache entry   | `K#<cache key>`        | `CACHE`            | executor                        |
 * | failure       | `M#<SQS message id>`   | `ERR`              | a handler failing a delivery    |
 */
import { createHash } from "node:crypto";

/** Key and index names: the contract between this file, the CDK stack and the handlers. */
export const TABLE_SCHEMA = {
  partitionKey: "pk",
  sortKey: "sk",
  /**
   * Runs by creation time, for `aloft runs`: only what a run row shows is projected, so the writes
   * a run item takes while it runs (replay counts, attempts, the start mark) cost no index write.
   */
  gsi1: {
    name: "gsi1",
    partitionKey: "gsi1pk",
    sortKey: "gsi1sk",
    projected: ["run", "task", "status", "created", "ended"],
  },
  ttlAttribute: "expiresAt",
} as const;

/**
 * The run index (gsi1) is sharded: one partition takes ≈1,000 writes/s, and a run writes its index
 * entry when it starts and when it ends, so one `RUNS` key capped run starts and ends near 500/s.
 * A running run's entry is under `LIVE#<n>` (what the reconciler reads: running runs only), an
 * ended one's under `RUNS#<n>`, n = a stable hash of the run id mod RUN_INDEX_SHARDS. Runs indexed
 * before sharding sit under LEGACY_RUN_INDEX until they end (their end moves them) or expire.
 */
export const RUN_INDEX_SHARDS = 16;
export const LEGACY_RUN_INDEX = "RUNS";
export function runIndexShard(run: string): number {
  return createHash("sha1").update(run).digest()[0]! % RUN_INDEX_SHARDS;
}
export const liveIndexPk = (shard: number) => `LIVE#${shard}`;
export const endedIndexPk = (shard: number) => `RUNS#${shard}`;
/** Every index partition a listing of runs reads: live, ended, and the pre-sharding one. */
export const allRunIndexPks = (): string[] => [
  ...Array.from({ length: RUN_INDEX_SHARDS }, (_, s) => liveIndexPk(s)),
  ...Array.from({ length: RUN_INDEX_SHARDS }, (_, s) => endedIndexPk(s)),
  LEGACY_RUN_INDEX,
];

/** Child results of one parent are spread over this many partitions (≈1,000 writes/s each). */
export const RESULT_SHARDS = 8;
/** Call records per chunk item (≤ 100 × 3,000 bytes of inline arguments: under 400 KB, history.ts). */
export const CHUNK_CALLS = 100;
/** Dynamo numbers cannot be Infinity: "never by counting" is this. */
export const NEVER = 1_000_000_000;

export const runKey = (run: string) => ({ pk: `R#${run}`, sk: "RUN" });
export const counterKey = (action: string) => ({ pk: `A#${action}`, sk: "CNT" });
export const selfKey = (action: string) => ({ pk: `A#${action}`, sk: "SELF" });
export const actionPk = (action: string) => `A#${action}`;
export const chunkSk = (epoch: number, n: number) => `C#${pad(epoch, 6)}#${pad(n, 5)}`;
export const traceSk = (epoch: number) => `T#${pad(epoch, 6)}`;
/** A window part, named `<map window key>#<part>`. */
export const windowKey = (action: string, name: string) => ({ pk: `A#${action}`, sk: `W#${name}` });
export const cacheItemKey = (key: string) => ({ pk: `K#${key}`, sk: "CACHE" });
/** The last error of a failed delivery of SQS message `id` (lambdas/failures.ts). */
export const failureKey = (messageId: string) => ({ pk: `M#${messageId}`, sk: "ERR" });

export function shardOf(child: string): number {
  return createHash("sha1").update(child).digest()[0]! % RESULT_SHARDS;
}
export const resultPk = (parent: string, shard: number) => `O#${parent}#${shard}`;
export const resultKey = (parent: string, child: string) => ({
  pk: resultPk(parent, shardOf(child)),
  sk: child,
});

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

/** Terminal states of a run or action. */
import type { TerminalStatus, Twin } from "../../core/history.ts";
import type { CallSettings } from "../../core/task-def.ts";
export { TERMINAL } from "../../core/history.ts";
export type { TerminalStatus };
export type RunStatusValue = "RUNNING" | TerminalStatus;

export interface RunItem {
  pk: string;
  sk: "RUN";
  run: string;
  task: string;
  /** Serialised argument list, or a payload reference (`s3://...`). */
  args: string;
  status: RunStatusValue;
  created: number;
  ended?: number;
  /** `formatOutcome(...)` of the root, or a payload reference. */
  outcome?: string;
  /** Attempt of the root action that may write the outcome. */
  attempt?: number;
  /** The root's exec message was sent (so a redelivered start does not send it again). */
  started?: boolean;
  startedAt?: number;
  /** A recovery (docs/recover.md): the runs it recovers, newest first. */
  rec?: string[];
  /** The recoveries started from this run, oldest first. */
  recoveries?: string[];
  /** The reconciler's last look at this run (lambdas/reconcile.ts). */
  rc?: { fp: string; at: number; since: number; nudges?: number };
  /** The release token of the message whose delivery moved the root to its current attempt. */
  rb?: number;
  gsi1pk: string;
  gsi1sk: string;
  expiresAt?: number;
}

/** Counter state of a parent: S suspended (counting), R resume sent or in progress, E ended. */
export type CounterState = "S" | "R" | "E";

/**
 * Who ended an action's counter: `self` (its body ended; a crash before its outcome is finished by
 * its own redelivery, which replays to the same end) or `other` (its deadline check, a cancel, its
 * parent's end: the ender writes the outcome, and its redelivery does after a crash).
 */
export type EndedBy = "self" | "other";

/**
 * The small, hot item of a parent. `co`/`ce` count child completions (ok/err) ever reported, with
 * duplicates; `bo`/`be` are the counts read before the replay that began this epoch read history.
 * The parent may progress once (co-bo, ce-be) passes the thresholds `D`/`B` (see trigger.ts).
 */
/**
 * A parent's counter. An action ended before its first suspension has a mark only (`st` = E, no
 * epoch): counters.ts endCounter.
 */
export interface CounterItem {
  pk: string;
  sk: "CNT";
  run: string;
  epoch: number;
  st: CounterState;
  /** Children's completions counted so far: succeeded (`co`) and failed (`ce`), over every epoch. */
  co: number;
  ce: number;
  /** `co` and `ce` as the epoch's replay read them: its wait has seen those (see sinceCommit). */
  bo: number;
  be: number;
  /** The epoch's resume thresholds (store/trigger.ts): settlements with a failure, successes without. */
  D: number;
  B: number;
  /** Who ended it (st = E) first: its own finish, or another (a deadline check, a cancel, its parent). */
  eb?: EndedBy;
  /** Epoch whose resume message was sent. */
  sent?: number;
  /** Who moved the counter to R (a release token of its message), and when (ms). */
  rby?: number;
  rat?: number;
  /** Epoch whose child calls were all sent. */
  disp?: number;
  /** How many calls the epoch recorded (for a redispatch in slices). */
  nc?: number;
  /**
   * When the epoch was committed: its durable waits' dispatch time (ExecMessage.dw), the same for
   * every dispatch of them. Absent on counters committed before it was recorded.
   */
  ct?: number;
  /** A replay of `leaseEpoch` holds the parent until `lease` (ms): the replay `leaseBy` (claimReplay). */
  lease?: number;
  leaseEpoch?: number;
  leaseBy?: string;
  /** Replays claimed (after the first execution). */
  rp?: number;
  /** The one window part this counter hosts (state/windows.ts), named `@<key>#0`. */
  win?: Omit<WindowItem, "pk" | "sk">;
  /**
   * The parent has cancelled children (`future.cancel()`, a map's completion rules): a child's
   * first exec reads its own result first, and one cancelled before it started never starts.
   */
  cx?: boolean;
  expiresAt?: number;
}

/** What the coordinator needs to resume a parent (its own exec message, minus the epoch). */
export interface SelfItem {
  pk: string;
  sk: "SELF";
  run: string;
  id: string;
  parent: string | null;
  task: string;
  group: string;
  /** The window slot it holds as an item of its own parent's windowed map. */
  window?: string;
  ws?: number;
  wq?: number;
  args: string;
  attempt: number;
  /** Its call site's override (task.override), so resumes run where and how its call asked. */
  o?: CallSettings;
  /** In a recovered run: its twins in the source runs, for its calls' (sdk/core/recover.ts). */
  tw?: Twin[];
  /** When the attempt's first execution began (its startedAt in the status tree). */
  startedAt?: number;
  expiresAt?: number;
}

/** One part of a map window (state/windows.ts): its slots and how far it has let items out. */
export interface WindowItem {
  pk: string;
  sk: string;
  /** `<map window key>#<part>`: the sk without `W#`, as exec and done messages name it. */
  name: string;
  key: string;
  part: number;
  /** Parts of the window; item i of the map belongs to part i % parts. */
  parts: number;
  /** Items of the whole map. */
  size: number;
  /** Slots of this part: its share of the map's concurrency. */
  limit: number;
  /** Epoch whose call chunks hold the map's calls, and the position of item 0 in that epoch's list. */
  epoch: number;
  offset: number;
  /** The position (in this part) of the item occupying each slot; past the end: retired. */
  slots: number[];
  /** Per slot: the token of the message whose completion let the occupant in (-1: the first). */
  pend: number[];
  /** Positions given a slot so far (grows with every committed release). */
  upto: number;
  expiresAt?: number;
}

export interface ResultItem {
  pk: string;
  sk: string;
  status?: TerminalStatus;
  outcome?: string;
  attempt?: number;
  startedAt?: number;
  ended?: number;
  cached?: boolean;
  /** A recovery reused the outcome this source run recorded (docs/recover.md). */
  reused?: string;
  /** The child made calls of its own. */
  kids?: boolean;
  /**
   * The release token of the SQS message whose delivery wrote the outcome: a delivery of the same
   * message that lost the write reports it (lambdas/exec/untold.ts).
   */
  by?: number;
  /** The release token of the message whose delivery moved it to its current attempt (bumpAttempt). */
  rb?: number;
  expiresAt?: number;
}

/**
 * A new run item, listed by creation time in gsi1; `failed` (an outcome) creates it ended, to
 * expire after `retentionDays`.
 */
export function newRunItem(
  r: { run: string; task: string; args: string; created: number; rec?: string[] },
  failed?: { outcome: string; now: number; retentionDays: number },
): RunItem {
  return {
    ...runKey(r.run),
    sk: "RUN",
    ...r,
    status: failed ? "FAILED" : "RUNNING",
    gsi1pk: (failed ? endedIndexPk : liveIndexPk)(runIndexShard(r.run)),
    gsi1sk: `${String(r.created).padStart(15, "0")}#${r.run}`,
    ...(failed
      ? { outcome: failed.outcome, ended: failed.now, expiresAt: expiry(failed.now, failed.retentionDays) }
      : {}),
  };
}

/** Seconds since the epoch at which DynamoDB may delete an item. */
export function expiry(nowMs: number, retentionDays: number, horizonDays = 0): number {
  return Math.floor(nowMs / 1000) + Math.round((retentionDays + horizonDays) * 86_400);
}

/** Completions counted since the epoch's replay read the counter: what its wait has not yet seen. */
export function sinceCommit(c: Pick<CounterItem, "co" | "ce" | "bo" | "be">): { ok: number; err: number } {
  return { ok: c.co - c.bo, err: c.ce - c.be };
}
