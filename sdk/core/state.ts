/**
 * The mutable state of one replay, and the scope through which task calls inside a body find it.
 *
 * The scope travels with the body's async continuations through `AsyncLocalStorage`, so concurrent
 * replays in one process (a worker runs many at once) never see each other's state, and a task
 * called with no scope (outside any task) runs as a plain function.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { CallId, CallRecord, History, Outcome, TraceRecord } from "./history.ts";
import { Delivery } from "./delivery.ts";
import { readCancels } from "./cancels.ts";
import type { Wait } from "./wait.ts";
import type { CallSettings, TaskDef } from "./task-def.ts";

/** Implemented by every future the engine can see into (child calls, combinators, map streams). */
export interface Awaitable {
  /** The wait node for this future, or undefined once it has settled within this replay. */
  waitNode(): Wait | undefined;
  /** Pending calls whose settlement this future depends on (for coverage of roots). */
  leaves(out: Set<CallId>): void;
}

/** The subset of a child future the state needs (kept structural to avoid an import cycle). */
export interface DurableLike extends Awaitable {
  /** The call's identity (a callback future's `id` is its public callback id). */
  readonly callId: CallId;
  readonly pending: boolean;
}

/** Thrown out of a body that called a sync task whose result does not exist yet. Not an Error. */
export class SuspendSignal {
  readonly aloftSuspend = true;
  toString(): string {
    return "SuspendSignal (internal to Aloft: do not catch it)";
  }
}

export class ReplayState {
  /** New calls made by this replay (since its last decision, if it continues), in call order. */
  newCalls: CallRecord[] = [];
  newTraces: TraceRecord[] = [];
  warnings: string[] = [];
  /**
   * Recorded calls re-issued by this replay, in call order. A list, not a set: ids are distinct
   * within a replay (the `n` of the identity counts repeats), and a gather's last replay holds one
   * entry per child.
   */
  readonly reissued: CallId[] = [];
  /**
   * The recorded calls not yet made again, in call order, while every call this replay made was
   * the next one recorded (calls.ts, matchInOrder); undefined once one was not, or when the
   * history is not known to be in call order.
   */
  inOrder: Iterator<CallRecord> | undefined = undefined;
  /** Durable futures created since the last combinator: claimed by a combinator over plain promises. */
  fresh: DurableLike[] = [];
  /** Waits raised by sync calls and sync map iteration (always roots). */
  readonly syncWaits: Wait[] = [];
  suspendRequested = false;
  /**
   * What the adapter attached to this replay, opaque to the core: where the body's console output
   * goes (sdk/log-capture.ts). It travels with the scope, so no second AsyncLocalStorage follows
   * every promise the body makes.
   */
  sink: unknown = undefined;
  /** Set once the replay has produced its decision: later calls are stale. */
  closed = false;
  tracesInFlight = 0;
  /** Bumped by every engine-visible event; a quiet turn with no change means the body is blocked. */
  activity = 0;
  private traceWaiters: (() => void)[] = [];
  /** Calls this replay cancelled for the first time, for the adapter to stop. */
  newCancels: CallId[] = [];
  /**
   * Kept to continue after a suspension (continuation.ts): the futures of calls with no outcome
   * yet, to hand theirs to when it arrives (made at the first such call of a replay kept).
   */
  waiting: Map<CallId, { arrive(o: Outcome): void }> | undefined = undefined;
  /** The replay may be kept to continue (the adapter asked, and the body did nothing against it). */
  keeping = false;

  constructor(
    readonly actionId: CallId,
    readonly taskName: string,
    readonly history: History,
    /** The run the action belongs to (callback ids name it); the action's id where not given. */
    readonly runId: string = actionId,
  ) {
    // A corrupted record of the history fails the replay here, before the body runs; with no
    // records there is nothing to read, and the two are made when first used (most children never).
    if (history.traces.size > 0) {
      this.cancelledCalls = readCancels(history);
      this.outcomeOrder = new Delivery(history, this.cancelledCalls);
    }
    if (history.inCallOrder && history.calls.size > 0) this.inOrder = history.calls.values();
  }

  // Made when first used: a gather's children each replay once, most using none of them, and the
  // dozen maps and sets were a sixth of what a no-op child allocated (docs/performance.md).
  private callCounters: Map<string, Map<string, number>> | undefined = undefined;
  private traceCounters: Map<string, number> | undefined = undefined;
  private mapCounters: Map<string, number> | undefined = undefined;
  private awaited: Set<Awaitable> | undefined = undefined;
  private claims: Set<{ claim(f: DurableLike): void }> | undefined = undefined;
  private cancelledCalls: Set<CallId> | undefined = undefined;
  private outcomeOrder: Delivery | undefined = undefined;

  /** Per (task, group), then per inputs, call counters: the `n` of the identity. */
  get callSeq(): Map<string, Map<string, number>> {
    return (this.callCounters ??= new Map());
  }
  get traceSeq(): Map<string, number> {
    return (this.traceCounters ??= new Map());
  }
  get mapSeq(): Map<string, number> {
    return (this.mapCounters ??= new Map());
  }
  /** Futures awaited by code the engine cannot see into: each is a candidate root. */
  get roots(): Set<Awaitable> {
    return (this.awaited ??= new Set());
  }
  /** Pending combinators over plain promises: each claims the calls made while it is pending. */
  get openClaims(): Set<{ claim(f: DurableLike): void }> {
    return (this.claims ??= new Set());
  }
  /** Whether a combinator over plain promises is pending (calls.ts asks at every call). */
  get claiming(): boolean {
    return this.claims !== undefined && this.claims.size > 0;
  }
  /** Calls cancelled by the body: in its history, and by this replay (cancels.ts). */
  get cancelled(): Set<CallId> {
    return (this.cancelledCalls ??= readCancels(this.history));
  }
  /** Hands recorded outcomes to the body in the order it first observed them. */
  get delivery(): Delivery {
    return (this.outcomeOrder ??= new Delivery(this.history, this.cancelled));
  }

  /** Records the cancel of `id` (once). */
  cancel(id: CallId): void {
    if (this.cancelled.has(id)) return;
    this.cancelled.add(id);
    this.newCancels.push(id);
    this.touch();
  }

  touch(): void {
    this.activity++;
  }

  /**
   * The body used something whose state a continuation does not carry over a suspension (a sync
   * call or map, a map's completion rule, a gather over plain promises): its next decision comes
   * from a fresh replay.
   */
  cannotContinue(): void {
    this.keeping = false;
    this.waiting = undefined;
  }

  requestSuspend(w: Wait): void {
    this.cannotContinue();
    this.suspendRequested = true;
    this.syncWaits.push(w);
    this.touch();
  }

  traceStarted(): void {
    this.tracesInFlight++;
    this.touch();
  }

  traceEnded(): void {
    this.tracesInFlight--;
    this.touch();
    const waiters = this.traceWaiters;
    this.traceWaiters = [];
    for (const w of waiters) w();
  }

  /** Resolves when the next trace call settles. */
  nextTraceSettled(): Promise<void> {
    return new Promise((resolve) => this.traceWaiters.push(resolve));
  }

  warnOnce(message: string): void {
    if (!this.warnings.includes(message)) this.warnings.push(message);
  }
}

/** What a body's code sees: the replay it belongs to and the group it is in. */
export interface Scope {
  readonly state: ReplayState;
  /** Group path, "" at top level. */
  readonly group: string;
  /** Set while `map` calls a function of the item: task calls are captured, not made (calls.ts). */
  readonly capture?: CapturedCall[];
}

/** A task call captured from a function `map` binds (the task, its arguments, its settings). */
export interface CapturedCall {
  def: TaskDef;
  args: readonly unknown[];
  settings: CallSettings | undefined;
  /** What the call returned to the function (a promise that never settles). */
  marker: Promise<never>;
}

export const scopeStorage = new AsyncLocalStorage<Scope>();

export function currentScope(): Scope | undefined {
  return scopeStorage.getStore();
}
