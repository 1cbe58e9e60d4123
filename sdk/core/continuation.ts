/**
 * A replay kept over its suspension and continued when outcomes arrive, instead of replayed from
 * the start (docs/replay.md, "Continuing a replay"). The embedded engine keeps the replays it runs
 * on its own thread so: a parent's resume then costs what is new, not its whole history again
 * (every step of a sequential loop). It replays every parent's first resume afresh all the same:
 * that replay is what finds a body that is not deterministic.
 *
 * A continued body takes the path a fresh replay would. The fresh one runs the body over the
 * history to the point this one is parked at (the same calls, the same outcomes delivered in the
 * recorded order), then delivers the outcomes no replay observed yet, in call order; so does this
 * one with the outcomes that arrived. Its decisions record the same calls, traces and observation
 * order, so a replay after a crash finds the history it expects.
 *
 * Only a body blocked on child calls, gathers and races of them, and `map.aio` streams is kept: a
 * sync call or map, a map's completion rule or a gather over plain promises hold state made from
 * what was pending in that replay (`ReplayState.cannotContinue`). A body that did anything while
 * parked (a timer's callback made a call) is not continued either: the adapter replays it afresh.
 */
import type { CallId, CallRecord, Outcome, TraceRecord } from "./history.ts";
import type { Decision, Scheduler } from "./decision.ts";
import type { ReplayState } from "./state.ts";

/** How the body's run ended, once it has. */
export class BodyEnd {
  done = false;
  ok = false;
  value: unknown = undefined;
  settle(isOk: boolean, v: unknown): void {
    this.done = true;
    this.ok = isOk;
    this.value = v;
  }
}

/** Parks a replay that decided to suspend (`observed`: the decision made an observation record). */
export type Park = (decision: Decision, observed: boolean) => void;

/** Runs the body to its next decision (replay.ts), injected: the replay loop is replay.ts's own. */
type Decide = (
  st: ReplayState,
  end: BodyEnd,
  sched: Scheduler,
  bodyMs: number | undefined,
  park: Park | undefined,
) => Promise<Decision>;

export class Continuation {
  /** The body's activity count when parked: any change means it ran meanwhile. */
  private parkedAt = -1;
  /** Parked by its last decision, and not resumed since. */
  private parked = false;

  constructor(
    private readonly st: ReplayState,
    private readonly end: BodyEnd,
    private readonly sched: Scheduler,
    decision: Decision,
    observed: boolean,
    private readonly decide: Decide,
  ) {
    this.park(decision, observed);
  }

  private readonly park: Park = (decision, observed) => {
    const st = this.st;
    // What the decision recorded is history now, as a fresh replay would read it back.
    const calls = st.history.calls as Map<CallId, CallRecord>;
    for (const c of decision.calls) {
      calls.set(c.id, c);
      st.reissued.push(c.id);
    }
    const traces = st.history.traces as Map<string, TraceRecord>;
    for (const t of decision.traces) traces.set(t.key, t);
    st.delivery.decided(observed);
    st.newCalls = [];
    st.newTraces = [];
    st.newCancels = [];
    st.warnings = [];
    this.parkedAt = st.activity;
    this.parked = true;
  };

  /** Every outcome the body knows: recorded, and arrived since. */
  get outcomes(): ReadonlyMap<CallId, Outcome> {
    return this.st.history.outcomes;
  }

  /**
   * Whether it can continue: parked by its last decision, the body did nothing since, and it
   * used nothing a continuation cannot carry.
   */
  get usable(): boolean {
    return this.parked && this.st.activity === this.parkedAt && this.st.keeping;
  }

  /**
   * Continues the body with the outcomes that arrived since its last decision (duplicates and
   * outcomes it knows are ignored), to its next decision; `usable` again if that one parked it
   * again. Only when `usable`.
   */
  resume(arrived: ReadonlyMap<CallId, Outcome>): Promise<Decision> {
    const st = this.st;
    if (!this.usable)
      throw new Error("internal: a continuation that cannot continue was resumed (check usable first)");
    this.parked = false;
    st.closed = false;
    const outcomes = st.history.outcomes as Map<CallId, Outcome>;
    for (const id of inCallOrder(st, arrived)) {
      if (outcomes.has(id)) continue;
      const o = arrived.get(id)!;
      outcomes.set(id, o);
      // A cancelled call settled for the body when it was cancelled.
      if (st.cancelled.has(id)) continue;
      st.delivery.arrive(id);
      const f = st.waiting?.get(id);
      if (!f) continue;
      st.waiting!.delete(id);
      f.arrive(o);
    }
    return this.decide(st, this.end, this.sched, undefined, this.park);
  }
}

/** The ids of `arrived` that are calls of this body, in the order it made them. */
function inCallOrder(st: ReplayState, arrived: ReadonlyMap<CallId, Outcome>): CallId[] {
  const calls = st.history.calls;
  if (arrived.size === 1) {
    const [id] = arrived.keys();
    return calls.has(id!) ? [id!] : [];
  }
  const out: CallId[] = [];
  for (const id of calls.keys()) if (arrived.has(id)) out.push(id);
  return out;
}
