/**
 * Durable waits on AWS (sdk/core/durable-waits.ts; docs/aws.md "Sleep and signals"). A wait is a
 * child call whose exec message no body runs:
 *
 * - `sleep`: its exec is sent delayed to its due time (`notBefore`; SQS delays at most 900 s, so a
 *   longer sleep hops: run-action.ts re-delays until the time has come, never before). On receipt
 *   its outcome is written as any child's, once (store/results.ts), and its parent told.
 * - `waitForSignal`: its first exec records the wait (store/signals.ts) and pairs it with the first
 *   unconsumed signal of its name, if any; with a timeout, it sends itself again delayed to the
 *   timeout, when it marks the wait timed out unless a signal got there first. A signal's sender
 *   stores it and tells the coordinator, which pairs it with the first open wait.
 *
 * Whoever pairs, or times out, writes the outcome; a crash in between leaves the record from
 * which the next look (a redelivery of either message) finishes it.
 */
import type { CallRecord } from "../sdk/core/history.ts";
import type { DurableWait } from "../sdk/core/durable-waits.ts";
import { durableWaitOf, dueOutcome } from "../sdk/core/durable-waits.ts";
import type { ExecMessage } from "../sdk/aws/messages.ts";
import type { Runtime } from "../sdk/aws/runtime.ts";
import { sendExecs } from "../sdk/aws/transport/dispatch.ts";
import type { WaitItem } from "../sdk/aws/store/signals.ts";
import {
  TIMED_OUT,
  dropWait,
  nextSignal,
  pair,
  registerWait,
  signalPayload,
  timeOut,
  waitKey,
  waitsOf,
} from "../sdk/aws/store/signals.ts";
import type { Delivery, Outbox } from "./exec/context.ts";
import { finish } from "./exec/finish.ts";

/**
 * The exec of a durable wait as dispatched at `now`, `pos`-th of its dispatch: a sleep delayed to
 * its due time; a signal wait stamped with its place in the order waits take signals.
 */
export function waitExec(
  c: Pick<CallRecord, "task" | "args">,
  msg: ExecMessage,
  now: number,
  pos: number,
): { msg: ExecMessage; delayMs?: number } | undefined {
  const w = durableWaitOf(c.task, c.args);
  if (!w) return undefined;
  msg.dw = { at: now, pos };
  if (w.kind === "signal") return { msg };
  msg.notBefore = now + w.ms;
  return { msg, delayMs: w.ms };
}

/** Pairs after this many lost races are left to the next look (a redelivery, the next signal). */
const MAX_ROUNDS = 50;

/** Carries out the exec of a durable wait whose time has come (run-action.ts checked `notBefore`). */
export async function executeWait(
  rt: Runtime,
  m: ExecMessage,
  w: DurableWait,
  outbox: Outbox,
  delivery: Delivery,
): Promise<void> {
  if (w.kind === "timer")
    return finish({
      rt,
      m,
      outbox,
      delivery,
      status: "SUCCEEDED",
      outcome: dueOutcome(w),
      startedAt: m.dw?.at ?? rt.now(),
    });
  const rec = await registerWait(rt, m, w.name);
  if (rec.got !== undefined) return settle(rt, rec, outbox, delivery);
  if (m.notBefore !== undefined) {
    // The timeout's exec: the wait times out unless a signal got to it first.
    const now = await timeOut(rt, rec);
    if (now) await settle(rt, now, outbox, delivery);
    return;
  }
  await matchSignals(rt, m.run, w.name, outbox, delivery);
  if (w.timeoutMs !== undefined) {
    const due = (m.dw?.at ?? rt.now()) + w.timeoutMs;
    await sendExecs(rt, [{ msg: { ...m, notBefore: due }, delayMs: Math.max(0, due - rt.now()) }]);
  }
}

/**
 * Hands the run's unconsumed signals of `name` to its open waits, in order (both sides call this:
 * the wait's first exec, and the coordinator on a signal message). Waits already paired or timed
 * out, whose outcome a crash may have left unwritten, are finished first.
 */
export async function matchSignals(
  rt: Runtime,
  run: string,
  name: string,
  outbox: Outbox,
  delivery: Delivery,
): Promise<void> {
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const waits = await waitsOf(rt, run, name);
    for (const w of waits) if (w.got !== undefined) await settle(rt, w, outbox, delivery);
    const open = waits.filter((w) => w.got === undefined);
    if (!open.length) return;
    const s = await nextSignal(rt, run, name);
    if (!s) return;
    const r = await pair(rt, open[0]!, s);
    if (r === "ended") await dropWait(rt, open[0]!);
    // "paired": settled at the top of the next round; "taken": someone else paired; look again.
  }
  rt.log.warn("signal matching left work for the next look", { run, name });
}

/** Writes the outcome of a wait that was paired or timed out (once), tells its parent, clears it. */
async function settle(rt: Runtime, w: WaitItem, outbox: Outbox, delivery: Delivery): Promise<void> {
  const m = JSON.parse(w.x) as ExecMessage;
  const wait = durableWaitOf(m.task, m.args)!;
  const startedAt = m.dw?.at ?? rt.now();
  if (w.got === TIMED_OUT)
    await finish({ rt, m, outbox, delivery, status: "TIMED_OUT", outcome: dueOutcome(wait), startedAt });
  else {
    const value = await signalPayload(rt, m.run, w.got!);
    await finish({ rt, m, outbox, delivery, status: "SUCCEEDED", outcome: { ok: true, value }, startedAt });
  }
  await dropWait(rt, waitKey(m, w.name));
}
