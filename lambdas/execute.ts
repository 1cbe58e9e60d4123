/**
 * The executor's work on one batch of exec messages: run (or replay) each action with the pure core,
 * and persist what its decision says. Every effect is guarded by a conditional write (results.ts,
 * counters.ts, history.ts), so a duplicate delivery or a crash at any point leaves state from which
 * the redelivered message finishes the job without doing any effect twice.
 */
import type { History } from "../sdk/core/history.ts";
import { emptyHistory } from "../sdk/core/history.ts";
import { replay } from "../sdk/core/replay.ts";
import type { Decision } from "../sdk/core/replay.ts";
import type { TaskDef } from "../sdk/core/task-def.ts";
import { NOT_RETRIED, cacheKey, retryDelayMs } from "../sdk/core/task-def.ts";
import { ConfigurationError, isNonRecoverable, serializeError } from "../sdk/errors.ts";
import type { SerializedError } from "../sdk/errors.ts";
import { findTask, removedTaskError } from "../sdk/registry.ts";
import { sendExecs, sendToCoordinator } from "../sdk/aws/transport/dispatch.ts";
import { MESSAGE_VERSION, actionOf, doneOf } from "../sdk/aws/messages.ts";
import type { DoneMessage, ExecMessage, SweepMessage, TimeoutMessage } from "../sdk/aws/messages.ts";
import { offload, resolvePayload } from "../sdk/aws/payloads.ts";
import { dispatchEpoch, maybeResume, redispatch } from "./resume.ts";
import { batchGet, keyId } from "../sdk/aws/store/io.ts";
import type { Runtime } from "../sdk/aws/runtime.ts";
import { cancelChildren, sweepOf } from "../sdk/aws/store/cancel.ts";
import {
  claimReplay,
  commitSuspension,
  endCounter,
  readCounter,
  releaseReplay,
} from "../sdk/aws/store/counters.ts";
import { EpochTaken, TraceConflict, claimEpoch, loadHistory, writeCalls } from "../sdk/aws/store/history.ts";
import { bumpAttempt, readAction, writeTerminal } from "../sdk/aws/store/results.ts";
import type { Terminal } from "../sdk/aws/store/results.ts";
import type { CounterItem, ResultItem, RunItem, TerminalStatus } from "../sdk/aws/store/table.ts";
import { counterKey, expiry, runKey } from "../sdk/aws/store/table.ts";
import { triggerFor } from "../sdk/aws/store/trigger.ts";
import { createWindowPart, isHosted, planWindows, releaseToken } from "../sdk/aws/store/windows.ts";
import { readCached, writeCached } from "../sdk/aws/store/cache.ts";
import { writeSelf } from "../sdk/aws/store/history.ts";

/** How long a replay holds its parent before a duplicate resume may replay it (after a crash). */
const REPLAY_LEASE_MS = 30_000;

/** What one batch sends to the coordinator at its end, in one SendMessageBatch. */
export type Outbox = { msg: DoneMessage | TimeoutMessage | SweepMessage; delaySeconds?: number }[];

/** The batch's prefetched items (runs and counters), by keyId. */
export type ExecContext = Map<string, Record<string, unknown>>;

/**
 * One read for the whole batch: its parents' counters (a child of an ended parent cancels itself;
 * a cancelled or ended run has ended its root's counter first), and for a root its run and its own
 * counter. A child's own counter is read only when its body turns out to be a parent's (executeOne):
 * BatchGetItem bills a read for every key, found or not, and most children are leaves.
 */
export async function prefetch(rt: Runtime, msgs: ExecMessage[]): Promise<ExecContext> {
  const keys = [];
  for (const m of msgs) {
    if (m.parent) keys.push(counterKey(m.parent));
    else keys.push(runKey(m.run), counterKey(m.id));
  }
  return batchGet(rt, keys);
}

/**
 * The deadline check of an attempt starting now (coordinate.ts checkTimeout): at its deadline the
 * coordinator times the attempt out, or retries it, unless it ended. Undefined for a resume (its
 * attempt's check went out with its first execution) or a task without a timeout.
 */
export function timeoutCheck(rt: Runtime, m: ExecMessage): TimeoutMessage | undefined {
  if (m.epoch !== 0) return undefined;
  const def = findTask(m.task);
  if (def?.timeoutMs === undefined) return undefined;
  return {
    k: "timeout",
    v: MESSAGE_VERSION,
    ...actionOf(m),
    attempt: m.attempt,
    deadline: rt.now() + def.timeoutMs,
    timeoutMs: def.timeoutMs,
    args: m.args,
  };
}

/** A deadline check as it is sent: delayed until its deadline (at most 900 s; it re-delays). */
export function checkAt(rt: Runtime, c: TimeoutMessage): Outbox[number] {
  return { msg: c, delaySeconds: Math.min(900, Math.max(0, Math.ceil((c.deadline - rt.now()) / 1000))) };
}

/** An executeOne whose action is still open when it returns (it suspended): its check must go. */
export type Open = "open";

/** Runs one exec message to its next durable state. Throws only on infrastructure errors (then it is retried). */
export async function executeOne(
  rt: Runtime,
  m: ExecMessage,
  ctx: ExecContext,
  outbox: Outbox,
  delivery: Delivery,
): Promise<Open | void> {
  // The attempt begins now: a child's recorded startedAt is never later than its body's start.
  const begun = rt.now();
  if (m.parent === null) {
    const run = ctx.get(keyId(runKey(m.run))) as RunItem | undefined;
    if (!run) {
      rt.log.warn("dropped an exec message: its run no longer exists (expired or never started)", {
        run: m.run,
        action: m.id,
      });
      return;
    }
    if (run.status !== "RUNNING") return cancelSelf(rt, m, outbox, `the run ended ${run.status}`);
    // A redelivered root attempt that had moved the run to its next attempt and died before
    // sending it (see recorded).
    if (delivery.redelivered && run.attempt === m.attempt + 1) {
      const def = findTask(m.task);
      if (def) await sendRetry(rt, m, def);
      return;
    }
  }
  if (m.notBefore !== undefined && m.notBefore > rt.now() + 1000) {
    await sendExecs(rt, [{ msg: m, delayMs: m.notBefore - rt.now() }]);
    return;
  }
  if (m.parent) {
    const pc = ctx.get(keyId(counterKey(m.parent))) as CounterItem | undefined;
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

  const def = findTask(m.task);
  if (!def) {
    // Removed by an upgrade: fail for good, cancelling what the action started if it is a parent.
    const error = { ...serializeError(removedTaskError(m.task)), nonRecoverable: true, attempts: m.attempt };
    // Its children are swept by the coordinator, a page at a time (loading its whole history here
    // would grow with them).
    const cnt = await readCounter(rt, m.id);
    if (cnt?.epoch !== undefined)
      outbox.push({ msg: sweepOf(m.run, m.id, `its task ${m.task} was removed`) });
    return finish(rt, m, outbox, "FAILED", { ok: false, error }, { cnt, delivery });
  }

  // Which epoch is this? A child's first delivery finds out lazily (below); otherwise a consistent
  // read, since the prefetch may predate a concurrent commit.
  const lazy = m.epoch === 0 && m.parent !== null && !delivery.redelivered;
  let cnt: CounterItem | undefined;
  let ending = false;
  if (!lazy) {
    // The prefetch reads a root's own counter; a child's (a redelivery or a resume) is read here.
    cnt = ctx.get(keyId(counterKey(m.id))) as CounterItem | undefined;
    if (cnt || m.epoch > 0 || m.parent !== null) cnt = await readCounter(rt, m.id);
    if (cnt) {
      const next = await known(rt, m, def, cnt, outbox, delivery);
      if (next === "done") return;
      ending = next === "ending";
    } else if (m.epoch > 0) {
      rt.log.warn("dropped a resume: the parent's counter no longer exists", { run: m.run, action: m.id });
      return;
    } else if (m.parent !== null && (await recorded(rt, m, def, outbox))) return;
  }

  if (m.epoch === 0 && def.cacheVersion !== false) {
    const value = await readCached(rt, cacheKey(def, m.args));
    if (value !== undefined) {
      return finish(
        rt,
        m,
        outbox,
        "SUCCEEDED",
        { ok: true, value: await resolvePayload(rt.payloads, value) },
        { cnt, startedAt: begun, cached: true, delivery },
      );
    }
  }

  const args = await resolvePayload(rt.payloads, m.args);
  const at: Attempt = { begun, startedAt: begun, delivery };
  let first: Decision | undefined;
  if (lazy) {
    // Most children are leaves: run the body first. One that completes without calls or traces is
    // a leaf (a body that ever suspended makes its first calls again, deterministically); any other
    // may be a duplicate of a parent's first exec after it suspended: read its counter then (the
    // duplicate's replay is discarded; a trace it ran before its first call ran twice, as a leaf
    // body does under duplicate delivery — the first recorded result is the one kept).
    first = await replay({ task: def, args, actionId: m.id, history: emptyHistory() });
    if (first.kind === "suspended" || first.calls.length || first.traces.length) {
      cnt = await readCounter(rt, m.id);
      if (cnt) {
        const next = await known(rt, m, def, cnt, outbox, delivery);
        if (next === "done") return;
        ending = next === "ending";
        first = undefined; // replay again, with the history
      }
    }
  }
  const snap = { co: cnt?.co ?? 0, ce: cnt?.ce ?? 0 };
  let history: History = emptyHistory();
  if (cnt) {
    if (!ending && !(await claimReplay(rt, m.id, cnt.epoch, REPLAY_LEASE_MS, delivery.id))) {
      // Another delivery of this resume is replaying: look again once its claim may have expired.
      const left = (cnt.leaseEpoch === cnt.epoch ? (cnt.lease ?? 0) : 0) - rt.now();
      await sendExecs(rt, [{ msg: m, delayMs: Math.max(1000, Math.min(left, REPLAY_LEASE_MS) + 500) }]);
      return;
    }
    try {
      const loaded = await loadHistory(rt, m.id, snap.co + snap.ce);
      history = loaded.history;
      // A parent's attempt began at its first execution (recorded with its first suspension).
      at.startedAt = loaded.self?.startedAt ?? begun;
      return await replayAndApply(rt, m, def, args, history, cnt, snap, outbox, at);
    } catch (e) {
      await releaseReplay(rt, m.id, cnt.epoch).catch(() => undefined);
      throw e;
    }
  }
  return replayAndApply(rt, m, def, args, history, cnt, snap, outbox, at, first);
}

/**
 * An exec for an action that has a counter (it suspended before): "replay" it at this epoch,
 * "ending" (it ended and crashed before writing its outcome: replay to finish, without a claim),
 * or "done" (a redelivery of an earlier epoch, whose leftovers are finished here, or stale).
 */
async function known(
  rt: Runtime,
  m: ExecMessage,
  def: TaskDef,
  cnt: CounterItem,
  outbox: Outbox,
  delivery: Delivery,
): Promise<"replay" | "ending" | "done"> {
  if (cnt.st === "E") return (await resendDone(rt, m, outbox, delivery)) ? "done" : "ending";
  if (m.epoch < cnt.epoch) {
    // A redelivery of an earlier epoch: finish what its first delivery may have left undone.
    if ((cnt.disp ?? 0) < cnt.epoch) await redispatch(rt, cnt, { run: m.run, id: m.id, task: def.name });
    else await maybeResume(rt, m.id, cnt, [releaseToken(delivery.id)], m);
    return "done";
  }
  if (m.epoch > cnt.epoch) {
    rt.log.warn("dropped an exec message from the future", {
      action: m.id,
      epoch: m.epoch,
      counter: cnt.epoch,
    });
    return "done";
  }
  return "replay";
}

/**
 * A redelivered first exec of a child that never suspended: its earlier delivery may have written
 * the outcome and died before reporting it (a failed flush, a failed cache write, a Lambda that
 * died while completions were being coalesced). Its recorded outcome is reported, not recomputed:
 * a second run of the body could throw or overrun and the completion would never be reported.
 * Likewise an attempt that failed, moved the action to the next attempt and died before sending
 * it: the retry is sent now (no other delivery can: the bump is done). True when nothing is left to
 * run (also for a stale attempt).
 */
async function recorded(rt: Runtime, m: ExecMessage, def: TaskDef, outbox: Outbox): Promise<boolean> {
  const own = (await readAction(rt, m.run, m.parent, m.id)) as ResultItem | undefined;
  if (own?.outcome !== undefined) {
    outbox.push({ msg: doneOf(m, m.parent!, own.status === "SUCCEEDED") });
    return true;
  }
  if (own?.attempt === m.attempt + 1) await sendRetry(rt, m, def);
  return (own?.attempt ?? m.attempt) > m.attempt;
}

/** One delivery of an exec message: its SQS message id (a redelivery keeps it) and whether it is one. */
export interface Delivery {
  id: string;
  redelivered: boolean;
}

/** When this delivery began, and when the attempt it continues began (a parent's first execution). */
interface Attempt {
  begun: number;
  startedAt: number;
  delivery: Delivery;
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
  at: Attempt,
  first?: Decision,
): Promise<Open | void> {
  for (let tries = 0; ; tries++) {
    const d = tries === 0 && first ? first : await replay({ task: def, args, actionId: m.id, history });
    // A leaf awaiting timers or I/O is normal; the core's warning is about parent bodies.
    const parent = cnt !== undefined || d.calls.length > 0 || d.kind === "suspended";
    for (const w of d.warnings) rt.log[parent ? "warn" : "debug"](w, { task: m.task, action: m.id });
    try {
      return await apply(rt, m, def, d, history, cnt, snap, outbox, at);
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
  at: Attempt,
): Promise<Open | void> {
  const startedAt = at.startedAt;
  if (d.kind !== "suspended" && !cnt && def.timeoutMs !== undefined && rt.now() - at.begun > def.timeoutMs) {
    // A leaf that ran past its deadline is not recorded as ended: its deadline check goes out now
    // (its first delivery may not have sent it yet: executor.ts), and the coordinator times the
    // attempt out or retries it, as for a Lambda that died.
    const c = timeoutCheck(rt, m);
    if (c) {
      outbox.push({ msg: { ...c, deadline: at.begun + def.timeoutMs } });
      return;
    }
  }
  switch (d.kind) {
    case "completed":
      await finish(
        rt,
        m,
        outbox,
        "SUCCEEDED",
        { ok: true, value: d.value },
        {
          history,
          cnt,
          startedAt,
          delivery: at.delivery,
        },
      );
      if (def.cacheVersion !== false) {
        const value = await offload(rt.payloads, `cache/${def.name}`, d.value);
        await writeCached(rt, cacheKey(def, m.args), value, def.name);
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
        { history, cnt, startedAt, delivery: at.delivery },
      );
    }
    case "suspended":
      return suspend(rt, m, def, d, history, cnt, snap, at);
    default:
      d satisfies never;
  }
}

async function retry(rt: Runtime, m: ExecMessage, def: TaskDef, error: SerializedError): Promise<void> {
  // Only the attempt that failed may start the next: a duplicate delivery starts no second chain.
  if (!(await bumpAttempt(rt, m.run, m.parent, m.id, m.attempt))) return;
  rt.log.info("retrying", { task: m.task, action: m.id, attempt: m.attempt + 1, error: error.message });
  await sendRetry(rt, m, def);
}

/** The exec of the attempt after `m`'s, after its backoff (a redelivery re-sends it: recorded). */
function sendRetry(rt: Runtime, m: ExecMessage, def: TaskDef): Promise<void> {
  return sendExecs(rt, [
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
  o: {
    history?: History | undefined;
    cnt?: CounterItem | undefined;
    startedAt?: number;
    cached?: boolean;
    delivery: Delivery;
  },
): Promise<void> {
  const { history, cnt, startedAt, cached } = o;
  if (cnt) {
    // Ended before the outcome is written: no resume or window advance can sneak in between.
    await endCounter(rt, m.id);
    if (history) {
      const open = [...history.calls.keys()].filter((id) => !history.outcomes.has(id));
      // A few are cancelled here, before the outcome (a race's losers end with the race); more
      // are swept by the coordinator a page at a time: work here must not grow with them.
      if (open.length > CANCEL_INLINE)
        await sendToCoordinator(rt, [{ msg: sweepOf(m.run, m.id, `its parent ${m.task} ended ${status}`) }]);
      else {
        const parents = await cancelChildren(rt, m.run, m.id, open, `its parent ${m.task} ended ${status}`);
        for (const p of parents)
          outbox.push({ msg: sweepOf(m.run, p, `an ancestor ${m.task} ended ${status}`) });
      }
    }
  }
  const t: Terminal = {
    run: m.run,
    parent: m.parent,
    id: m.id,
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
    // Recorded before. No outcome means a stale attempt. Otherwise whoever wrote it tells the
    // parent: another delivery of this exec, a timeout check, a cancellation — unless it was this
    // message's own earlier delivery, which crashed before telling the parent (tell it now).
    if (w.existing?.["outcome"] === undefined || !untold(w.existing, o.delivery, rt.now())) return;
    ok = w.existing["status"] === "SUCCEEDED";
  }
  outbox.push({ msg: doneOf(m, m.parent, ok) });
}

/** Open children an ending parent cancels itself; beyond this the coordinator sweeps them in pages. */
const CANCEL_INLINE = 100;

/** An outcome recorded this long ago was left untold by its writer if it is not counted by now. */
const UNTOLD_MS = 60_000;

/**
 * Whether a recorded outcome may never have been reported to the parent, so this delivery must
 * report it. Only a redelivery (SQS counts receives; a crashed delivery's message comes back with a
 * count above one) can be the writer that crashed before telling; a duplicate message (another
 * delivery, first received) cannot, and its completion would count the child twice, resuming the
 * parent early for nothing. An outcome older than UNTOLD_MS is reported anyway (a count over one is
 * what SQS reports for a redelivery; this covers a count it did not report).
 */
function untold(existing: Record<string, unknown>, d: Delivery, now: number): boolean {
  if (d.redelivered) return true;
  const ended = existing["ended"];
  return typeof ended === "number" && now - ended > UNTOLD_MS;
}

/**
 * A redelivered exec for a parent that already ended: its first delivery may have crashed after
 * writing the outcome and before telling its own parent, so tell it again from the record.
 */
async function resendDone(rt: Runtime, m: ExecMessage, outbox: Outbox, delivery: Delivery): Promise<boolean> {
  const item = await readAction(rt, m.run, m.parent, m.id);
  if (item?.outcome === undefined) return false;
  if (m.parent === null || !untold(item as unknown as Record<string, unknown>, delivery, rt.now()))
    return true;
  outbox.push({ msg: doneOf(m, m.parent, item.status === "SUCCEEDED") });
  return true;
}

async function cancelSelf(rt: Runtime, m: ExecMessage, outbox: Outbox, reason: string): Promise<void> {
  const hadChildren = await endCounter(rt, m.id);
  if (m.parent !== null) {
    await cancelChildren(rt, m.run, m.parent, [m.id], reason);
  }
  if (hadChildren) outbox.push({ msg: sweepOf(m.run, m.id, reason) });
}

async function suspend(
  rt: Runtime,
  m: ExecMessage,
  def: TaskDef,
  d: Decision & { kind: "suspended" },
  history: History,
  cnt: CounterItem | undefined,
  snap: { co: number; ce: number },
  at: Attempt,
): Promise<Open | void> {
  const from = cnt?.epoch ?? 0;
  const epoch = from + 1;
  const expiresAt = expiry(rt.now(), rt.config.retentionDays, 7);
  // Order matters: the claim of the epoch with its traces (one delivery's decision is the epoch's),
  // then calls, then the counter (the commit of the suspension), then sends. A crash anywhere
  // before the counter leaves no effect but the owner's items, which its redelivery rewrites
  // alike; after it, the redelivered message redoes the sends (resume.ts).
  try {
    await claimEpoch(rt, m.run, m.id, epoch, { by: at.delivery.id, attempt: m.attempt }, d.traces, expiresAt);
  } catch (e) {
    if (!(e instanceof EpochTaken)) throw e;
    rt.log.info("another delivery owns this epoch; it commits it", { action: m.id, epoch });
    return;
  }
  if (from === 0) {
    // Its exec message minus the epoch: with its window slot, which a resumed item still frees.
    await writeSelf(rt, {
      ...actionOf(m),
      args: m.args,
      attempt: m.attempt,
      startedAt: at.startedAt,
      expiresAt,
    });
  }
  const stored = await writeCalls(rt, m.run, m.id, epoch, d.calls, expiresAt);
  // Map windows before the commit: a completion must find its window when it arrives.
  // The counter hosts the parent's first single-part window (decided from the counter this replay
  // read, so every replay of the epoch decides alike); other parts are items of their own.
  const windows = planWindows(stored, epoch, !cnt?.win);
  const win = windows.find((w) => isHosted(w.name));
  for (const w of windows) if (w !== win) await createWindowPart(rt, m.id, w, expiresAt);
  const trigger = triggerFor(d.waits, history.outcomes);
  const committed = await commitSuspension(rt, {
    run: m.run,
    action: m.id,
    from,
    snap,
    trigger,
    expiresAt,
    calls: stored.length,
    ...(win ? { win } : {}),
  });
  const by = [releaseToken(at.delivery.id)];
  if (!committed) {
    // This delivery's own earlier attempt committed it and crashed before its sends (finish them
    // from the stored state), or the action was ended before its first commit (nothing to do).
    const now = await readCounter(rt, m.id);
    if (now && now.st !== "E" && now.epoch === epoch) {
      if ((now.disp ?? 0) < epoch) await redispatch(rt, now, { run: m.run, id: m.id, task: def.name });
      else await maybeResume(rt, m.id, now, by, m);
    }
    return "open";
  }
  if (stored.length)
    await dispatchEpoch(rt, { run: m.run, id: m.id, task: def.name, epoch }, stored, windows, by, m);
  // Completions counted while this replay ran may already satisfy the new wait.
  else await maybeResume(rt, m.id, committed, by, m);
  return "open";
}

/** Fails the action a malformed message names, when it names one (the message still dead-letters). */
export async function failNamedAction(
  rt: Runtime,
  ref: { run: string; id: string; parent?: string | null | undefined },
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
    status: "FAILED",
    outcome,
    attempt: undefined,
  });
  if (w.written && parent !== null) {
    await sendToCoordinator(rt, [{ msg: doneOf(ref, parent, false) }]);
  }
}
