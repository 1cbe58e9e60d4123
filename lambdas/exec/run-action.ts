/**
 * The executor's work on one exec message: run (or replay) the action with the pure core, and persist
 * what its decision says. Every effect is guarded by a conditional write (store/results.ts,
 * counters.ts, history.ts), so a duplicate delivery or a crash at any point leaves state from which
 * the redelivered message finishes the job without doing any effect twice.
 */
import type { History } from "../../sdk/core/history.ts";
import { emptyHistory } from "../../sdk/core/history.ts";
import type { Decision } from "../../sdk/core/replay.ts";
import type { TaskDef } from "../../sdk/core/task-def.ts";
import { retryDelayMs } from "../../sdk/core/task-def.ts";
import { serializeError } from "../../sdk/errors.ts";
import { removedTaskError } from "../../sdk/registry.ts";
import { sendExecs } from "../../sdk/aws/transport/dispatch.ts";
import { doneOf } from "../../sdk/aws/messages.ts";
import type { ExecMessage } from "../../sdk/aws/messages.ts";
import { resolvePayload } from "../../sdk/aws/payloads.ts";
import { maybeResume } from "../resume.ts";
import { keyId } from "../../sdk/aws/store/io.ts";
import type { Runtime } from "../../sdk/aws/runtime.ts";
import { sweepOf } from "../../sdk/aws/store/cancel.ts";
import { randomUUID } from "node:crypto";
import { claimReplay, readCounter, releaseReplay, renewReplay } from "../../sdk/aws/store/counters.ts";
import type { ReplayClaim } from "../../sdk/aws/store/counters.ts";
import { loadHistory } from "../../sdk/aws/store/history.ts";
import { readAction, readReusable } from "../../sdk/aws/store/results.ts";
import type { CounterItem, ResultItem, RunItem } from "../../sdk/aws/store/table.ts";
import { counterKey, runKey } from "../../sdk/aws/store/table.ts";
import { releaseToken } from "../../sdk/aws/store/windows.ts";
import { readCached } from "../../sdk/aws/store/cache.ts";
import { cacheLookup } from "../../sdk/core/policy.ts";
import type { Attempt, Delivery, ExecContext, Open, Outbox } from "./context.ts";
import { cancelSelf, finish, resendDone } from "./finish.ts";
import { replayAndApply } from "./apply.ts";
import { sendRetry } from "./retry.ts";
import { redispatch } from "../fan-out.ts";
import { taskOf } from "../task-of.ts";
import { replayLogged } from "./task-logs.ts";
import { durableWaitOf, isBuiltin } from "../../sdk/core/durable-waits.ts";
import { executeWait } from "../durable-waits.ts";
import { settingsFromEnv } from "../visibility.ts";

/**
 * How long a replay's claim on its parent lasts unless renewed: half the visibility lease (30 s by
 * default), renewed every third of it while the replay runs. A crashed holder's claim has then
 * expired when its message comes back, one visibility lease after the last visibility heartbeat (at
 * least two thirds of a lease after the crash: lambdas/visibility.ts), so its redelivery is not
 * made to wait.
 */
const replayLeaseMs = (): number => settingsFromEnv().visibilityTimeoutSeconds * 500;

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
  // Succeeds with a stored value instead of running: a cache hit, or a call a recovery reuses.
  const answer = (value: string, cnt: CounterItem | undefined, how: { cached: true } | { reused: string }) =>
    finish({
      rt,
      m,
      outbox,
      delivery,
      status: "SUCCEEDED",
      outcome: { ok: true, value },
      cnt,
      startedAt: begun,
      ...how,
    });
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
      const def = taskOf(m);
      if (def) await sendRetry(rt, m, retryDelayMs(def.retries, m.attempt));
      return;
    }
  }
  // A retry may start up to a second early; a durable wait (a sleep) ends late, never early.
  if (m.notBefore !== undefined && m.notBefore > rt.now() + (isBuiltin(m.task) ? 0 : 1000)) {
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
    // The parent cancelled children: one cancelled before it started never starts (its outcome
    // is written). A redelivery reads its own record below anyway (recorded).
    if (pc.cx && m.epoch === 0 && !delivery.redelivered) {
      const own = await readAction(rt, m.run, m.parent, m.id);
      if (own?.outcome !== undefined) return;
    }
  }

  // A call that succeeded in a run this one recovers returns that outcome without running (as a
  // cache hit does): one read per source run, in this child's own invocation.
  if (m.epoch === 0 && m.parent !== null && m.tw?.length) {
    const reused = await readReusable(rt, m.tw);
    if (reused) {
      return answer(reused.value, undefined, { reused: reused.run });
    }
  }

  const wait = durableWaitOf(m.task, m.args);
  if (wait) return executeWait(rt, m, wait, outbox, delivery);

  const def = taskOf(m);
  if (!def) {
    // Removed by an upgrade: fail for good, cancelling what the action started if it is a parent.
    const error = { ...serializeError(removedTaskError(m.task)), nonRecoverable: true, attempts: m.attempt };
    // Its children are swept by the coordinator, a page at a time (loading its whole history here
    // would grow with them).
    const cnt = await readCounter(rt, m.id);
    if (cnt?.epoch !== undefined)
      outbox.push({ msg: sweepOf(m.run, m.id, `its task ${m.task} was removed`) });
    return finish({ rt, m, outbox, delivery, status: "FAILED", outcome: { ok: false, error }, cnt });
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

  const key = m.epoch === 0 ? cacheLookup(def, m.args) : undefined;
  if (key) {
    const value = await readCached(rt, key);
    if (value !== undefined) return answer(await resolvePayload(rt.payloads, value), cnt, { cached: true });
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
    first = await replayLogged(rt, m, { task: def, args, actionId: m.id, history: emptyHistory() });
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
    // This replay's own token: a twin invocation of the same message gets another.
    const claim: ReplayClaim | undefined = ending
      ? undefined
      : { action: m.id, epoch: cnt.epoch, ms: replayLeaseMs(), owner: `${delivery.id}/${randomUUID()}` };
    if (claim && !(await claimReplay(rt, claim))) {
      // Another delivery of this resume is replaying: look again once its claim may have expired.
      const left = (cnt.leaseEpoch === cnt.epoch ? (cnt.lease ?? 0) : 0) - rt.now();
      await sendExecs(rt, [{ msg: m, delayMs: Math.max(1000, Math.min(left, claim.ms) + 500) }]);
      return;
    }
    const renewal =
      claim &&
      setInterval(() => {
        renewReplay(rt, claim).catch((e: unknown) =>
          rt.log.warn("renewing a replay's lease failed", { action: m.id, error: String(e) }),
        );
      }, claim.ms / 3).unref();
    try {
      const loaded = await loadHistory(rt, m.id, snap.co + snap.ce);
      history = loaded.history;
      // A parent's attempt began at its first execution (recorded with its first suspension).
      at.startedAt = loaded.self?.startedAt ?? begun;
      if (claim) at.lease = claim;
      return await replayAndApply({ rt, m, def, args, history, cnt, snap, outbox, at });
    } catch (e) {
      if (claim) await releaseReplay(rt, claim).catch(() => undefined);
      throw e;
    } finally {
      clearInterval(renewal);
    }
  }
  return replayAndApply({ rt, m, def, args, history, cnt, snap, outbox, at }, first);
}

/**
 * An exec for an action that has a counter (it suspended before): "replay" it at this epoch,
 * "ending" (it ended and crashed before writing its outcome: replay to finish, without a claim),
 * or "done" (a redelivery of an earlier epoch, whose leftovers are finished here, or stale).
 */
export async function known(
  rt: Runtime,
  m: ExecMessage,
  def: TaskDef,
  cnt: CounterItem,
  outbox: Outbox,
  delivery: Delivery,
): Promise<"replay" | "ending" | "done"> {
  if (cnt.st === "E") {
    if (await resendDone(rt, m, outbox, delivery)) return "done";
    // Ended by its own finish, which crashed before the outcome: replay to that end. Ended by
    // another (a deadline check, a cancel) that has not written the outcome yet: that ender (or its
    // redelivery) writes it; a replay here would write an outcome of its own (a child cancelled
    // by the same end would fail it with CancelledError instead of TaskTimeoutError).
    return cnt.eb === "other" ? "done" : "ending";
  }
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
export async function recorded(rt: Runtime, m: ExecMessage, def: TaskDef, outbox: Outbox): Promise<boolean> {
  const own = (await readAction(rt, m.run, m.parent, m.id)) as ResultItem | undefined;
  if (own?.outcome !== undefined) {
    outbox.push({ msg: doneOf(m, m.parent!, own.status === "SUCCEEDED") });
    return true;
  }
  if (own?.attempt === m.attempt + 1) await sendRetry(rt, m, retryDelayMs(def.retries, m.attempt));
  return (own?.attempt ?? m.attempt) > m.attempt;
}
