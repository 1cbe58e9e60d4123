/**
 * Sending work: child calls to their environment's executor queue (batched, ten per request),
 * resumes of parents, completions and timeout checks to the coordinator queue.
 */
import type { CallRecord } from "../sdk/core/history.ts";
import { findTask } from "../sdk/registry.ts";
import { MESSAGE_VERSION } from "./messages.ts";
import type { DoneMessage, ExecMessage, SweepMessage, TimeoutMessage } from "./messages.ts";
import { sendMessages } from "./runtime.ts";
import type { OutMessage, Runtime } from "./runtime.ts";

/** The executor queue of `task`'s environment; `fallback` (the caller's env) for an unknown task, whose executor fails it clearly. */
export function queueOf(rt: Runtime, task: string, fallbackEnv?: string): string {
  const env = findTask(task)?.env ?? fallbackEnv;
  const url = env === undefined ? undefined : rt.config.executorQueues[env];
  if (url) return url;
  const first = Object.values(rt.config.executorQueues)[0];
  if (!first)
    throw new Error(
      `no executor queue is configured (${Object.keys(rt.config.executorQueues).join(", ") || "none"})`,
    );
  return first;
}

export function execOf(run: string, c: CallRecord, attempt = 1, epoch = 0): ExecMessage {
  const m: ExecMessage = {
    k: "exec",
    v: MESSAGE_VERSION,
    run,
    id: c.id,
    parent: c.parent,
    task: c.task,
    group: c.group,
    args: c.args,
    attempt,
    epoch,
  };
  if (c.window) m.window = c.window.key;
  return m;
}

/** Sends exec messages, grouped per destination queue. */
export async function sendExecs(
  rt: Runtime,
  msgs: { msg: ExecMessage; delayMs?: number; fallbackEnv?: string }[],
): Promise<void> {
  const byQueue = new Map<string, OutMessage[]>();
  for (const { msg, delayMs, fallbackEnv } of msgs) {
    const q = queueOf(rt, msg.task, fallbackEnv);
    const list = byQueue.get(q) ?? [];
    byQueue.set(q, list);
    const delay = delayMs && delayMs > 0 ? delayMs / 1000 : 0;
    // SQS delays at most 900 s; a longer backoff carries notBefore and is re-delayed on receipt.
    if (delay > 900) msg.notBefore = rt.now() + (delayMs ?? 0);
    list.push({ body: JSON.stringify(msg), ...(delay > 0 ? { delaySeconds: Math.min(900, delay) } : {}) });
  }
  await Promise.all([...byQueue].map(([q, list]) => sendMessages(rt, q, list)));
}

export async function sendToCoordinator(
  rt: Runtime,
  msgs: { msg: DoneMessage | TimeoutMessage | SweepMessage; delaySeconds?: number }[],
): Promise<void> {
  if (!msgs.length) return;
  await sendMessages(
    rt,
    rt.config.coordinatorQueue,
    msgs.map((m) => ({
      body: JSON.stringify(m.msg),
      ...(m.delaySeconds ? { delaySeconds: m.delaySeconds } : {}),
    })),
  );
}
