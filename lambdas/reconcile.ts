/**
 * The reconciler: the liveness bound. On a schedule (an EventBridge rule in the CDK stack, a timer
 * in `aloft dev`) it looks at running runs — the live partitions of the run index, which hold only
 * those — and at each run older than the stall bound, at most once per bound:
 *
 * 1. Walks its open parents from the root, breadth first, bounded (PARENTS_PER_RUN counters; of a
 *    waiting parent, its first page of call chunks: open-calls.ts), and fingerprints their counters
 *    (epoch, state, counts, dispatch and resume marks). Any completion, resume or commit anywhere
 *    in the walk changes the fingerprint: that is progress.
 * 2. A fingerprint unchanged for the stall bound is a stall. Each parent that looks stuck is
 *    nudged: a resume its counts allow but nobody decided, or decided but not sent, is sent; a
 *    resume sent but never replayed (lost) is sent again; calls committed but not all sent are
 *    re-sent (fan-out.ts redispatch); a waiting parent's unsettled leaf children are sent again, at
 *    the attempt their result item records (a lost exec, or a lost retry's) — past its first page
 *    of calls by the coordinator, a page per `resend` message (open-calls.ts); a waiting parent whose children settled but were never counted (a completion
 *    lost after its outcome was written) is resumed anyway (`uncounted`); a root that never
 *    suspended gets its exec again. Every one of these is safe twice:
 *    a resume replays the parent from its recorded history exactly, under its replay lease, and a
 *    child's outcome is recorded once.
 * 3. A fingerprint still unchanged past the fail bound fails the run with a StalledRunError naming
 *    the stalled parent and what it waits on — unless a parent waits on something outside Aloft
 *    (an opaque await), which no bound can judge.
 *
 * Work per invocation is bounded: RUNS_PER_TICK runs (a cursor item carries the rest to the next
 * tick) and, per run, the bounded walk above.
 */
import { createHash } from "node:crypto";
import { StalledRunError } from "../sdk/errors.ts";
import { ENV } from "../sdk/aws/config.ts";
import { sendExecs } from "../sdk/aws/transport/dispatch.ts";
import { failAction } from "./fail-action.ts";
import { MESSAGE_VERSION } from "../sdk/aws/messages.ts";
import { forceResume, maybeResume, sendResume } from "./resume.ts";
import { rootExec } from "./coord/start-run.ts";
import { batchGet, keyId } from "../sdk/aws/store/io.ts";
import { runtime } from "../sdk/aws/runtime.ts";
import type { Runtime } from "../sdk/aws/runtime.ts";
import { liveRuns } from "../sdk/aws/store/runs.ts";
import type { RunRow } from "../sdk/aws/store/runs.ts";
import type { CounterItem, RunItem } from "../sdk/aws/store/table.ts";
import { NEVER, RUN_INDEX_SHARDS, counterKey } from "../sdk/aws/store/table.ts";
import {
  readReconcileCursor,
  readRun,
  setReconcileMark,
  writeReconcileCursor,
} from "../sdk/aws/store/runs.ts";
import { redispatch } from "./fan-out.ts";
import { findTask } from "../sdk/registry.ts";
import { openCallLimits, openCalls, resendOf, resendOpen } from "./open-calls.ts";
import type { OpenCalls } from "./open-calls.ts";
import { sinceCommit } from "../sdk/aws/store/table.ts";
import { waitMayBeMet } from "../sdk/aws/store/counters.ts";
import { durableWaitOf, isBuiltin } from "../sdk/core/durable-waits.ts";
import { sendToCoordinator } from "../sdk/aws/transport/dispatch.ts";

/** Runs looked at per invocation; the cursor carries the rest to the next tick. */
const RUNS_PER_TICK = 200;
/** Parent counters read per run check. */
const PARENTS_PER_RUN = 25;
const DEFAULT_STALL_SECONDS = 900;

export interface Bounds {
  /** No progress for this long: nudge. */
  stallMs: number;
  /** No progress for this long: fail (if nothing outside Aloft is awaited). */
  failMs: number;
}

/** ALOFT_STALL_SECONDS (default 900) and ALOFT_STALL_FAIL_SECONDS (default four times that). */
export function boundsFromEnv(env: NodeJS.ProcessEnv = process.env): Bounds {
  const stall = Number(env[ENV.stallSeconds] ?? DEFAULT_STALL_SECONDS);
  const fail = Number(env[ENV.stallFailSeconds] ?? 4 * stall);
  if (!(stall > 0) || !(fail >= stall))
    throw new Error(
      `${ENV.stallSeconds} must be > 0 and ${ENV.stallFailSeconds} >= it (got ${stall}, ${fail})`,
    );
  return { stallMs: stall * 1000, failMs: fail * 1000 };
}

export interface ReconcileReport {
  /** Runs whose progress was checked. */
  checked: number;
  /** What was nudged, one line each. */
  nudged: string[];
  /** Runs failed as stalled. */
  failed: string[];
}

/** The EventBridge rule's target. */
export async function handler(): Promise<ReconcileReport> {
  const rt = runtime();
  const report = await reconcile(rt);
  if (report.nudged.length || report.failed.length)
    rt.log.warn("reconciler acted on stalled runs", { ...report });
  return report;
}

/** One tick: up to RUNS_PER_TICK running runs, from where the last tick stopped. */
export async function reconcile(rt: Runtime, bounds: Bounds = boundsFromEnv()): Promise<ReconcileReport> {
  const report: ReconcileReport = { checked: 0, nudged: [], failed: [] };
  const cursor = await readReconcileCursor(rt);
  let shard = cursor.shard % RUN_INDEX_SHARDS;
  let start = cursor.start;
  let budget = RUNS_PER_TICK;
  for (let done = 0; budget > 0 && done < RUN_INDEX_SHARDS;) {
    const page = await liveRuns(rt, shard, budget, start);
    budget -= page.rows.length;
    for (let i = 0; i < page.rows.length; i += 10)
      await Promise.all(page.rows.slice(i, i + 10).map((row) => checkRun(rt, row, bounds, report)));
    if (page.next) {
      start = page.next;
      continue;
    }
    shard = (shard + 1) % RUN_INDEX_SHARDS;
    start = undefined;
    done++;
  }
  await writeReconcileCursor(rt, { shard, start });
  return report;
}

/** A parent the walk read: its counter and, if it waits on children, what it waits on. */
interface Visit {
  id: string;
  task: string;
  cnt: CounterItem;
  /** Its first page of calls, if it waits on children (open-calls.ts). */
  page?: OpenCalls;
  /** An open child is a sleep, a signal or a callback wait. */
  outside: boolean;
  /** Names of the signals its open `waitForSignal` children wait for. */
  signals: Set<string>;
  /** Secrets of its open callbacks. */
  callbacks: string[];
}

async function checkRun(rt: Runtime, row: RunRow, b: Bounds, report: ReconcileReport): Promise<void> {
  const now = rt.now();
  if (now - row.created < b.stallMs) return;
  const run = await readRun(rt, row.run, false);
  if (run?.status !== "RUNNING") return;
  const rc = run.rc;
  if (rc && now - rc.at < b.stallMs) return; // looked at less than a bound ago
  report.checked++;
  const walk = await walkRun(rt, run);
  if (!rc || rc.fp !== walk.fp) {
    await setReconcileMark(rt, run.run, { fp: walk.fp, at: now, since: now });
    return;
  }
  const since = rc.since;
  const stalledFor = now - since;
  if (stalledFor >= b.failMs && !walk.opaque) {
    const msg = stallReport(run, walk, stalledFor, b, rc.nudges ?? 0);
    await failAction(rt, { run: run.run, id: run.run, parent: null }, new StalledRunError(msg));
    report.failed.push(`${run.run}: ${msg}`);
    return;
  }
  const nudged = await nudge(rt, run, walk);
  report.nudged.push(...nudged.map((n) => `${run.run}: ${n}`));
  await setReconcileMark(rt, run.run, {
    fp: walk.fp,
    at: now,
    since,
    nudges: (rc.nudges ?? 0) + nudged.length,
  });
}

/** The bounded walk of a run's open parents, and the fingerprint of what it saw. */
async function walkRun(
  rt: Runtime,
  run: RunItem,
): Promise<{ fp: string; visits: Visit[]; rootless: boolean; opaque: boolean }> {
  const visits: Visit[] = [];
  let rootless = false;
  let opaque = false;
  let level = [{ id: run.run, task: run.task }];
  while (level.length && visits.length < PARENTS_PER_RUN) {
    level = level.slice(0, PARENTS_PER_RUN - visits.length);
    const counters = await batchGet(
      rt,
      level.map((l) => counterKey(l.id)),
      true,
    );
    const next: { id: string; task: string }[] = [];
    for (const l of level) {
      const cnt = counters.get(keyId(counterKey(l.id))) as CounterItem | undefined;
      // An end mark alone (no epoch) is not a suspension: the action never committed one.
      if (cnt?.epoch === undefined) {
        rootless ||= l.id === run.run;
        continue;
      }
      const v: Visit = {
        id: l.id,
        task: l.task,
        cnt,
        outside: false,
        signals: new Set(),
        callbacks: [],
      };
      visits.push(v);
      if (cnt.st !== "S" || waitMayBeMet(cnt)) continue;
      if (cnt.D >= NEVER) opaque = true;
      const page = await openCalls(rt, l.id, cnt);
      v.page = page;
      for (const c of page.open)
        if (page.parents.has(c.id)) next.push({ id: c.id, task: c.task });
        // A sleep or signal wait waits on time or the outside world: no bound judges it, and
        // re-sending it would only start another chain of delayed hops.
        else if (isBuiltin(c.task)) {
          opaque = true;
          v.outside = true;
          const w = durableWaitOf(c.task, c.args);
          if (w?.kind === "signal") v.signals.add(w.name);
          if (w?.kind === "callback") v.callbacks.push(w.secret);
        }
    }
    level = next;
  }
  const seen = visits.map(
    (v) => `${v.id}:${v.cnt.epoch}:${v.cnt.st}:${v.cnt.co}:${v.cnt.ce}:${v.cnt.disp ?? 0}:${v.cnt.sent ?? 0}`,
  );
  if (rootless) seen.push("root running, never suspended");
  const fp = createHash("sha1").update(seen.join("|")).digest("base64url");
  return { fp, visits, rootless, opaque };
}

/** Sends whatever may have been lost; returns what it did, one line each. */
async function nudge(
  rt: Runtime,
  run: RunItem,
  walk: { visits: Visit[]; rootless: boolean },
): Promise<string[]> {
  const did: string[] = [];
  if (walk.rootless) {
    await sendExecs(rt, [{ msg: rootExec(run, run.attempt ?? 1) }]);
    did.push(`re-sent the exec of the root ${run.task} (it never suspended)`);
  }
  for (const v of walk.visits) {
    const c = v.cnt;
    const name = `${v.task} ${v.id} (epoch ${c.epoch})`;
    if (c.st === "E") continue;
    if ((c.disp ?? 0) < c.epoch) {
      await redispatch(rt, c, { run: run.run, id: v.id, task: v.task });
      did.push(`re-sent the calls of ${name}, committed but not all sent`);
    }
    const due = c.st === "S" ? waitMayBeMet(c) : (c.sent ?? 0) < c.epoch;
    if (due) {
      if (await maybeResume(rt, v.id, c, [])) did.push(`resumed ${name}, due but not sent`);
    } else if (c.st === "R") {
      await sendResume(rt, v.id, c.epoch);
      did.push(`re-sent the resume of ${name}, sent but never replayed`);
    } else {
      const lost = uncounted(v);
      if (lost > 0 && (await forceResume(rt, v.id, c.epoch)))
        did.push(`resumed ${name}: at least ${lost} of its children settled without being counted`);
      if (v.page) {
        const sent = await resendOpen(rt, run.run, v.page, findTask(v.task)?.env);
        if (sent) did.push(`re-sent the exec of ${sent} unsettled child(ren) of ${name}`);
        // Its calls past the page: the coordinator sends them again a page per message.
        if (v.page.next) {
          await sendToCoordinator(rt, [{ msg: resendOf(run.run, v.id, v.task, v.page.next) }]);
          did.push(`asked for the unsettled children of ${name} past its first page to be sent again`);
        }
      }
    }
    if (v.signals.size) {
      // A signal whose announcement was lost (its sender died after storing it), or a match that
      // crashed: matching again is idempotent.
      const names = [...v.signals];
      await sendToCoordinator(
        rt,
        names.map((n) => ({ msg: { k: "signal" as const, v: MESSAGE_VERSION, run: run.run, name: n } })),
      );
      did.push(
        `matched again the signals ${names.map((n) => JSON.stringify(n)).join(", ")} ${name} waits for`,
      );
    }
    if (v.callbacks.length) {
      // A completion whose message was lost (its completer died after recording it): settling is idempotent.
      await sendToCoordinator(
        rt,
        v.callbacks.map((key) => ({
          msg: { k: "callback" as const, v: MESSAGE_VERSION, run: run.run, key },
        })),
      );
      did.push(`looked again at the ${v.callbacks.length} callback(s) ${name} waits for`);
    }
  }
  return did;
}

/**
 * How many of a waiting parent's children settled without their completion ever being counted
 * (a completion message lost after its outcome was written), proven from the walk: the wait needs
 * at least B more successes (store/trigger.ts), each from a distinct child unsettled when it
 * suspended; each of those is either still open or settled since — and then counted, unless its
 * completion was lost (over-counting only adds). So with every call read, fewer open children
 * than B minus what was counted means completions were lost. A wait on the outside world (a
 * sleep, a signal, a callback, an opaque await) is not judged.
 */
export function uncounted(v: Pick<Visit, "cnt" | "page" | "outside">): number {
  const c = v.cnt;
  // Only with every call read (no page after the first) is the page's open count all of them.
  if (c.st !== "S" || (c.disp ?? 0) < c.epoch || !v.page || v.page.next !== undefined || v.outside) return 0;
  if (c.D >= NEVER || c.B >= NEVER) return 0;
  const n = sinceCommit(c);
  return Math.max(0, c.B - n.ok - n.err - v.page.open.length);
}

/** Why a run is failed as stalled: the deepest parent that waits, and on what. */
function stallReport(
  run: RunItem,
  walk: { visits: Visit[]; rootless: boolean },
  stalledFor: number,
  b: Bounds,
  nudges: number,
): string {
  const head = `run ${run.run} (${run.task}) made no progress for ${Math.round(stalledFor / 1000)} s (bound ${b.failMs / 1000} s; ${nudges} nudge(s) sent)`;
  if (walk.rootless) return `${head}: its root ${run.task} never suspended nor ended`;
  const stuck = [...walk.visits].reverse().find((v) => v.cnt.st !== "E") ?? walk.visits[0];
  if (!stuck) return `${head}: no open parent was found`;
  const c = stuck.cnt;
  const state = c.st === "S" ? "suspended" : c.st === "R" ? "resuming" : "ended";
  return (
    `${head}: ${stuck.task} ${stuck.id} is ${state} at epoch ${c.epoch}, waiting on ${stuck.page?.open.length ?? 0} unsettled ` +
    `child(ren) among its first ${openCallLimits.chunksPerPage * 100} calls; counted since it suspended: ` +
    `${sinceCommit(c).ok} succeeded, ${sinceCommit(c).err} failed (it needs ${c.B} successes, or ${c.D} settlements with a failure)`
  );
}
