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
 * - `createCallback`: lambdas/callbacks.ts.
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
import type { SignalItem, WaitItem } from "../sdk/aws/store/signals.ts";
import {
  TIMED_OUT,
  dropItem,
  pair,
  readWait,
  registerWait,
  signalKey,
  signalPayload,
  signalsOf,
  timeOut,
  waitKey,
  waitsOf,
} from "../sdk/aws/store/signals.ts";
import { resolvePayload } from "../sdk/aws/payloads.ts";
import type { Delivery, Outbox } from "./exec/context.ts";
import { finish, waitOver } from "./exec/finish.ts";
import { executeCallback } from "./callbacks.ts";

/**
 * The exec of a durable wait made at `at` (its epoch's commit), `pos`-th call of its epoch, sent at
 * `now`: a sleep delayed to its due time; a signal wait stamped with its place in the order waits
 * take signals, and named in `signal` (the dispatcher registers it before sending: see
 * registerWaits). Both stamps are the same for every dispatch of the call, a redispatch too.
 */
export function waitExec(
  c: Pick<CallRecord, "task" | "args">,
  msg: ExecMessage,
  at: number,
  pos: number,
  now: number,
): { msg: ExecMessage; delayMs?: number; signal?: string } | undefined {
  const w = durableWaitOf(c.task, c.args);
  if (!w) return undefined;
  msg.dw = { at, pos };
  if (w.kind === "signal") return { msg, signal: w.name };
  if (w.kind !== "timer") return { msg };
  msg.notBefore = at + w.ms;
  return { msg, delayMs: Math.max(0, msg.notBefore - now) };
}

/**
 * Registers the signal waits of a dispatch before their execs are sent, so that a signal waiting
 * already goes to the first wait made, not to whichever wait's exec SQS delivers first: a matcher
 * (any of these waits' execs, or a signal's message) pairs the waits it finds in the order they
 * were made, and each was made before any of them could look.
 */
export async function registerWaits(
  rt: Runtime,
  out: { msg: ExecMessage; signal?: string }[],
): Promise<void> {
  await Promise.all(out.flatMap((o) => (o.signal === undefined ? [] : [registerWait(rt, o.msg, o.signal)])));
}

/** Rounds after which a matcher leaves the rest to the next look (a redelivery, the next signal). */
const MAX_ROUNDS = 20;
/** Signals one round reads (and so pairs) at most. */
const ROUND = 25;

/** Carries out the exec of a durable wait whose time has come (run-action.ts checked `notBefore`). */
export async function executeWait(
  rt: Runtime,
  m: ExecMessage,
  w: DurableWait,
  outbox: Outbox,
  delivery: Delivery,
): Promise<void> {
  const startedAt = m.dw?.at ?? rt.now();
  if (w.kind === "timer")
    return finish({ rt, m, outbox, delivery, status: "SUCCEEDED", outcome: dueOutcome(w), startedAt });
  if (w.kind === "callback") return executeCallback(rt, m, w, outbox, delivery);
  const timeoutPhase = m.notBefore !== undefined;
  // Registered when it was dispatched (registerWaits), and gone once its outcome is written: a
  // matcher may have paired it before this exec ran. An exec dispatched before waits were
  // registered at dispatch registers its own.
  let rec = await readWait(rt, m.run, waitKey(m, w.name).sk);
  if (!rec) {
    if (await waitOver(rt, m, outbox, delivery)) return;
    rec = await registerWait(rt, m, w.name);
  }
  if (rec.got !== undefined) return settle(rt, rec, outbox, delivery);
  if (timeoutPhase) {
    // The timeout's exec: the wait times out unless a signal got to it first.
    const now = await timeOut(rt, rec);
    if (now) await settle(rt, now, outbox, delivery);
    return;
  }
  await matchSignals(rt, m.run, w.name, outbox, delivery);
  if (w.timeoutMs !== undefined) {
    const due = startedAt + w.timeoutMs;
    await sendExecs(rt, [{ msg: { ...m, notBefore: due }, delayMs: Math.max(0, due - rt.now()) }]);
  }
}

/**
 * Hands the run's unconsumed signals of `name` to its open waits, in order (both sides call this:
 * a wait's first exec, and the coordinator on a signal message). Pairings and timeouts whose
 * outcome a crash may have left unwritten are finished first. A round reads the first signals and
 * as many waits as it can pair, so its reads follow what is open, not the run's history.
 */
export async function matchSignals(
  rt: Runtime,
  run: string,
  name: string,
  outbox: Outbox,
  delivery: Delivery,
): Promise<void> {
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const signals = await signalsOf(rt, run, name, ROUND);
    for (const s of signals) {
      if (s.by === undefined) continue;
      // Consumed, not cleared: its wait may lack its outcome (a crash after the pairing).
      const w = await readWait(rt, run, s.by);
      if (w?.got === s.sk) await settle(rt, w, outbox, delivery, s);
      else await dropItem(rt, s);
    }
    const free = signals.filter((s) => s.by === undefined);
    if (!free.length) return;
    const waits = await waitsOf(rt, run, name, free.length + ROUND);
    for (const w of waits) if (w.got === TIMED_OUT) await settle(rt, w, outbox, delivery);
    const open = waits.filter((w) => w.got === undefined);
    let lost = false;
    for (let i = 0; i < Math.min(open.length, free.length) && !lost; i++) {
      const r = await pair(rt, open[i]!, free[i]!);
      if (r === "paired") await settle(rt, { ...open[i]!, got: free[i]!.sk }, outbox, delivery, free[i]);
      else {
        // "ended": the wait's action ended (cancelled with its parent): drop it. Either way the
        // order of what is left changed: look again.
        if (r === "ended") await dropItem(rt, open[i]!);
        lost = true;
      }
    }
    const more = signals.length === ROUND || waits.length === free.length + ROUND;
    if (!lost && !(more && open.length > 0)) return;
  }
  rt.log.warn("signal matching left work for the next look", { run, name });
}

/**
 * Writes the outcome of a wait that was paired or timed out (once), tells its parent, and clears
 * the wait and the signal it took.
 */
async function settle(
  rt: Runtime,
  w: WaitItem,
  outbox: Outbox,
  delivery: Delivery,
  signal?: SignalItem,
): Promise<void> {
  const m = JSON.parse(w.x) as ExecMessage;
  const wait = durableWaitOf(m.task, m.args)!;
  const startedAt = m.dw?.at ?? rt.now();
  if (w.got === TIMED_OUT)
    await finish({ rt, m, outbox, delivery, status: "TIMED_OUT", outcome: dueOutcome(wait), startedAt });
  else {
    const value = signal
      ? await resolvePayload(rt.payloads, signal.payload)
      : await signalPayload(rt, m.run, w.got!);
    await finish({ rt, m, outbox, delivery, status: "SUCCEEDED", outcome: { ok: true, value }, startedAt });
  }
  await dropItem(rt, w);
  if (w.got !== TIMED_OUT) await dropItem(rt, signalKey(m.run, w.got!));
}
