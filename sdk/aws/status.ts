/**
 * The status tree of a run on AWS, read from the table: the run item, then each parent's call
 * chunks and result shards (paged Queries), in the same shape as the embedded engine's
 * (sdk/local/status.ts), so the CLI renders both alike; and one page of a parent's children in a
 * group, for `aloft ui --aws` (childrenPage).
 */
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import {
  RESULT_STATE,
  chunkEpoch,
  committedEpoch,
  decodeChunk,
  loadActionItems,
  loadResults,
  readPrefix,
} from "./store/history.ts";
import { batchGet, keyId } from "./store/io.ts";
import { isAssigned, partId, partOf } from "./store/windows.ts";
import type { Runtime } from "./runtime.ts";
import type { CallRecord } from "../core/history.ts";
import { ConfigurationError } from "../errors.ts";
import { actionPk, counterKey, resultKey } from "./store/table.ts";
import type { ResultItem, RunItem, WindowItem } from "./store/table.ts";
import type { ActionNode, GroupSummary, RunStatus } from "../run-handle.ts";
import { countInGroup } from "../run-handle.ts";
import { dueAt, durableWaitOf, shownStatus, waitingText } from "../core/durable-waits.ts";

/** The parts of a parent's map windows among its items (W# parts, and the one its counter hosts). */
function windowsOf(items: readonly Record<string, unknown>[]): Map<string, WindowItem> {
  const windows = new Map<string, WindowItem>();
  for (const it of items) {
    const sk = String(it["sk"]);
    if (sk.startsWith("W#")) windows.set(partId(it as unknown as WindowItem), it as unknown as WindowItem);
    else if (sk === "CNT" && it["win"]) {
      const w = it["win"] as WindowItem;
      windows.set(partId(w), w);
    }
  }
  return windows;
}

/** A child as the status tree shows it, from its call and its result item (if any); `kids`: look under it. */
function nodeOf(
  c: CallRecord,
  r: ResultItem | undefined,
  windows: Map<string, WindowItem>,
  madeAt: number | undefined,
  now: number,
  runId: string,
): { node: ActionNode; kids: boolean } {
  // An item of a windowed map waits (QUEUED) until its window part gives it a slot.
  const part = c.window && windows.get(partOf(c.window.key, c.window.index, c.window.limit));
  const waiting = part !== undefined && !isAssigned(part, c.window!.index);
  // A sleep or signal wait not yet over is WAITING: not queued for compute, it waits for time or the
  // outside world.
  const status = shownStatus(c.task, r?.status ?? (waiting ? "QUEUED" : "RUNNING"));
  const node: ActionNode = {
    id: c.id,
    task: c.task,
    group: c.group,
    status,
    attempts: r?.attempt ?? 1,
    cached: r?.cached === true,
    ...(r?.reused ? { reusedFrom: r.reused } : {}),
    durationMs: r?.startedAt === undefined ? undefined : (r.ended ?? now) - r.startedAt,
    startedAt: r?.startedAt,
    endedAt: r?.ended,
    children: [],
  };
  // A sleep or signal wait not yet over: what it waits for (its dispatch follows its commit, so
  // the time shown is never later than when it fires).
  const wait = r?.status === undefined ? durableWaitOf(c.task, c.args) : undefined;
  if (wait) {
    node.waiting = waitingText(
      wait.kind,
      wait.kind === "signal" ? wait.name : wait.kind === "callback" ? wait.secret : null,
      madeAt === undefined ? null : dueAt(wait, madeAt),
      { run: runId, since: madeAt },
    );
    return { node, kids: false };
  }
  return { node, kids: r?.kids === true || r?.status === undefined };
}

/**
 * Children of one parent, in call order, with their recorded state (not their outcomes: the tree
 * never shows them, and a view of 100,000 children need not move their payloads).
 */
export async function childrenOf(
  rt: Runtime,
  runId: string,
  parent: string,
  now: number,
): Promise<{ node: ActionNode; kids: boolean }[]> {
  const [items, results] = await Promise.all([
    loadActionItems(rt, parent),
    loadResults(rt, parent, true, true),
  ]);
  const calls: CallRecord[] = [];
  const madeAt = new Map<string, number>();
  // Calls of an epoch that never committed were never sent: not part of the tree.
  const committed = committedEpoch(items);
  for (const it of items) {
    const sk = String(it["sk"]);
    if (sk.startsWith("C#") && chunkEpoch(sk) <= committed) {
      const chunk = decodeChunk(it);
      calls.push(...chunk);
      if (typeof it["at"] === "number") for (const c of chunk) madeAt.set(c.id, it["at"]);
    }
  }
  const windows = windowsOf(items);
  return calls.map((c) => nodeOf(c, results.get(c.id), windows, madeAt.get(c.id), now, runId));
}

/**
 * One child of `parent`, for a view of it: its call record, its result item (outcome included) and
 * its node. Reads the parent's partition (its call chunks) and the one result item.
 */
export async function childOf(
  rt: Runtime,
  runId: string,
  parent: string,
  id: string,
  now: number,
): Promise<{ call: CallRecord; result: ResultItem | undefined; node: ActionNode } | undefined> {
  const [items, got] = await Promise.all([
    loadActionItems(rt, parent),
    rt.doc.send(
      new GetCommand({ TableName: rt.config.table, Key: resultKey(parent, id), ConsistentRead: true }),
    ),
  ]);
  const committed = committedEpoch(items);
  for (const it of items) {
    const sk = String(it["sk"]);
    if (!sk.startsWith("C#") || chunkEpoch(sk) > committed) continue;
    const call = decodeChunk(it).find((c) => c.id === id);
    if (!call) continue;
    const result = got.Item as ResultItem | undefined;
    const at = typeof it["at"] === "number" ? it["at"] : undefined;
    return { call, result, node: nodeOf(call, result, windowsOf(items), at, now, runId).node };
  }
  return undefined;
}

/** Call chunks read per Query of a page (100 calls each). */
const PAGE_CHUNKS = 5;
/** The most call chunks one page request reads looking for matches (a filter may match few). */
export const PAGE_SCAN_CHUNKS = 20;

/**
 * One page of a parent's children in `group` (those `match` keeps, if given), in call order: the call
 * chunks are read a few at a time (Query with Limit and ExclusiveStartKey) from the cursor `after`,
 * and only the results of the calls in the group (BatchGet, without outcomes). Stops at `limit`
 * children or after `scanChunks` chunks ({@link PAGE_SCAN_CHUNKS} unless given), whichever comes
 * first; `next` continues it.
 * A cursor is `<chunk sort key>/<position in it>`: the first call not yet looked at.
 */
export async function childrenPage(
  rt: Runtime,
  runId: string,
  parent: string,
  group: string,
  o: {
    match?: (node: ActionNode) => boolean;
    after?: string | undefined;
    limit: number;
    now: number;
    scanChunks?: number;
  },
): Promise<{ nodes: { node: ActionNode; kids: boolean }[]; next?: string }> {
  const scanChunks = o.scanChunks ?? PAGE_SCAN_CHUNKS;
  const [cnt, parts] = await Promise.all([
    rt.doc.send(
      new GetCommand({ TableName: rt.config.table, Key: counterKey(parent), ConsistentRead: true }),
    ),
    readPrefix(rt, parent, "W#"),
  ]);
  const committed = committedEpoch(cnt.Item ? [cnt.Item] : []);
  const windows = windowsOf([...(cnt.Item ? [cnt.Item] : []), ...parts.items]);
  let [sk, from] = o.after ? parseCursor(o.after) : [undefined, 0];
  const nodes: { node: ActionNode; kids: boolean }[] = [];
  let chunks: Record<string, unknown>[] = [];
  // The chunk the cursor points into is read again (it may hold calls of this page).
  if (sk) chunks = [...(await batchGet(rt, [{ pk: actionPk(parent), sk }], true)).values()];
  let more = true;
  for (let scanned = 0; ;) {
    if (!chunks.length) {
      if (!more) return { nodes };
      const page = await readPrefix(rt, parent, "C#", { limit: PAGE_CHUNKS, after: sk });
      chunks = page.items;
      more = page.more;
      from = 0;
      if (!chunks.length) return { nodes };
    }
    const chunk = chunks.shift()!;
    sk = String(chunk["sk"]);
    scanned++;
    if (chunkEpoch(sk) > committed) return { nodes };
    const calls = decodeChunk(chunk);
    const at = typeof chunk["at"] === "number" ? chunk["at"] : undefined;
    const inGroup = calls.map((c, i) => ({ c, i })).filter(({ c, i }) => i >= from && c.group === group);
    // Unfiltered, a page needs the results of its own calls only (the next call is its `next`).
    const wanted = o.match ? inGroup : inGroup.slice(0, o.limit - nodes.length);
    const results = await batchGet(
      rt,
      wanted.map(({ c }) => resultKey(parent, c.id)),
      false,
      { expression: RESULT_STATE, names: { "#status": "status" } },
    );
    for (const { c, i } of inGroup) {
      if (nodes.length === o.limit) return { nodes, next: cursor(sk, i) };
      const r = results.get(keyId(resultKey(parent, c.id))) as ResultItem | undefined;
      const n = nodeOf(c, r, windows, at, o.now, runId);
      if (!o.match || o.match(n.node)) nodes.push(n);
    }
    if (scanned >= scanChunks && (chunks.length || more)) {
      const following = chunks[0] ? String(chunks[0]["sk"]) : undefined;
      return { nodes, next: following ? cursor(following, 0) : cursor(sk, calls.length) };
    }
  }
}

const cursor = (sk: string, i: number): string => `${sk}/${i}`;

function parseCursor(c: string): [string, number] {
  const slash = c.lastIndexOf("/");
  const i = Number(c.slice(slash + 1));
  if (slash < 0 || !c.startsWith("C#") || !Number.isInteger(i) || i < 0)
    throw new ConfigurationError(`not a page cursor: ${c}`);
  return [c.slice(0, slash), i];
}

export async function awsRunStatus(rt: Runtime, run: RunItem, now = Date.now()): Promise<RunStatus> {
  const root: ActionNode = {
    id: run.run,
    task: run.task,
    group: "",
    status: run.status,
    attempts: run.attempt ?? 1,
    cached: false,
    durationMs: (run.ended ?? now) - run.created,
    startedAt: run.created,
    endedAt: run.ended,
    children: [],
  };
  const groups = new Map<string, GroupSummary>();
  let actions = 1;
  let level: ActionNode[] = [root];
  while (level.length) {
    const next: ActionNode[] = [];
    await Promise.all(
      level.map(async (p) => {
        const kids = await childrenOf(rt, run.run, p.id, now);
        for (const k of kids) {
          p.children.push(k.node);
          actions++;
          countInGroup(groups, k.node);
          if (k.kids) next.push(k.node);
        }
      }),
    );
    level = next;
  }
  return {
    id: run.run,
    task: run.task,
    state: run.status,
    createdAt: new Date(run.created),
    endedAt: run.ended === undefined ? undefined : new Date(run.ended),
    root,
    groups: [...groups.values()],
    actions,
    ...(run.rec?.length ? { recoveredFrom: run.rec[0] } : {}),
    ...(run.recoveries?.length ? { recoveries: run.recoveries } : {}),
  };
}
