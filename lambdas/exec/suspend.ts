/** Committing a suspension: the epoch's claim and traces, its calls, windows, the counter, then sends. */
import type { Decision } from "../../sdk/core/replay.ts";
import { actionOf } from "../../sdk/aws/messages.ts";
import { maybeResume } from "../resume.ts";
import { LeaseLost, commitSuspension, holdReplay, readCounter } from "../../sdk/aws/store/counters.ts";
import { EpochTaken, claimEpoch, writeCalls } from "../../sdk/aws/store/history.ts";
import { expiry } from "../../sdk/aws/store/table.ts";
import { triggerFor } from "../../sdk/aws/store/trigger.ts";
import { createWindowPart, isHosted, planWindows, releaseToken } from "../../sdk/aws/store/windows.ts";
import { writeSelf } from "../../sdk/aws/store/history.ts";
import type { Open } from "./context.ts";
import type { Replaying } from "./context.ts";
import { dispatchEpoch, redispatch } from "../fan-out.ts";
import { cancelCalls } from "../../sdk/aws/store/cancel.ts";
import { registerCallbacks } from "../../sdk/aws/store/callbacks.ts";
import { sendToCoordinator } from "../../sdk/aws/transport/dispatch.ts";
import { twinsOf } from "../../sdk/core/recover.ts";

export async function suspend(r: Replaying, d: Decision & { kind: "suspended" }): Promise<Open | void> {
  const { rt, m, def, history, cnt, snap, at } = r;
  const from = cnt?.epoch ?? 0;
  const epoch = from + 1;
  const expiresAt = expiry(rt.now(), rt.config.retentionDays, 7);
  // Order matters: the claim of the epoch with its traces (one delivery's decision is the epoch's),
  // then calls, then the counter (the commit of the suspension), then sends. A crash anywhere
  // before the counter leaves no effect but the owner's items, which its redelivery rewrites
  // alike; after it, the redelivered message redoes the sends (resume.ts).
  try {
    // A resume's replay holds its parent's lease: it owns the epoch under the lease's token. A first
    // execution (no counter, no lease) claims it by its message id: twins of it replay an empty
    // history, so they decide alike (traces aside: claimEpoch).
    const owner =
      at.lease === undefined
        ? { by: at.delivery.id, attempt: m.attempt, leased: false }
        : { by: at.lease.owner, attempt: m.attempt, leased: true };
    await claimEpoch(rt, m.run, m.id, epoch, owner, d.traces, expiresAt);
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
  // In a recovered run each call carries where its outcome is in the source runs.
  const tw = m.tw;
  const calls = tw ? d.calls.map((c) => ({ ...c, tw: twinsOf(tw, c) })) : d.calls;
  // Chunk puts are unconditional: a replay that outlived its lease must not overwrite the calls of
  // the one that took it over (and replayed on top of this one's claim, so decided more).
  const lease = at.lease;
  let stored;
  try {
    stored = await writeCalls(
      rt,
      m.run,
      m.id,
      epoch,
      calls,
      expiresAt,
      lease && (() => holdReplay(rt, lease)),
    );
  } catch (e) {
    if (!(e instanceof LeaseLost)) throw e;
    rt.log.info("this replay lost its lease; the replay that took it over commits the epoch", {
      action: m.id,
      epoch,
    });
    return;
  }
  // Callbacks are known before the commit: no child that hands an id out starts before it.
  await registerCallbacks(rt, m.run, m.id, d.calls, expiresAt);
  // Children the replay cancelled are stopped before the commit: a crash before it replays to the
  // same cancels (idempotent writes), and none of those dispatched below starts (CounterItem.cx).
  if (d.cancels.length) {
    const sweeps = await cancelCalls(rt, m.run, m.id, def.name, d.cancels);
    await sendToCoordinator(
      rt,
      sweeps.map((msg) => ({ msg })),
    );
  }
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
    ...(d.cancels.length ? { cancels: true } : {}),
    ...(lease === undefined ? {} : { lease: lease.owner }),
  });
  const by = [releaseToken(at.delivery.id)];
  if (!committed) {
    // This delivery's own earlier attempt committed it and crashed before its sends, or a replay
    // that took over this one's lease committed it (finish the sends from the stored state), or
    // the action was ended before its first commit (nothing to do).
    const now = await readCounter(rt, m.id);
    if (now && now.st !== "E" && now.epoch === epoch) {
      if ((now.disp ?? 0) < epoch) await redispatch(rt, now, { run: m.run, id: m.id, task: def.name });
      else await maybeResume(rt, m.id, now, by, m);
    }
    return "open";
  }
  if (stored.length)
    await dispatchEpoch(
      rt,
      { run: m.run, id: m.id, task: def.name, epoch, at: committed.ct },
      stored,
      windows,
      by,
      m,
    );
  // Completions counted while this replay ran may already satisfy the new wait.
  else await maybeResume(rt, m.id, committed, by, m);
  return "open";
}
