/** Starting a run (once, however often its start message is delivered), and failing one a malformed message names. */
import { ConfigurationError, serializeError } from "../../sdk/errors.ts";
import { findTask, getTask } from "../../sdk/registry.ts";
import { sendExecs } from "../../sdk/aws/transport/dispatch.ts";
import { MESSAGE_VERSION } from "../../sdk/aws/messages.ts";
import type { ExecMessage, StartMessage } from "../../sdk/aws/messages.ts";
import type { Runtime } from "../../sdk/aws/runtime.ts";
import { writeTerminal } from "../../sdk/aws/store/results.ts";
import { newRunItem } from "../../sdk/aws/store/table.ts";
import { formatOutcome } from "../../sdk/core/history.ts";
import { rootTwins } from "../../sdk/core/recover.ts";
import { createRun, markStarted, readRun } from "../../sdk/aws/store/runs.ts";

export function rootExec(
  m: { run: string; task: string; args: string; rec?: string[] | undefined },
  attempt = 1,
): ExecMessage {
  const msg: ExecMessage = {
    k: "exec",
    v: MESSAGE_VERSION,
    run: m.run,
    id: m.run,
    parent: null,
    task: m.task,
    group: "",
    args: m.args,
    attempt,
    epoch: 0,
  };
  // A recovery: the root's twins are the source runs' roots (sdk/core/recover.ts).
  const tw = rootTwins(m.rec ?? []);
  if (tw) msg.tw = tw;
  return msg;
}

export async function startRun(rt: Runtime, m: StartMessage): Promise<void> {
  const def = findTask(m.task);
  let failure: string | undefined;
  if (!def) {
    try {
      getTask(m.task);
    } catch (e) {
      failure = formatOutcome({ ok: false, error: { ...serializeError(e), nonRecoverable: true } });
    }
  }
  const item = newRunItem(
    { run: m.run, task: m.task, args: m.args, created: m.created, ...(m.rec ? { rec: m.rec } : {}) },
    failure === undefined
      ? undefined
      : { outcome: failure, now: rt.now(), retentionDays: rt.config.retentionDays },
  );
  // A run is created once; a redelivered start finds it and only finishes what is missing.
  const run = (await createRun(rt, item)) ? item : ((await readRun(rt, m.run)) ?? item);
  if (run.status !== "RUNNING" || run.started) return;
  await sendExecs(rt, [{ msg: rootExec(m) }]);
  await markStarted(rt, m.run);
}

/**
 * Fails the run a malformed message names: a start that never created it creates it FAILED (so the
 * client waiting on it sees why), a running one ends FAILED; an ended one is left as it ended.
 */
export async function failRun(
  rt: Runtime,
  run: string,
  message: string,
  error: Error = new ConfigurationError(message),
): Promise<void> {
  const outcome = { ok: false as const, error: { ...serializeError(error), nonRecoverable: true } };
  const now = rt.now();
  const item = newRunItem(
    { run, task: "(unknown)", args: "[]", created: now },
    { outcome: formatOutcome(outcome), now, retentionDays: rt.config.retentionDays },
  );
  if (!(await createRun(rt, item)))
    await writeTerminal(rt, { run, parent: null, id: run, status: "FAILED", outcome, attempt: undefined });
}
