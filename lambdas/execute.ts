/**
 * The executor's work on one batch of exec messages: run (or replay) each action with the pure core,
 * and persist what its decision says. Every effect is guarded by a conditional write (results.ts,
 * counters.ts, history.ts), so a duplicate delivery or a crash at any point leaves state from which
 * the redelivered message finishes the job without doing any effect twice.
 */
import { GetCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { History } from "../sdk/core/history.ts";
import { emptyHistory } from "../sdk/core/history.ts";
import { replay } from "../sdk/core/replay.ts";
import type { Decision } from "../sdk/core/replay.ts";
import type { TaskDef } from "../sdk/core/task-def.ts";
import { retryDelayMs } from "../sdk/core/task-def.ts";
import { ConfigurationError, isNonRecoverable, serializeError } from "../sdk/errors.ts";
import type { SerializedError } from "../sdk/errors.ts";
import { getTask } from "../sdk/registry.ts";
import { digest } from "../sdk/serde.ts";
import { sendExecs, sendToCoordinator } from "./dispatch.ts";
import { MESSAGE_VERSION } from "./messages.ts";
import type { DoneMessage, ExecMessage, SweepMessage, TimeoutMessage } from "./messages.ts";
import { offload, resolvePayload } from "./payloads.ts";
import { dispatchCalls, maybeResume, redispatch } from "./resume.ts";
import { batchGet, keyId } from "./runtime.ts";
import type { Runtime } from "./runtime.ts";
import { cancelChildren } from "./state/cancel.ts";
import {
  claimReplay,
  commitSuspension,
  createWindow,
  endCounter,
  markDispatched,
  releaseReplay,
} from "./state/counters.ts";
import { TraceConflict, loadHistory, writeCalls, writeTraces } from "./state/history.ts";
import { bumpAttempt, readAction, writeTerminal } from "./state/results.ts";
import type { Terminal } from "./state/results.ts";
import type { CounterItem, RunItem, TerminalStatus } from "./state/table.ts";
import { cacheItemKey, counterKey, expiry, runKey, selfKey } from "./state/table.ts";
import { triggerFor } from "./state/trigger.ts";

/** Errors a parent does not retry: its children had their own retries (as in the embedded engine). */
const NOT_RETRIED = new Set([
  "TASK_FAILED",
  "TASK_TIMEOUT",
  "CANCELLED",
  "NON_DETERMINISM",
  "SERIALIZATION",
  "CONFIGURATION",
  "HISTORY",
]);

/** How long a replay holds its parent before a duplicate resume may replay it (after a crash). */
const REPLAY_LEASE_MS = 30_000;

/** What one batch sends to the coordinator at its end, in one SendMessageBatch. */
export type Outbox = { msg: DoneMessage | TimeoutMessage | SweepMessage; delaySeconds?: number }[];

export function cacheKey(def: TaskDef, args: string): string {
  return digest(def.name, String(def.cacheVersion), digest(args));
}

export interface ExecContext {
  runs: Map<string, Record<string, unknown>>;
  counters: Map<string, Record<string, unknown>>;
}

/** One read for the whole batch: its runs, its parents' counters and its actions' own counters. */
export async function prefetch(rt: Runtime, msgs: ExecMessage[]): Promise<ExecContext> {
  const keys = [];
  for (const m of msgs) {
    keys.push(runKey(m.run), counterKey(m.id));
    if (m.parent) keys.push(counterKey(m.parent));
  }
  const got = await batchGet(rt, keys);
  return { runs: got, counters: got };
}

/** Timeout checks go out before any body runs, so a Lambda that dies mid-task still times out. */
export function timeoutChecks(rt: Runtime, msgs: ExecMessage[]): Outbox {
  const out: Outbox = [];
  for (const m of msgs) {
    if (m.epoch !== 0) continue;
    let def: TaskDef;
    try {
      def = getTask(m.task);
    } catch {
      continue;
    }
    if (def.timeoutMs === undefined) continue;
    const msg: TimeoutMessage = {
      k: "timeout",
      v: MESSAGE_VERSION,
      run: m.run,
      id: m.id,
      parent: m.parent,
      task: m.task,
      group: m.group,
      attempt: m.attempt,
      deadline: rt.now() + def.timeoutMs,
      timeoutMs: def.timeoutMs,
    };
    out.push({ msg, delaySeconds: Math.min(900, Math.ceil(def.timeoutMs / 1000)) });
  }
  return out;
}

/** Runs one exec message to its next durable state. Throws only on infrastructure errors (then it is retried). */
export async function executeOne(
  rt: Runtime,
  m: ExecMessage,
  ctx: ExecContext,
  outbox: Outbox,
): Promise<void> {
  const run = ctx.runs.get(keyId(runKey(m.run))) as RunItem | undefined;
  if (!run) {
    rt.log.warn("dropped an exec message: its run no longer exists (expired or never started)", {
      run: m.run,
      action: m.id,
    });
    return;
  }
  if (m.notBefore !== undefined && m.notBefore > rt.now() + 1000) {
    await sendExecs(rt, [{ msg: m, delayMs: m.notBefore - rt.now() }]);
    return;
  }
  if (run.status !== "RUNNING") return cancelSelf(rt, m, outbox, `the run ended ${run.status}`);
  if (m.parent) {
    const pc = ctx.counters.get(keyId(counterKey(m.parent))) as CounterItem | undefined;
    if (!pc) {
      rt.log.warn("dropped an exec message: its parent's state no longer exists", {
        run: m.run,
        action: m.id,
        parent: m.parent,
      });
      return;
    }
    if (pc.st === "E") return cancelSelf(rt, m, outbox, "its parent ended");
  }

  let def: TaskDef;
  try {
    def = getTask(m.task);
  } catch (e) {
    const error = { ...serializeError(e), nonRecoverable: true, attempts: m.attempt };
    return finish(rt, m, outbox, "FAILED", { ok: false, error }, undefined, undefined);
  }

  // Which epoch is this? A consistent read, since the prefetch may predate a concurrent commit.
  let cnt = ctx.counters.get(keyId(counterKey(m.id))) as CounterItem | undefined;
  if (cnt || m.epoch > 0) {
    const got = await rt.doc.send(
      new GetCommand({ TableName: rt.config.table, Key: counterKey(m.id), ConsistentRead: true }),
    );
    cnt = got.Item as CounterItem | undefined;
  }
  // An ended parent whose outcome is missing crashed between ending and writing it: replay it
  // again (same history, same decision) to finish, without a claim (claims need a live parent).
  let ending = false;
  if (cnt?.st === "E") {
    if (await resendDone(rt, m, outbox)) return;
    ending = true;
  }
  if (cnt && !ending) {
    if (m.epoch < cnt.epoch) {
      // A redelivery of an earlier epoch: finish what its first delivery may have left undone.
      if ((cnt.disp ?? 0) < cnt.epoch) await redispatch(rt, cnt, m.id, def.env);
      await maybeResume(rt, m.id, cnt, m);
      return;
    }
    if (m.epoch > cnt.epoch) {
      rt.log.warn("dropped an exec message from the future", {
        action: m.id,
        epoch: m.epoch,
        counter: cnt.epoch,
      });
      return;
    }
  } else if (m.epoch > 0) {
    rt.log.warn("dropped a resume: the parent's counter no longer exists", { run: m.run, action: m.id });
    return;
  }

  if (m.epoch === 0 && def.cacheVersion !== false) {
    const hit = await rt.doc.send(
      new GetCommand({ TableName: rt.config.table, Key: cacheItemKey(cacheKey(def, m.args)) }),
    );
    const value = hit.Item?.["value"];
    if (typeof value === "string") {
      return finish(
        rt,
        m,
        outbox,
        "SUCCEEDED",
        { ok: true, value: await resolvePayload(rt.payloads, value) },
        undefined,
        cnt,
        rt.now(),
        true,
      );
    }
  }

  const args = await resolvePayload(rt.payloads, m.args);
  const snap = { co: cnt?.co ?? 0, ce: cnt?.ce ?? 0 };
  let history: History = emptyHistory();
  if (cnt) {
    if (!ending && !(await claimReplay(rt, m.id, cnt.epoch, REPLAY_LEASE_MS))) {
      // Another delivery of this resume is replaying: look again once its claim may have expired.
      const left = (cnt.leaseEpoch === cnt.epoch ? (cnt.lease ?? 0) : 0) - rt.now();
      await sendExecs(rt, [{ msg: m, delayMs: Math.max(1000, Math.min(left, REPLAY_LEASE_MS) + 500) }]);
      return;
    }
    try {
      history = (await loadHistory(rt, m.id)).history;
      await rt.doc.send(
        new UpdateCommand({
          TableName: rt.config.table,
          Key: runKey(m.run),
          UpdateExpression: "ADD replays :one",
          ExpressionAttributeValues: { ":one": 1 },
        }),
      );
      return await replayAndApply(rt, m, def, args, history, cnt, snap, outbox);
    } catch (e) {
      await releaseReplay(rt, m.id, cnt.epoch).catch(() => undefined);
      throw e;
    }
  }
  return replayAndApply(rt, m, def, args, history, cnt, snap, outbox);
}

async function replayAndApply(
  rt: Runtime,
  m: ExecMessage,
  def: TaskDef,
  args: string,
  history: History,
  cnt: CounterItem | undefined,
  snap: { co: number; ce: number },
  outbox: Outbox,
): Promise<void> {
  for (let tries = 0; ; tries++) {
    const startedAt = rt.now();
    const d = await replay({ task: def, args, actionId: m.id, history });
    // A leaf awaiting timers or I/O is normal; the core's warning is about parent bodies.
    const parent = cnt !== undefined || d.calls.length > 0 || d.kind === "suspended";
    for (const w of d.warnings) rt.log[parent ? "warn" : "debug"](w, { task: m.task, action: m.id });
    try {
      return await apply(rt, m, def, d, history, cnt, snap, outbox, startedAt);
    } catch (e) {
      // Another replay of this epoch recorded its traces first: replay on top of them.
      if (!(e instanceof TraceConflict) || tries >= 2) throw e;
      history = (await loadHistory(rt, m.id)).history;
    }
  }
}

async function apply(
  rt: Runtime,
  m: ExecMessage,
  def: TaskDef,
  d: Decision,
  history: History,
  cnt: CounterItem | undefined,
  snap: { co: number; ce: number },
  outbox: Outbox,
  startedAt: number,
): Promise<void> {
  switch (d.kind) {
    case "completed":
      await finish(rt, m, outbox, "SUCCEEDED", { ok: true, value: d.value }, history, cnt, startedAt);
      if (def.cacheVersion !== false) {
        const value = await offload(rt.payloads, `cache/${def.name}`, d.value);
        await rt.doc.send(
          new PutCommand({
            TableName: rt.config.table,
            Item: { ...cacheItemKey(cacheKey(def, m.args)), value, task: def.name, created: rt.now() },
          }),
        );
      }
      return;
    case "failed": {
      const retryable =
        !isNonRecoverable(d.error) &&
        !NOT_RETRIED.has(d.error.code) &&
        !cnt &&
        m.attempt <= def.retries.count;
      if (retryable) return retry(rt, m, def, d.error);
      return finish(
        rt,
        m,
        outbox,
        "FAILED",
        { ok: false, error: { ...d.error, attempts: m.attempt } },
        history,
        cnt,
        startedAt,
      );
    }
    case "suspended":
      return suspend(rt, m, def, d, history, cnt, snap);
    default:
      d satisfies never;
  }
}

async function retry(rt: Runtime, m: ExecMessage, def: TaskDef, error: SerializedError): Promise<void> {
  // Only the attempt that failed may start the next: a duplicate delivery starts no second chain.
  if (!(await bumpAttempt(rt, m.run, m.parent, m.id, m.attempt))) return;
  rt.log.info("retrying", { task: m.task, action: m.id, attempt: m.attempt + 1, error: error.message });
  await sendExecs(rt, [
    { msg: { ...m, attempt: m.attempt + 1, epoch: 0 }, delayMs: retryDelayMs(def.retries, m.attempt) },
  ]);
}

/** Ends an action: its unsettled children are cancelled first, then its outcome is written once. */
async function finish(
  rt: Runtime,
  m: ExecMessage,
  outbox: Outbox,
  status: TerminalStatus,
  outcome: Terminal["outcome"],
  history: History | undefined,
  cnt: CounterItem | undefined,
  startedAt?: number,
  cached?: boolean,
): Promise<void> {
  if (cnt) {
    // Ended before the outcome is written: no resume or window advance can sneak in between.
    await endCounter(rt, m.id);
    if (history) {
      const open = [...history.calls.values()].filter((c) => !history.outcomes.has(c.id));
      const parents = await cancelChildren(
        rt,
        m.run,
        m.id,
        open.map((c) => ({ id: c.id, task: c.task, group: c.group })),
        `its parent ${m.task} ended ${status}`,
      );
      for (const p of parents)
        outbox.push({
          msg: {
            k: "sweep",
            v: MESSAGE_VERSION,
            run: m.run,
            id: p,
            reason: `an ancestor ${m.task} ended ${status}`,
          },
        });
    }
  }
  const t: Terminal = {
    run: m.run,
    parent: m.parent,
    id: m.id,
    task: m.task,
    group: m.group,
    status,
    outcome,
    attempt: m.attempt,
  };
  if (startedAt !== undefined) t.startedAt = startedAt;
  if (cached) t.cached = true;
  if (cnt) t.kids = true;
  const w = await writeTerminal(rt, t);
  if (m.parent === null) return;
  let ok = outcome.ok;
  if (!w.written) {
    // Recorded before (by a first delivery that crashed before telling the parent, or by a
    // timeout or cancellation): report what is recorded. No outcome means a stale attempt.
    if (w.existing?.["outcome"] === undefined) return;
    ok = w.existing["status"] === "SUCCEEDED";
  }
  const done: DoneMessage = { k: "done", v: MESSAGE_VERSION, run: m.run, parent: m.parent, id: m.id, ok };
  if (m.window) done.window = m.window;
  outbox.push({ msg: done });
}

/**
 * A redelivered exec for a parent that already ended: its first delivery may have crashed after
 * writing the outcome and before telling its own parent, so tell it again from the record.
 */
async function resendDone(rt: Runtime, m: ExecMessage, outbox: Outbox): Promise<boolean> {
  const item = await readAction(rt, m.run, m.parent, m.id);
  if (item?.outcome === undefined) return false;
  if (m.parent === null) return true;
  const done: DoneMessage = {
    k: "done",
    v: MESSAGE_VERSION,
    run: m.run,
    parent: m.parent,
    id: m.id,
    ok: item.status === "SUCCEEDED",
  };
  if (m.window) done.window = m.window;
  outbox.push({ msg: done });
  return true;
}

async function cancelSelf(rt: Runtime, m: ExecMessage, outbox: Outbox, reason: string): Promise<void> {
  const hadChildren = await endCounter(rt, m.id);
  if (m.parent !== null) {
    await cancelChildren(rt, m.run, m.parent, [{ id: m.id, task: m.task, group: m.group }], reason);
  }
  if (hadChildren) outbox.push({ msg: { k: "sweep", v: MESSAGE_VERSION, run: m.run, id: m.id, reason } });
}

async function suspend(
  rt: Runtime,
  m: ExecMessage,
  def: TaskDef,
  d: Decision & { kind: "suspended" },
  history: History,
  cnt: CounterItem | undefined,
  snap: { co: number; ce: number },
): Promise<void> {
  const from = cnt?.epoch ?? 0;
  const epoch = from + 1;
  const expiresAt = expiry(rt.now(), rt.config.retentionDays, 7);
  // Order matters: traces (the commit of non-determinism), then calls, then the counter (the
  // commit of the suspension), then sends. A crash anywhere before the counter leaves no effect
  // but idempotent items; after it, the redelivered message redoes the sends (resume.ts).
  await writeTraces(rt, m.run, m.id, epoch, d.traces, expiresAt);
  if (from === 0) {
    await rt.doc.send(
      new PutCommand({
        TableName: rt.config.table,
        Item: {
          ...selfKey(m.id),
          run: m.run,
          parent: m.parent,
          task: m.task,
          group: m.group,
          args: m.args,
          attempt: m.attempt,
          expiresAt,
        },
      }),
    );
  }
  const stored = await writeCalls(rt, m.run, m.id, epoch, d.calls, expiresAt);
  const upto = new Map<string, number>();
  const windows = new Map<string, { limit: number; size: number; offset: number }>();
  stored.forEach((c, i) => {
    if (!c.window) return;
    const w = windows.get(c.window.key);
    if (w) w.size++;
    else windows.set(c.window.key, { limit: c.window.limit, size: 1, offset: i - c.window.index });
  });
  for (const [key, w] of windows) {
    const first = Math.min(w.limit, w.size);
    upto.set(key, first);
    await createWindow(rt, {
      action: m.id,
      key,
      limit: w.limit,
      size: w.size,
      epoch,
      offset: w.offset,
      released: 0,
      upto: first,
      expiresAt,
    });
  }
  const trigger = triggerFor(d.waits, history.outcomes);
  const committed = await commitSuspension(rt, { run: m.run, action: m.id, from, snap, trigger, expiresAt });
  if (!committed) {
    // Another replay of this epoch committed the same decision; it may have crashed before its
    // sends, so finish them from the stored state (idempotent).
    const got = await rt.doc.send(
      new GetCommand({ TableName: rt.config.table, Key: counterKey(m.id), ConsistentRead: true }),
    );
    const now = got.Item as CounterItem | undefined;
    if (now && now.st !== "E" && now.epoch === epoch) {
      if ((now.disp ?? 0) < epoch) await redispatch(rt, now, m.id, def.env);
      await maybeResume(rt, m.id, now, m);
    }
    return;
  }
  await dispatchCalls(rt, m.run, stored, upto, def.env);
  await markDispatched(rt, m.id, epoch);
  // Completions counted while this replay ran may already satisfy the new wait.
  await maybeResume(rt, m.id, committed, m);
}

/** Fails the action a malformed message names, when it names one (the message still dead-letters). */
export async function failNamedAction(
  rt: Runtime,
  ref: { run: string; id: string; parent?: string | null | undefined; task?: string | undefined },
  error: string,
): Promise<void> {
  const outcome = {
    ok: false as const,
    error: { ...serializeError(new ConfigurationError(error)), nonRecoverable: true },
  };
  const parent = ref.parent ?? null;
  const w = await writeTerminal(rt, {
    run: ref.run,
    parent,
    id: ref.id,
    task: ref.task ?? "(unknown)",
    group: "",
    status: "FAILED",
    outcome,
    attempt: undefined,
  });
  if (w.written && parent !== null) {
    await sendToCoordinator(rt, [
      { msg: { k: "done", v: MESSAGE_VERSION, run: ref.run, parent, id: ref.id, ok: false } },
    ]);
  }
}
