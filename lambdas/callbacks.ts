/**
 * Callbacks on AWS (sdk/aws/store/callbacks.ts has the item and who decides; docs/aws.md
 * "Callbacks"). A callback's exec attaches itself to its item and, with a timeout, sends itself
 * again delayed to it; a completer's `callback` message reaches the coordinator. Whichever finds
 * the item both ended (`done`) and attached (`x`) writes the outcome, as any child's, once.
 */
import type { DurableWait } from "../sdk/core/durable-waits.ts";
import { dueOutcome, shownId } from "../sdk/core/durable-waits.ts";
import { ConfigurationError, serializeError } from "../sdk/errors.ts";
import type { ExecMessage } from "../sdk/aws/messages.ts";
import type { Runtime } from "../sdk/aws/runtime.ts";
import { sendExecs } from "../sdk/aws/transport/dispatch.ts";
import type { CallbackItem } from "../sdk/aws/store/callbacks.ts";
import { attachExec, callbackOutcome, readCallback, timeOutCallback } from "../sdk/aws/store/callbacks.ts";
import type { Delivery, Outbox } from "./exec/context.ts";
import { finish, waitOver } from "./exec/finish.ts";

/** The exec of a callback wait: its first (attach, arm the timeout) or its timeout's. */
export async function executeCallback(
  rt: Runtime,
  m: ExecMessage,
  w: DurableWait & { kind: "callback" },
  outbox: Outbox,
  delivery: Delivery,
): Promise<void> {
  const startedAt = m.dw?.at ?? rt.now();
  const timeoutPhase = m.notBefore !== undefined;
  if ((delivery.redelivered || timeoutPhase) && (await waitOver(rt, m, outbox, delivery))) return;
  let item = await attachExec(rt, m, w.secret);
  if (!item) {
    // Registered with its suspension, so only an item that expired (or a stack that lost it) is missing.
    const e = new ConfigurationError(
      `callback ${shownId(m.run, w.secret)} has no record in the table (expired?): it can never be completed`,
    );
    return finish({
      rt,
      m,
      outbox,
      delivery,
      status: "FAILED",
      outcome: { ok: false, error: serializeError(e) },
      startedAt,
    });
  }
  // The timeout's exec: the callback times out unless a completion got there first.
  if (timeoutPhase && item.done === undefined)
    item = (await timeOutCallback(rt, item, dueOutcome(w))) ?? item;
  if (item.done !== undefined) return settleCallback(rt, item, outbox, delivery);
  if (w.timeoutMs !== undefined && !timeoutPhase) {
    const due = startedAt + w.timeoutMs;
    await sendExecs(rt, [{ msg: { ...m, notBefore: due }, delayMs: Math.max(0, due - rt.now()) }]);
  }
}

/** Writes the outcome of a callback that ended (once: finish's write is conditional) and tells its parent. */
async function settleCallback(
  rt: Runtime,
  item: CallbackItem,
  outbox: Outbox,
  delivery: Delivery,
): Promise<void> {
  const m = JSON.parse(item.x!) as ExecMessage;
  const outcome = await callbackOutcome(rt, item);
  await finish({ rt, m, outbox, delivery, status: item.done!, outcome, startedAt: m.dw?.at ?? rt.now() });
}

/**
 * A completer's `callback` message (or the reconciler's): settle the callback if it ended and its
 * exec has attached; if its exec has not run yet, that exec settles it.
 */
export async function callbackCompleted(
  rt: Runtime,
  run: string,
  secret: string,
  outbox: Outbox,
  delivery: Delivery,
): Promise<void> {
  const item = await readCallback(rt, run, secret);
  if (item?.done !== undefined && item.x !== undefined) await settleCallback(rt, item, outbox, delivery);
}
