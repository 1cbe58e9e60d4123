/**
 * The status tree of a run on AWS, read from the table: the run item, then each parent's call
 * chunks and result shards (paged Queries), in the same shape as the embedded engine's
 * (sdk/local/status.ts), so the CLI renders both alike.
 */
import { chunkEpoch, committedEpoch, decodeChunk, loadActionItems, loadResults } from "./store/history.ts";
import { isAssigned, partId, partOf } from "./store/windows.ts";
import type { Runtime } from "./runtime.ts";
import type { CallRecord } from "../core/history.ts";
import type { RunItem, WindowItem } from "./store/table.ts";
import type { ActionNode, GroupSummary, RunStatus } from "../run-handle.ts";
import { countInGroup } from "../run-handle.ts";
import { dueAt, durableWaitOf, waitingText } from "../core/durable-waits.ts";

/** Children of one parent, in call order, with their recorded state. */
async function childrenOf(
  rt: Runtime,
  runId: string,
  parent: string,
  now: number,
): Promise<{ node: ActionNode; kids: boolean }[]> {
  const [items, results] = await Promise.all([loadActionItems(rt, parent), loadResults(rt, parent)]);
  const calls: CallRecord[] = [];
  const madeAt = new Map<string, number>();
  const windows = new Map<string, WindowItem>();
  // Calls of an epoch that never committed were never sent: not part of the tree.
  const committed = committedEpoch(items);
  for (const it of items) {
    const sk = String(it["sk"]);
    if (sk.startsWith("C#")) {
      if (chunkEpoch(sk) <= committed) {
        const chunk = decodeChunk(it);
        calls.push(...chunk);
        if (typeof it["at"] === "number") for (const c of chunk) madeAt.set(c.id, it["at"]);
      }
    } else if (sk.startsWith("W#"))
      windows.set(partId(it as unknown as WindowItem), it as unknown as WindowItem);
    else if (sk === "CNT" && it["win"]) {
      const w = it["win"] as WindowItem;
      windows.set(partId(w), w);
    }
  }
  return calls.map((c) => {
    const r = results.get(c.id);
    // An item of a windowed map waits (QUEUED) until its window part gives it a slot.
    const part = c.window && windows.get(partOf(c.window.key, c.window.index, c.window.limit));
    const waiting = part !== undefined && !isAssigned(part, c.window!.index);
    const status = r?.status ?? (waiting ? "QUEUED" : "RUNNING");
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
      const at = madeAt.get(c.id);
      node.waiting = waitingText(
        wait.kind,
        wait.kind === "signal" ? wait.name : wait.kind === "callback" ? wait.secret : null,
        at === undefined ? null : dueAt(wait, at),
        { run: runId, since: at },
      );
      // Not queued for compute: it waits for time or the outside world.
      node.status = "WAITING";
      return { node, kids: false };
    }
    return { node, kids: r?.kids === true || r?.status === undefined };
  });
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
