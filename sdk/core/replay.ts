/**
 * The replay engine: history in, decision out.
 *
 * `replay` runs a task body against what its history records. Recorded child calls return their
 * results at once; new ones are collected as calls to dispatch. When the body can make no progress
 * without a child that has not finished, the replay ends with a suspension naming what it awaits.
 * It performs no I/O, reads no clock and touches no database: the adapters (embedded engine,
 * Lambda handlers) persist the decision and dispatch the calls. See docs/replay.md for the rule
 * that decides when a body is blocked.
 */
import { NonDeterminismError, SerializationError, serializeError } from "../errors.ts";
import type { SerializedError } from "../errors.ts";
import { deserialize, serialize } from "../serde.ts";
import type { Payload } from "../serde.ts";
import { IDENTITY_VERSION } from "./history.ts";
import type { CallId, CallRecord, History, TraceRecord } from "./history.ts";
import { installCombinators, isThenable } from "./futures.ts";
import { ReplayState, scopeStorage } from "./state.ts";
import type { TaskDef } from "./task-def.ts";
import type { Wait } from "./wait.ts";
import { hasCall } from "./wait.ts";
import { cancelRecord } from "./cancels.ts";
import { BodyEnd, Continuation } from "./continuation.ts";
import type { Park } from "./continuation.ts";
import { defaultScheduler } from "./decision.ts";
import type { Decision, Scheduler } from "./decision.ts";

export type { Decision, Scheduler } from "./decision.ts";
export { defaultScheduler } from "./decision.ts";

export interface ReplayInput {
  task: TaskDef;
  /** Serialised argument list. */
  args: Payload;
  actionId: CallId;
  history: History;
  /** The action's run: what a callback id names (`createCallback`). Default: `actionId`. */
  runId?: string;
  scheduler?: Scheduler;
  /** A clock, injected, to measure the body's synchronous segment (adapters place tasks with it). */
  now?: () => number;
  /** Where the body's console output goes (sdk/log-capture.ts); the core only carries it. */
  sink?: unknown;
  /**
   * Keeps the replay when the body suspends on child calls only, to continue with their outcomes
   * (continuation.ts) instead of replaying it again: called with the continuation as it parks.
   * The replay then takes the history's maps as its own: they must be maps nothing else changes.
   */
  onPark?: (c: Continuation) => void;
}

function describe(c: CallRecord | undefined): string {
  if (!c) return "no call";
  const args = c.args.length > 80 ? `${c.args.slice(0, 77)}...` : c.args;
  return `${c.task}(${args.slice(1, -1)})${c.group ? ` in group ${c.group}` : ""} #${c.n}`;
}

/** Recorded calls this replay did not make again: the body diverged from its history. */
function checkDeterminism(st: ReplayState): NonDeterminismError | undefined {
  if (st.reissued.length === st.history.calls.size) return undefined;
  const reissued = new Set(st.reissued);
  for (const rec of st.history.calls.values()) {
    if (reissued.has(rec.id)) continue;
    const instead =
      st.newCalls.find((c) => c.task === rec.task && c.group === rec.group) ??
      st.newCalls.find((c) => c.group === rec.group) ??
      st.newCalls[0];
    return new NonDeterminismError(
      `task ${st.taskName} is not deterministic: history records ${describe(rec)} but the replay ` +
        `${instead ? `called ${describe(instead)} instead` : "made no such call"}. Derive child calls only ` +
        `from the task's inputs, child results and trace(...) results`,
      { details: { recorded: rec, replayed: instead ?? null } },
    );
  }
  return undefined;
}

/**
 * A history recorded under another call identity scheme: its ids cannot be derived again, so the
 * recorded results would be orphaned and every child run again. Fails before the body runs.
 */
function checkIdentityScheme(taskName: string, history: History): NonDeterminismError | undefined {
  for (const rec of history.calls.values()) {
    const v = rec.idv ?? 1;
    if (v === IDENTITY_VERSION) continue;
    return new NonDeterminismError(
      `task ${taskName} cannot replay its history: it records ${describe(rec)} under call identity ` +
        `scheme v${v}, and this Aloft derives call ids with scheme v${IDENTITY_VERSION} (docs/identity.md). ` +
        `Its children's recorded results cannot be matched, and running them again would repeat them: ` +
        `finish runs in flight with the Aloft that started them, or start this run again`,
      { details: { recorded: rec, identityVersion: v, expected: IDENTITY_VERSION } },
    );
  }
  return undefined;
}

/** The awaited roots of a blocked body: trees the engine can see into, plus lone awaited calls. */
function collectWaits(st: ReplayState): Wait[] {
  const waits: Wait[] = [...st.syncWaits];
  const covered = new Set<CallId>();
  const lone: Wait[] = [];
  for (const root of st.roots) {
    const node = root.waitNode();
    if (!node) continue;
    if (node.kind === "call") lone.push(node);
    else if (hasCall(node)) {
      // (A tree with no child call in it, e.g. a gather of plain promises, covers nothing: the
      // futures those promises derive from are roots of their own.)
      waits.push(node);
      root.leaves(covered);
    }
  }
  for (const w of lone) if (w.kind === "call" && !covered.has(w.id)) waits.push(w);
  // A wait with no child call in it can never be satisfied by a child: it is not a reason to suspend.
  return waits.filter(hasCall);
}

/** A suspension's new traces, with the record of outcomes this replay observed first (delivery.ts). */
function withObserved(st: ReplayState, observed: TraceRecord | undefined): TraceRecord[] {
  const out = [...st.newTraces];
  if (observed) out.push(observed);
  const cancels = cancelRecord(st.history, st.newCalls, st.newCancels);
  if (cancels) out.push(cancels);
  return out;
}

function failure(e: unknown, nonRecoverable = false): SerializedError {
  const s = serializeError(e);
  if (nonRecoverable) s.nonRecoverable = true;
  return s;
}

/**
 * Replays `input.task` over its history and decides what happens next.
 * @example
 * const d = await replay({ task: def, args: "[3]", actionId: "root", history: emptyHistory() });
 * if (d.kind === "suspended") dispatch(d.calls);
 */
export function replay(input: ReplayInput): Promise<Decision> {
  // Every runtime that replays task bodies (embedded engine, its workers, the Lambda handlers,
  // aloft/testing) comes through here: the patch is installed by the first replay, never by
  // `import "aloft"`, so importing the package leaves the user's Promise alone.
  installCombinators();
  const sched = input.scheduler ?? defaultScheduler;
  const st = new ReplayState(input.actionId, input.task.name, input.history, input.runId);
  st.sink = input.sink;
  const onPark = input.onPark;
  st.keeping = onPark !== undefined;
  let args: unknown[];
  try {
    args = deserialize(input.args) as unknown[];
    if (!Array.isArray(args)) throw new SerializationError(`arguments of ${input.task.name} are not a list`);
  } catch (e) {
    return Promise.resolve(ended(st, failedDecision(st, failure(e, true), undefined)));
  }
  const foreign = checkIdentityScheme(input.task.name, input.history);
  if (foreign) return Promise.resolve(ended(st, failedDecision(st, failure(foreign, true), undefined)));

  const end = new BodyEnd();
  // Measured only with an injected clock (the core reads none of its own).
  let bodyMs: number | undefined;
  try {
    const t0 = input.now?.();
    let ret: unknown;
    try {
      ret = scopeStorage.run({ state: st, group: "" }, () => input.task.fn(...args));
    } finally {
      if (t0 !== undefined) bodyMs = input.now!() - t0;
    }
    if (isThenable(ret)) {
      ret.then(
        (v: unknown) => end.settle(true, v),
        (e: unknown) => end.settle(false, e),
      );
    } else end.settle(true, ret);
  } catch (e) {
    end.settle(false, e);
  }
  // A body parked for the first time gets its continuation, handed to the adapter.
  const park: Park | undefined = onPark
    ? (decision, observed) => onPark(new Continuation(st, end, sched, decision, observed, decide))
    : undefined;
  return decide(st, end, sched, bodyMs, park);
}

/** The replay has decided: closed, and nothing kept. */
function ended(st: ReplayState, decision: Decision): Decision {
  st.closed = true;
  return decision;
}

function failedDecision(
  st: ReplayState,
  error: SerializedError,
  bodyMs: number | undefined,
  calls = st.newCalls,
): Decision {
  // Decisions are object literals with their fields listed: a spread (`{ ...base, kind }`) gave
  // each decision, so each child, a hidden class of its own.
  return {
    calls,
    cancels: st.newCancels,
    traces: st.newTraces,
    warnings: st.warnings,
    bodyMs,
    kind: "failed",
    error,
  };
}

/**
 * Runs the body until it settles or is blocked (the blocking rule, docs/replay.md), and decides.
 * A body blocked on child calls only, in a replay that keeps it (`park`), is parked to continue.
 */
async function decide(
  st: ReplayState,
  end: BodyEnd,
  sched: Scheduler,
  bodyMs: number | undefined,
  park: Park | undefined,
): Promise<Decision> {
  // The blocking rule (docs/replay.md): the body is blocked when, after a full macrotask turn with
  // no engine-visible activity and no trace in flight, it has not settled and awaits a child.
  let lastActivity = -1;
  let idle = 0;
  let waits: Wait[] | undefined;
  while (!end.done) {
    waits = undefined;
    await sched.turn();
    if (end.done) break;
    if (st.tracesInFlight > 0) {
      await st.nextTraceSettled();
      continue;
    }
    if (st.activity !== lastActivity) {
      lastActivity = st.activity;
      continue;
    }
    if (st.suspendRequested) break;
    // Quiet: hand the body the next recorded outcome(s), in the order first observed.
    if (st.delivery.deliverNext()) continue;
    waits = collectWaits(st);
    if (waits.length > 0) break;
    // Pending on something the engine cannot see (a timer, a fetch): wait for it, and say so.
    st.warnOnce(
      `task ${st.taskName} awaits something that is neither a child task nor a trace(...) call; ` +
        `I/O in a task body belongs in trace(...) or a child task, or it runs again on every replay`,
    );
    await sched.sleep(Math.min(50, 1 << idle++));
  }

  if (end.done && !st.suspendRequested) {
    const { ok, value } = end;
    // A divergence the body itself detected (a traced generator asked past its record) says more.
    const nd = !ok && value instanceof NonDeterminismError ? value : checkDeterminism(st);
    if (nd) return ended(st, failedDecision(st, failure(nd, true), bodyMs));
    // (A SuspendSignal is only thrown after requestSuspend, so it never reaches here.)
    if (!ok) return ended(st, failedDecision(st, failure(value), bodyMs));
    const unawaited = st.newCalls.length ? st.newCalls.filter((c) => !st.cancelled.has(c.id)).length : 0;
    if (unawaited > 0) {
      st.warnOnce(
        `task ${st.taskName} finished with ${unawaited} child call(s) it never awaited (first: ${describe(st.newCalls[0])}); ` +
          `they were not run: await every child call`,
      );
    }
    try {
      const payload = serialize(value, `result of task ${st.taskName}`);
      return ended(st, {
        calls: [],
        cancels: st.newCancels,
        traces: st.newTraces,
        warnings: st.warnings,
        bodyMs,
        kind: "completed",
        value: payload,
      });
    } catch (e) {
      return ended(st, failedDecision(st, failure(e, true), bodyMs, []));
    }
  }
  const nd = checkDeterminism(st);
  if (nd) return ended(st, failedDecision(st, failure(nd, true), bodyMs));
  // Roots gathered on the last look are still current: nothing ran since.
  // The outcomes this replay observed first are recorded with the suspension: the next replay
  // delivers them in the same order, before any that arrive meanwhile.
  const observed = st.delivery.record();
  const traces = withObserved(st, observed);
  const decision: Decision = {
    calls: st.newCalls,
    cancels: st.newCancels,
    traces,
    warnings: st.warnings,
    bodyMs,
    kind: "suspended",
    waits: waits ?? collectWaits(st),
  };
  st.closed = true;
  if (park && st.keeping && !st.suspendRequested) park(decision, observed !== undefined);
  return decision;
}
