/**
 * The coordinator's work on one batch: start runs, count completions per parent (one counter update
 * per parent per batch, however many children finished), advance map windows without replaying the
 * parent, resume parents whose wait may be satisfied, enforce deadlines, and sweep cancelled subtrees.
 */
import { retryDelayMs } from "../sdk/core/task-def.ts";
import type { TaskDef } from "../sdk/core/task-def.ts";
import { ConfigurationError, TaskTimeoutError, serializeError } from "../sdk/errors.ts";
import { findTask, getTask } from "../sdk/registry.ts";
import { sendExecs, sendToCoordinator } from "../sdk/aws/transport/dispatch.ts";
import { MESSAGE_VERSION, actionOf, doneOf } from "../sdk/aws/messages.ts";
import type {
  DoneMessage,
  ExecMessage,
  StartMessage,
  SweepMessage,
  TimeoutMessage,
} from "../sdk/aws/messages.ts";
import { maybeResume } from "./resume.ts";
import type { Runtime } from "../sdk/aws/runtime.ts";
import { sweepOf, sweepPage } from "../sdk/aws/store/cancel.ts";
import { addCompletions, endCounter, readCounter } from "../sdk/aws/store/counters.ts";
import { decodeChunk, fenceFirstEpoch, isFenced, loadActionItems } from "../sdk/aws/store/history.ts";
import { bumpAttempt, readAction, writeTerminal } from "../sdk/aws/store/results.ts";
import type { ResultItem, RunItem } from "../sdk/aws/store/table.ts";
import { expiry, newRunItem } from "../sdk/aws/store/table.ts";
import { isHosted, releaseHosted, releaseSlots, releaseToken, tagFrom } from "../sdk/aws/store/windows.ts";
import type { Release } from "../sdk/aws/store/windows.ts";
import { formatOutcome } from "../sdk/core/history.ts";
import { createRun, markStarted, readRun } from "../sdk/aws/store/runs.ts";
import { sendOccupants } from "./windows.ts";

function rootExec(m: { run: string; task: string; args: string }, attempt = 1): ExecMessage {
  return {
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
    { run: m.run, task: m.task, args: m.args, created: m.created },
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
 * Counts a batch's completions, from the coordinator or from an executor releasing a hosted
 * window: per parent, one write — the release of the slots of the window part its counter hosts,
 * which counts the batch's completions with it, or else one ADD — then one conditional update per
 * other window part, releasing the finished items' slots exactly once and letting the next items
 * out (state/windows.ts); then the parent's resume if its wait may be satisfied.
 */
export async function countCompletions(rt: Runtime, msgs: Delivered<DoneMessage>[]): Promise<void> {
  const byParent = new Map<
    string,
    { kids: Map<string, { msg: DoneMessage; tok: number }>; by: Set<number>; all: DoneMessage[] }
  >();
  for (const d of msgs) {
    const p = byParent.get(d.msg.parent) ?? {
      kids: new Map(),
      by: new Set<number>(),
      all: [] as DoneMessage[],
    };
    byParent.set(d.msg.parent, p);
    // The release token of the delivery that produced it (an executor's, handed over) or of this one.
    const tok = d.msg.tok ?? releaseToken(d.id);
    p.kids.set(d.msg.id, { msg: d.msg, tok }); // a duplicate inside one batch is counted once
    // Every message's token, duplicates included: a resume one of them decided and did not mark
    // sent is sent again by its redelivery (resume.ts).
    p.by.add(tok);
    p.all.push({ ...d.msg, tok });
  }
  // A parent whose counting fails (throttled, a transient error) must not fail the others: its
  // completions alone go back to the coordinator queue, each with the token of the delivery that
  // produced it — duplicates too, so every token of the batch comes back — and whatever the failed
  // attempt committed (a window's moves, a resume mark) is found as theirs (state/windows.ts).
  // The batch is retried as a whole only if that send fails too — then parents counted here are
  // counted again, which only resumes them early (docs/aws.md).
  const failed: DoneMessage[] = [];
  let firstError: unknown;
  await Promise.all(
    [...byParent].map(async ([parent, { kids, by, all }]) => {
      try {
        await countParent(rt, parent, kids, by);
      } catch (e) {
        firstError ??= e;
        rt.log.warn("counting a parent's completions failed; they go back to the queue", {
          parent,
          count: kids.size,
          error: String(e),
        });
        failed.push(...all);
      }
    }),
  );
  if (!failed.length) return;
  // A completion whose count keeps failing is not requeued for ever: after REQUEUES the batch
  // fails, its messages are delivered again and, if it still fails, dead-letter (and the DLQ
  // consumer fails the parent) — every message ends somewhere.
  if (!countOptions.requeue || failed.some((d) => (d.rq ?? 0) >= REQUEUES)) throw firstError;
  await sendToCoordinator(
    rt,
    failed.map((msg) => ({ msg: { ...msg, rq: (msg.rq ?? 0) + 1 } })),
  );
}

/** Times a completion is requeued before its batch is failed instead. */
const REQUEUES = 3;

/** Tests turn this off to see a failing parent fail its whole batch (the behaviour it replaced). */
export const countOptions = { requeue: true };

async function countParent(
  rt: Runtime,
  parent: string,
  kids: Map<string, { msg: DoneMessage; tok: number }>,
  by: Set<number>,
): Promise<void> {
  // Completions of the window part the counter hosts are counted by its release (exactly once
  // each); all others here, with it if there is one, else in one ADD.
  const others = { ok: 0, err: 0 };
  let run = "";
  let hosted: { name: string; items: Release[] } | undefined;
  const windows = new Map<string, Release[]>();
  for (const { msg: k, tok } of kids.values()) {
    run = k.run;
    const tag = tagFrom(k);
    const release = tag && { ...tag, ok: k.ok, tok };
    if (release && isHosted(release.window)) {
      hosted ??= { name: release.window, items: [] };
      if (hosted.name === release.window) {
        hosted.items.push(release);
        continue;
      }
    }
    if (k.ok) others.ok++;
    else others.err++;
    if (release) {
      const list = windows.get(release.window) ?? [];
      windows.set(release.window, list);
      list.push(release);
    }
  }
  const { cnt, freed } = hosted
    ? await releaseHosted(rt, parent, hosted.name, hosted.items, others)
    : { cnt: await addCompletions(rt, parent, others.ok, others.err), freed: [] };
  await sendOccupants(rt, run, parent, freed);
  if (!cnt) {
    rt.log.debug("completions for an ended or unknown parent ignored", { parent, count: kids.size });
    return;
  }
  await Promise.all(
    [...windows].map(async ([name, items]) =>
      sendOccupants(rt, run, parent, await releaseSlots(rt, parent, name, items)),
    ),
  );
  await maybeResume(rt, parent, cnt, [...by]);
}

/** A message with the SQS id of its delivery (kept across redeliveries of the same message). */
export interface Delivered<M> {
  id: string;
  msg: M;
}

/** At an attempt's deadline: nothing if it ended; else a retry or a TIMED_OUT outcome. */
export async function checkTimeout(rt: Runtime, m: TimeoutMessage, messageId: string): Promise<void> {
  const left = m.deadline - rt.now();
  if (left > 1000) {
    await sendToCoordinator(rt, [{ msg: m, delaySeconds: Math.min(900, Math.ceil(left / 1000)) }]);
    return;
  }
  const item = await readAction(rt, m.run, m.parent, m.id);
  if (m.parent === null) {
    if (!item || (item as RunItem).status !== "RUNNING") return;
  } else if (item?.outcome !== undefined) {
    // This check wrote TIMED_OUT on an earlier delivery and crashed before counting it: count again
    // (an over-count only resumes early). Any other outcome was reported by whoever wrote it.
    if (item.status === "TIMED_OUT" && item.attempt === m.attempt) {
      await countCompletions(rt, [{ id: messageId, msg: doneOf(m, m.parent, false) }]);
    }
    return;
  }
  const def = findTask(m.task);
  if ((item?.attempt ?? 1) !== m.attempt) {
    // A later attempt is running — or this check started it and died before sending it (the fence
    // it wrote says so): send it again (a duplicate exec of it is recorded once).
    if (def && item?.attempt === m.attempt + 1 && (await isFenced(rt, m.id, m.attempt)))
      await sendCheckRetry(rt, m, item, def);
    return;
  }
  const cnt = await readCounter(rt, m.id);
  const x = expiry(rt.now(), rt.config.retentionDays, 7);
  const error = serializeError(
    new TaskTimeoutError(`task ${m.task} timed out after ${m.timeoutMs} ms (attempt ${m.attempt})`),
  );
  // A retry only for an action that never suspended — and only once this attempt is fenced off its
  // first suspension, so it cannot commit one while the retry runs (state/history.ts claimEpoch).
  if (def && !cnt && m.attempt <= def.retries.count && (await fenceFirstEpoch(rt, m.id, m.attempt, x))) {
    if (await bumpAttempt(rt, m.run, m.parent, m.id, m.attempt)) await sendCheckRetry(rt, m, item, def);
    return;
  }
  // Ended first (also an attempt still committing its first suspension: that commit then fails),
  // its descendants swept (in pages, by the coordinator), then its outcome.
  const kids = (await endCounter(rt, m.id)) || (cnt !== undefined && cnt.st !== "E");
  if (kids) await sendToCoordinator(rt, [{ msg: sweepOf(m.run, m.id, `its ancestor ${m.task} timed out`) }]);
  const w = await writeTerminal(rt, {
    run: m.run,
    parent: m.parent,
    id: m.id,
    status: "TIMED_OUT",
    outcome: { ok: false, error: { ...error, attempts: m.attempt } },
    attempt: m.attempt,
    kids,
  });
  if (w.written && m.parent !== null)
    // A timed-out item of a windowed map frees its slot (its check carries the slot).
    await countCompletions(rt, [{ id: messageId, msg: doneOf(m, m.parent, false) }]);
}

/** The next attempt of the action a check timed out; it keeps the window slot the action holds. */
async function sendCheckRetry(
  rt: Runtime,
  m: TimeoutMessage,
  item: ResultItem | RunItem | undefined,
  def: TaskDef,
): Promise<void> {
  const args = m.args ?? (m.parent === null ? (item as RunItem).args : await argsOf(rt, m));
  if (args === undefined) return;
  const msg: ExecMessage = {
    k: "exec",
    v: MESSAGE_VERSION,
    ...actionOf(m),
    args,
    attempt: m.attempt + 1,
    epoch: 0,
  };
  await sendExecs(rt, [{ msg, delayMs: retryDelayMs(def.retries, m.attempt) }]);
}

/** A retried child's arguments from its parent's call records (a check sent by an older Aloft carries none). */
async function argsOf(rt: Runtime, m: TimeoutMessage): Promise<string | undefined> {
  for (const it of await loadActionItems(rt, m.parent!))
    if (String(it["sk"]).startsWith("C#")) for (const c of decodeChunk(it)) if (c.id === m.id) return c.args;
  return undefined;
}

/** One page of a sweep; what follows it (the next page, sub-parents) goes back to the queue. */
export async function sweep(rt: Runtime, m: SweepMessage): Promise<void> {
  const next = await sweepPage(rt, m);
  await sendToCoordinator(
    rt,
    next.map((msg) => ({ msg })),
  );
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
