/** An attempt's deadline check: sent with its first execution, carried out by the coordinator (coord/deadline.ts). */
import { findTask } from "../../sdk/registry.ts";
import { MESSAGE_VERSION, actionOf } from "../../sdk/aws/messages.ts";
import type { ExecMessage, TimeoutMessage } from "../../sdk/aws/messages.ts";
import type { Runtime } from "../../sdk/aws/runtime.ts";
import type { Outbox } from "./context.ts";

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
