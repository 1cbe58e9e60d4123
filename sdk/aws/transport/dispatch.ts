/**
 * Sending work: child calls and parents' resumes to their environment's executor queue (batched,
 * ten per request); completions, deadline checks and sweeps to the coordinator queue.
 */
import type { CallRecord } from "../../core/history.ts";
import type { WindowTag } from "../messages.ts";
import { executorFor, findEnvironment, findTask } from "../../registry.ts";
import { MESSAGE_VERSION } from "../messages.ts";
import type {
  DispatchMessage,
  SignalMessage,
  CallbackMessage,
  DoneMessage,
  DonesMessage,
  ExecMessage,
  RecheckMessage,
  ResendMessage,
  SweepMessage,
  TimeoutMessage,
} from "../messages.ts";
import { sendMessages } from "./send.ts";
import type { Runtime } from "../runtime.ts";
import type { OutMessage } from "./send.ts";

/**
 * The executor queue of `task`'s environment — of its smallest executor of at least `memoryMiB`, for
 * a call an override gave memory; `fallbackEnv` (the caller's) for an unknown task, whose executor
 * fails it clearly.
 */
export function queueOf(rt: Runtime, task: string, fallbackEnv?: string, memoryMiB?: number): string {
  const env = findTask(task)?.env ?? fallbackEnv;
  const spec = env === undefined ? undefined : findEnvironment(env);
  // A size the stack does not deploy was refused at `override`; an older stack without it runs the call
  // on the environment's own executor rather than losing it.
  const sized = spec && memoryMiB !== undefined ? executorFor(spec, memoryMiB)?.key : undefined;
  const url =
    (sized && rt.config.executorQueues[sized]) ||
    (env === undefined ? undefined : rt.config.executorQueues[env]);
  if (url) return url;
  const first = Object.values(rt.config.executorQueues)[0];
  if (!first)
    throw new Error(
      `no executor queue is configured (${Object.keys(rt.config.executorQueues).join(", ") || "none"})`,
    );
  return first;
}

/** The first exec of a recorded call; `tag` names the window slot it holds, for a windowed map item. */
export function execOf(run: string, c: CallRecord, tag?: WindowTag): ExecMessage {
  const m: ExecMessage = {
    k: "exec",
    v: MESSAGE_VERSION,
    run,
    id: c.id,
    parent: c.parent,
    task: c.task,
    group: c.group,
    args: c.args,
    attempt: 1,
    epoch: 0,
  };
  if (tag) Object.assign(m, tag);
  if (c.settings) m.o = c.settings;
  if (c.tw) m.tw = c.tw;
  return m;
}

/** Sends exec messages, grouped per destination queue. */
export async function sendExecs(
  rt: Runtime,
  msgs: { msg: ExecMessage; delayMs?: number; fallbackEnv?: string }[],
): Promise<void> {
  const byQueue = new Map<string, OutMessage[]>();
  for (const { msg, delayMs, fallbackEnv } of msgs) {
    const q = queueOf(rt, msg.task, fallbackEnv, msg.o?.memoryMiB);
    const list = byQueue.get(q) ?? [];
    byQueue.set(q, list);
    const delay = delayMs && delayMs > 0 ? delayMs / 1000 : 0;
    // SQS delays at most 900 s; a longer backoff carries notBefore and is re-delayed on receipt.
    if (delay > 900) msg.notBefore = rt.now() + (delayMs ?? 0);
    list.push({ body: JSON.stringify(msg), ...(delay > 0 ? { delaySeconds: Math.min(900, delay) } : {}) });
  }
  await Promise.all([...byQueue].map(([q, list]) => sendMessages(rt, q, list)));
}

/** Completions per `dones` message: ≈200 bytes each, ≈50 KB, one 64 KB billing chunk (SQS allows 256 KiB). */
export const DONES_PER_MESSAGE = 250;

/**
 * Sends to the coordinator. Completions are packed into `dones` messages (one SQS message for a
 * whole executor batch, not one per child): the coordinator then receives ten batches' completions
 * in one receive, and counts them with one counter update per parent.
 */
export async function sendToCoordinator(
  rt: Runtime,
  msgs: {
    msg:
      | DoneMessage
      | TimeoutMessage
      | SweepMessage
      | DispatchMessage
      | SignalMessage
      | CallbackMessage
      | ResendMessage
      | RecheckMessage;
    delaySeconds?: number;
  }[],
): Promise<void> {
  if (!msgs.length) return;
  const done: DoneMessage[] = [];
  const out: OutMessage[] = [];
  for (const m of msgs) {
    if (m.msg.k === "done" && !m.delaySeconds) done.push(m.msg);
    else
      out.push({ body: JSON.stringify(m.msg), ...(m.delaySeconds ? { delaySeconds: m.delaySeconds } : {}) });
  }
  if (done.length === 1) out.push({ body: JSON.stringify(done[0]) });
  else
    for (let i = 0; i < done.length; i += DONES_PER_MESSAGE) {
      const packed: DonesMessage = {
        k: "dones",
        v: MESSAGE_VERSION,
        d: done.slice(i, i + DONES_PER_MESSAGE).map(({ k: _k, v: _v, ...rest }) => rest),
      };
      out.push({ body: JSON.stringify(packed) });
    }
  await sendMessages(rt, rt.config.coordinatorQueue, out);
}
