/**
 * Durable futures: what an async task call returns inside a task body.
 *
 * A future is a real `Promise` subclass, so `await`, `.then`, `.catch` and every combinator work as
 * JavaScript says. Two things are different:
 * - it settles lazily, only once someone subscribes, so a recorded failure nobody awaits is never an
 *   unhandled rejection;
 * - a subscription by code the engine cannot see into (an `await`, a user `.then`) makes it a *root*
 *   of the suspension: the body may be blocked on it.
 *
 * `Promise.all/allSettled/race/any` are patched once, process-wide, to recognise durable members and
 * return a {@link CombinatorFuture} whose wait condition is the combinator itself: that is what lets
 * a gather of N children resume its parent once rather than N times. With no durable member (and
 * outside a replay) the patch defers to the native implementation untouched. A gather of fresh
 * child futures (the common `Promise.all(xs.map(child))`) does not even use the native one: it
 * tallies its members' deliveries and settles in the microtask the native one would have.
 */
import { TaskError, TaskTimeoutError, CancelledError, deserializeError } from "../errors.ts";
import { deserialize, digestList } from "../serde.ts";
import { HISTORY_VERSION } from "./history.ts";
import type { CallId, Outcome } from "./history.ts";
import type { Wait } from "./wait.ts";
import type { Awaitable, DurableLike, ReplayState } from "./state.ts";
import type { Receiver } from "./delivery.ts";
import { currentScope } from "./state.ts";
import { cancelledOutcome } from "./cancels.ts";

const native = {
  all: Promise.all,
  allSettled: Promise.allSettled,
  race: Promise.race,
  any: Promise.any,
};

/** Converts a child's recorded failure into what the parent's await rejects with. */
export function outcomeError(task: string, error: Outcome & { ok: false }): Error {
  const e = error.error;
  if (e.code === "TASK_TIMEOUT") return Object.assign(deserializeError(e) as TaskTimeoutError, { task });
  if (e.code === "CANCELLED") return deserializeError(e) as CancelledError;
  return new TaskError(task, e, e.attempts ?? 1);
}

export function outcomeValue(
  task: string,
  o: Outcome,
): { ok: true; value: unknown } | { ok: false; error: Error } {
  return o.ok ? { ok: true, value: deserialize(o.value) } : { ok: false, error: outcomeError(task, o) };
}

abstract class EngineFuture<T> extends Promise<T> implements Awaitable {
  static override get [Symbol.species](): PromiseConstructor {
    return Promise;
  }
  declare protected resolveFn: (v: T) => void;
  declare protected rejectFn: (e: unknown) => void;
  protected armed = false;
  /** Subscribed by code the engine cannot see into (settling it may run the body's code). */
  protected user = false;
  /**
   * Combinators this future is a member of (once per occurrence): none, one, or a list of them. A
   * gather of N children holds N futures at once, each in one combinator: no list each.
   */
  memberOf: CombinatorFuture<any> | CombinatorFuture<any>[] | undefined;

  protected constructor(protected readonly state: ReplayState) {
    let res!: (v: T) => void;
    let rej!: (e: unknown) => void;
    super((resolve, reject) => {
      res = resolve;
      rej = reject;
    });
    this.resolveFn = res;
    this.rejectFn = rej;
  }

  /** Settles the underlying promise from what the replay knows (only once subscribed). */
  protected abstract arm(): void;
  abstract waitNode(): Wait | undefined;
  abstract leaves(out: Set<CallId>): void;
  /** For a future settled within this replay: whether it fulfilled. */
  abstract settledOk(): boolean;

  /** Subscribed now: a future that only a combinator followed settles its own promise from here on. */
  protected wake(): void {}

  /** Subscription by the engine itself: settles, but is not a root. */
  internal(): Promise<T> {
    if (!this.armed) {
      this.armed = true;
      this.arm();
    }
    this.wake();
    return Promise.prototype.then.call(this, undefined, undefined) as Promise<T>;
  }

  override then<A = T, B = never>(
    onFulfilled?: ((v: T) => A | PromiseLike<A>) | null,
    onRejected?: ((e: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    if (!this.armed) {
      this.armed = true;
      this.arm();
    }
    this.user = true;
    this.wake();
    if (!this.state.closed) this.state.roots.add(this);
    this.state.touch(); // (after the decision: a parked continuation does not continue, continuation.ts)
    return super.then(onFulfilled, onRejected);
  }
}

/** The future of one child call. */
export class DurableFuture<T = unknown> extends EngineFuture<T> implements DurableLike, Receiver {
  /** Subscribed to the delivery of its outcome (else a cancel settles it directly). */
  private registered = false;
  /**
   * Followed only by the gather it was made for (CombinatorFuture's `tally`): a delivery tells
   * the gather and leaves this promise unsettled, until something else subscribes to it.
   */
  quiet = false;
  /** Its position in that gather (-1: in none). */
  memberIndex = -1;

  constructor(
    state: ReplayState,
    readonly callId: CallId,
    readonly task: string,
    private outcome: Outcome | undefined,
  ) {
    super(state);
  }
  get pending(): boolean {
    return this.outcome === undefined;
  }
  /**
   * Its outcome, arrived while a continued replay was parked (continuation.ts): delivered in the
   * order a fresh replay would deliver it, to whatever subscribed.
   */
  arrive(o: Outcome): void {
    if (this.outcome) return;
    this.outcome = o;
    if (!this.armed) return;
    this.registered = true;
    this.state.delivery.onDelivery(this.callId, this);
  }
  protected arm(): void {
    if (!this.outcome) return; // stays pending for the rest of this replay
    // Settles when the replay delivers its outcome, in the order first observed (delivery.ts).
    this.registered = true;
    this.state.delivery.onDelivery(this.callId, this);
  }

  /**
   * Stops the child and its descendants (queued ones never start, running ones are cancelled) and
   * rejects this future with `CancelledError`. The cancel is recorded in the parent's history, so
   * every replay takes the same path. A no-op once the body has seen the future settle.
   * @example
   * const slow = fetchAll(url); if (await breaker()) slow.cancel();
   */
  cancel(): void {
    const st = this.state;
    if (st.closed) return;
    if (this.outcome && st.delivery.isDelivered(this.callId)) return;
    st.cancel(this.callId);
    this.outcome = cancelledOutcome(this.task);
    st.delivery.cancel(this.callId); // settles it now if it subscribed to its delivery
    if (this.armed && !this.registered) {
      this.visible();
      this.deliver();
    }
  }
  /** Whether it has no outcome for the body yet (none recorded, or not delivered yet). */
  get open(): boolean {
    return !this.outcome || !this.state.delivery.isDelivered(this.callId);
  }
  deliver(): void {
    const r = outcomeValue(this.task, this.outcome!);
    const m = this.memberOf;
    if (m instanceof CombinatorFuture) m.memberDelivered(this, r);
    else if (m) for (const c of m) c.memberDelivered(this, r);
    if (this.quiet) return;
    if (r.ok) this.resolveFn(r.value as T);
    else this.rejectFn(r.error);
  }
  /** Whether a gather may tally it: nothing subscribed to it, and in no combinator yet. */
  tallyable(): boolean {
    return !this.armed && this.memberOf === undefined;
  }
  /** Subscribed by its gather's tally: delivered like any, its own promise left unsettled. */
  subscribeQuietly(): void {
    this.armed = true;
    this.quiet = true;
    if (!this.outcome) return;
    this.registered = true;
    this.state.delivery.onDelivery(this.callId, this);
  }
  protected override wake(): void {
    if (!this.quiet) return;
    this.quiet = false;
    if (!this.outcome || !this.state.delivery.isDelivered(this.callId)) return; // deliver() settles it
    // Delivered to its gather only: settled now with the value (or error) the gather got.
    const g = this.memberOf instanceof CombinatorFuture ? this.memberOf : this.memberOf![0]!;
    const r = g.memberResult(this) ?? outcomeValue(this.task, this.outcome);
    if (r.ok) this.resolveFn(r.value as T);
    else this.rejectFn(r.error);
  }
  /** Called once per delivery: settling runs the body's code if it subscribed, or settles a combinator. */
  visible(): boolean {
    let settles = false;
    const m = this.memberOf;
    if (m instanceof CombinatorFuture) settles = m.memberSettles(this.outcome!.ok);
    else if (m) for (const c of m) if (c.memberSettles(this.outcome!.ok)) settles = true;
    return this.user || settles;
  }
  waitNode(): Wait | undefined {
    return this.outcome ? undefined : { kind: "call", id: this.callId };
  }
  settledOk(): boolean {
    return this.outcome?.ok ?? false;
  }
  leaves(out: Set<CallId>): void {
    if (this.pending) out.add(this.callId);
  }
}

export function isEngineFuture(v: unknown): v is EngineFuture<unknown> {
  return v instanceof EngineFuture;
}

type Kind = "all" | "allSettled" | "race" | "any";

/** Member of a combinator the engine cannot see into (a plain promise); its settlement is observed. */
interface Opaque {
  settled: boolean;
  ok: boolean;
}

/** `Promise.all/allSettled/race/any` over members of which at least one is durable. */
export class CombinatorFuture<T = unknown> extends EngineFuture<T> {
  private readonly members: (EngineFuture<unknown> | Opaque)[];
  private settledHere = false;
  private fulfilled = false;
  /**
   * Durable futures created just before this combinator, or while it is pending in this replay,
   * standing in for its opaque members.
   */
  private readonly claimed: DurableLike[];
  /** Members that have not settled as far as the replay knows (to tell when one settles this). */
  private unsettled = 0;
  /**
   * When every member is a child call's future: the member that settled first in a way that decides
   * this combinator (see recordDecider), learnt as each is delivered rather than through a reaction
   * per member. Undefined otherwise, and until one has.
   */
  private firstDecider: number | undefined;
  private readonly durableOnly: unknown[] | undefined;
  /**
   * A gather (all/allSettled) of fresh child futures keeps its own tally of their deliveries
   * instead of subscribing each (see decide()): undefined otherwise. Its values, by position.
   */
  private tally: unknown[] | undefined;
  /** Members of the tally still to be delivered; -1 once it has decided. */
  private remaining = 0;
  /** The error an `all` tally rejected with (its first failed member's). */
  private failure: Error | undefined;
  /** Run by the tally as it decides: records the decider first, as the native path's reactions do. */
  private tallyDone: (() => void) | undefined;

  constructor(
    state: ReplayState,
    private readonly kind: Kind,
    values: unknown[],
  ) {
    super(state);
    // What the native combinator sees: durable members subscribed internally (not as roots), plain
    // promises wrapped so this replay learns whether they settled (for the wait it may record).
    let hasOpaque = false;
    const promises: unknown[] = [];
    // Set before the members are subscribed: one delivered already settles as it is subscribed.
    this.durableOnly = values.every((v) => v instanceof DurableFuture) ? values : undefined;
    const key = deciderKey(state, kind, values);
    const rec = key === undefined ? undefined : state.history.traces.get(key);
    const index = rec?.outcome.ok ? Number(deserialize(rec.outcome.value)) : undefined;
    const recordFirst = (): void => {
      const d = this.firstDecider;
      if (state.closed || d === undefined || !canDecide(kind, values[d])) return;
      state.newTraces.push({ v: HISTORY_VERSION, key: key!, outcome: { ok: true, value: String(d) } });
    };
    if (
      (kind === "all" || kind === "allSettled") &&
      !(index !== undefined && canDecide(kind, values[index])) &&
      this.claimTally(values as DurableFuture[])
    ) {
      this.members = values as DurableFuture[];
      this.claimed = [];
      state.fresh = [];
      this.tallyDone = key !== undefined && !rec ? recordFirst : undefined;
      this.remaining = values.length;
      this.tally = new Array<unknown>(values.length);
      for (const v of values as DurableFuture[]) {
        v.subscribeQuietly();
        if (v.open) this.unsettled++;
      }
      this.armed = true;
      state.touch();
      return;
    }
    this.members = values.map((v) => {
      if (isEngineFuture(v)) {
        // A member first, then subscribed: a child delivered already settles now, and tells us.
        if (v.memberOf === undefined) v.memberOf = this;
        else if (v.memberOf instanceof CombinatorFuture) v.memberOf = [v.memberOf, this];
        else v.memberOf.push(this);
        promises.push(v.internal());
        if (v instanceof DurableFuture ? v.open : !(v instanceof CombinatorFuture && v.settledHere))
          this.unsettled++;
        return v;
      }
      const o: Opaque = { settled: !isThenable(v), ok: true };
      if (o.settled) promises.push(v);
      else {
        hasOpaque = true;
        this.unsettled++;
        promises.push(
          Promise.resolve(v as PromiseLike<unknown>).then(
            (x) => ((o.settled = true), this.unsettled--, x),
            (e: unknown) => {
              o.settled = true;
              o.ok = false;
              this.unsettled--;
              throw e;
            },
          ),
        );
      }
      return o;
    });
    // Plain promises gathered together usually wrap the children created just before (the
    // `Promise.all(items.map(async (i) => f(await child(i))))` idiom): claim those so the gather
    // still resumes once, when they have all settled, instead of once per child.
    // Later stages of the same idiom (`async (i) => c2(await c1(i))`) make their calls after the
    // gather was built: those are claimed as they are made, while the gather is pending.
    this.claimed = hasOpaque ? state.fresh.filter((f) => f.pending) : [];
    state.fresh = [];
    if (hasOpaque) {
      state.openClaims.add(this);
      state.cannotContinue(); // what it claims is decided by what was pending in this replay
    }
    // Which member decides a race/any (or an all's rejection) depends on the order children
    // settled, which a later replay cannot see: it knows more outcomes and would pick the first
    // settled member in list order. So the deciding child is recorded in history the first time
    // and followed on every replay after.
    let combined = (native[kind] as (v: unknown[]) => Promise<T>).call(Promise, promises);
    if (index !== undefined && canDecide(kind, values[index])) {
      combined.then(undefined, () => {}); // superseded; it still subscribes every member, as before
      // A one-member race settles in the same microtask as the full combinator would have, so code
      // derived from it runs in the same order as on the replay that recorded the decider.
      combined = native.race.call(Promise, [promises[index]]) as Promise<T>;
    } else if (key !== undefined && !rec) {
      if (this.durableOnly) combined.then(recordFirst, recordFirst);
      else recordDecider(state, kind, key, values, promises, combined);
    }
    combined.then(
      (v) => this.settle(true, v),
      (e: unknown) => this.settle(false, e),
    );
    this.armed = true;
    state.touch();
  }

  private settle(ok: boolean, v: unknown): void {
    this.settledHere = true;
    this.state.openClaims.delete(this);
    const m = this.memberOf;
    if (m instanceof CombinatorFuture) m.unsettled--;
    else if (m) for (const c of m) c.unsettled--;
    if (ok) {
      this.fulfilled = true;
      this.resolveFn(v as T);
    } else this.rejectFn(v);
  }

  /**
   * Whether `values` can be tallied: child futures that nothing has subscribed to or gathered yet,
   * each once. Marks their positions if so.
   */
  private claimTally(values: DurableFuture[]): boolean {
    let i = 0;
    for (; i < values.length; i++) {
      const v = values[i]!;
      if (!(v instanceof DurableFuture) || !v.tallyable()) break;
      v.memberIndex = i;
      v.memberOf = this;
    }
    if (i === values.length) return true;
    for (let j = 0; j < i; j++) {
      values[j]!.memberIndex = -1;
      values[j]!.memberOf = undefined;
    }
    return false;
  }

  /**
   * A gather of N children would otherwise subscribe each child twice (the engine's internal
   * subscription and the native combinator's own), two promises and reactions per child, each also
   * stamped by async hooks. Tallied here from the deliveries, it settles in the same microtask the
   * native combinator would have: the native chain takes three hops from the deciding member's
   * settlement (its internal subscription, the combinator's element function, the reaction that
   * settles this future), and so do the three queued microtasks below.
   */
  private decide(ok: boolean, v: unknown): void {
    this.remaining = -1;
    queueMicrotask(() =>
      queueMicrotask(() =>
        queueMicrotask(() => {
          this.tallyDone?.();
          this.settle(ok, v);
        }),
      ),
    );
  }

  /** The value (or error) the tally got for `f`, if it kept it. */
  memberResult(
    f: DurableFuture<any>,
  ): { ok: true; value: unknown } | { ok: false; error: Error } | undefined {
    const t = this.tally;
    if (!t || f.memberIndex < 0) return undefined;
    if (this.failure && f.memberIndex === this.firstDecider) return { ok: false, error: this.failure };
    if (!(f.memberIndex in t)) return undefined;
    const x = t[f.memberIndex];
    if (this.kind === "all") return { ok: true, value: x };
    const s = x as { status: string; value?: unknown; reason?: Error };
    return s.status === "fulfilled" ? { ok: true, value: s.value } : { ok: false, error: s.reason! };
  }

  protected arm(): void {}
  settledOk(): boolean {
    return this.fulfilled;
  }
  /**
   * A durable member is being delivered (ok: it fulfilled): whether that may settle this
   * combinator. Conservative: true when unsure, which only costs the replay a microtask drain.
   */
  memberSettles(ok: boolean): boolean {
    this.unsettled--;
    if (this.settledHere) return false;
    if (this.kind === "race") return true;
    if (this.kind === "all" && !ok) return true;
    if (this.kind === "any" && ok) return true;
    return this.unsettled <= 0;
  }
  /**
   * A child call's future among the members settles now (ok: it fulfilled). Deliveries come one at
   * a time, in the order the members settle, which is the order their reactions would run: the
   * first that can decide is the one recordDecider would have seen first (the first occurrence, if
   * the future is a member twice).
   */
  memberDelivered(
    f: DurableFuture<any>,
    r: { ok: true; value: unknown } | { ok: false; error: Error },
  ): void {
    const t = this.tally;
    // A tally's members are all its own (claimTally): every delivery here is one of them.
    if (t) {
      if (this.remaining < 0) return;
      const i = f.memberIndex;
      if (this.kind === "all") {
        if (!r.ok) {
          this.firstDecider = i;
          this.failure = r.error;
          return this.decide(false, r.error);
        }
        t[i] = r.value;
      } else t[i] = r.ok ? { status: "fulfilled", value: r.value } : { status: "rejected", reason: r.error };
      // The body gets a copy: what it does to its array must not change what a member awaited later gets.
      if (--this.remaining === 0) this.decide(true, t.slice());
      return;
    }
    if (this.firstDecider !== undefined || !this.durableOnly) return;
    if (r.ok ? this.kind !== "all" : this.kind !== "any") this.firstDecider = this.durableOnly.indexOf(f);
  }
  /** Takes a call made while this combinator is pending as a stand-in for its opaque members. */
  claim(f: DurableLike): void {
    this.claimed.push(f);
  }

  waitNode(): Wait | undefined {
    if (this.settledHere) return undefined;
    let of: Wait[] = [];
    let opaquePending = false;
    for (const m of this.members) {
      if (m instanceof EngineFuture) {
        const n = m.waitNode();
        // A member settled in this replay is a known value for the combinator.
        of.push(n ?? { kind: "const", ok: m.settledOk() });
      } else if (m.settled) of.push({ kind: "const", ok: m.ok });
      else opaquePending = true;
    }
    if (!opaquePending) return { kind: this.kind, of };
    // Waking on the first of them (below): for an `any`, a member known to have failed is no reason
    // to wake (a race wait holding it would be satisfied at once, and resume the body in a loop).
    if (this.kind === "any") of = of.filter((w) => !(w.kind === "const" && !w.ok));
    if (this.claimed.length === 0) {
      // Nothing known stands in for the plain promises: their own awaits are roots instead.
      return this.kind === "all" || this.kind === "allSettled" ? { kind: "opaque" } : { kind: "race", of };
    }
    const stand = this.claimed.filter((c) => c.pending).map((c): Wait => ({ kind: "call", id: c.callId }));
    // all/allSettled: wait for every claimed child (early on a failure); race/any: wake on the first.
    const kind = this.kind === "all" || this.kind === "allSettled" ? this.kind : "race";
    return { kind, of: [...of, ...stand] };
  }

  leaves(out: Set<CallId>): void {
    for (const m of this.members) if (m instanceof EngineFuture) m.leaves(out);
    for (const c of this.claimed) if (c.pending) out.add(c.callId);
  }
}

/** History key of the member deciding a race/any/all over child calls (undefined: nothing to record). */
function deciderKey(state: ReplayState, kind: Kind, values: unknown[]): string | undefined {
  if (kind === "allSettled" || !values.some((v) => v instanceof DurableFuture)) return undefined;
  const base = `combinator:${kind}|${digestList(values.map((v) => (v instanceof DurableFuture ? v.callId : "?")))}`;
  const n = state.traceSeq.get(base) ?? 0;
  state.traceSeq.set(base, n + 1);
  return `${base}|${n}`;
}

/** Whether member `m`, settled in this replay, can decide a `kind` combinator on its own. */
function canDecide(kind: Kind, m: unknown): boolean {
  if (!(m instanceof DurableFuture) || m.pending) return false;
  return kind === "race" || (kind === "any") === m.settledOk();
}

/**
 * Records which child decided `combined`. Each member gets a reaction after the native
 * combinator's own, so the first reaction to run is the member the combinator saw first.
 */
function recordDecider(
  state: ReplayState,
  kind: Kind,
  key: string,
  values: unknown[],
  promises: unknown[],
  combined: Promise<unknown>,
): void {
  let decider: number | undefined;
  promises.forEach((p, i) => {
    Promise.resolve(p).then(
      () => {
        if (decider === undefined && kind !== "all") decider = i;
      },
      () => {
        if (decider === undefined && kind !== "any") decider = i;
      },
    );
  });
  const record = (): void => {
    if (state.closed || decider === undefined || !canDecide(kind, values[decider])) return;
    state.newTraces.push({ v: HISTORY_VERSION, key, outcome: { ok: true, value: String(decider) } });
  };
  combined.then(record, record);
}

export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (
    v !== null &&
    (typeof v === "object" || typeof v === "function") &&
    typeof (v as PromiseLike<unknown>).then === "function"
  );
}

/** The next item of a `map.aio` stream, when it has not settled in this replay. */
export class StreamFuture<T = unknown> extends EngineFuture<T> {
  /** Handed its item by a continued replay (continuation.ts): it waits for nothing any more. */
  private handed = false;
  constructor(
    state: ReplayState,
    private readonly wait: Wait & { kind: "stream" },
  ) {
    super(state);
  }
  protected arm(): void {}
  settledOk(): boolean {
    return false;
  }
  waitNode(): Wait | undefined {
    return this.handed ? undefined : this.wait;
  }
  leaves(out: Set<CallId>): void {
    if (this.handed) return;
    for (let i = this.wait.from; i < this.wait.ids.length; i++) out.add(this.wait.ids[i]!);
  }
  /**
   * Its item's outcome arrived while a continued replay was parked: settles with `item()` when the
   * replay delivers `id`, as the item a fresh replay would have handed over from its history.
   */
  hand(id: CallId, item: () => T): void {
    this.handed = true;
    this.state.delivery.onDelivery(id, {
      deliver: () => {
        try {
          this.resolveFn(item());
        } catch (e) {
          this.rejectFn(e);
        }
      },
      visible: () => true,
    });
  }
}

function patched(kind: Kind) {
  const orig = native[kind] as (this: PromiseConstructor, v: Iterable<unknown>) => Promise<unknown>;
  return function (this: PromiseConstructor, values: Iterable<unknown>): Promise<unknown> {
    if (this !== Promise) return orig.call(this, values);
    const scope = currentScope();
    if (!scope || scope.state.closed) {
      scope?.state.touch(); // a parked continuation does not continue from here (continuation.ts)
      return orig.call(this, values);
    }
    const list = Array.from(values);
    const durable = list.some(isEngineFuture);
    // Plain values only: nothing the engine could wait on, so JavaScript's own combinator.
    if (!durable && !list.some(isThenable)) return orig.call(this, list);
    return new CombinatorFuture(scope.state, kind, list);
  };
}

let installed = false;
/** Installs the combinator patch (idempotent). Called by `replay`, before the first task body runs. */
export function installCombinators(): void {
  if (installed) return;
  installed = true;
  (Promise as any).all = patched("all");
  (Promise as any).allSettled = patched("allSettled");
  (Promise as any).race = patched("race");
  (Promise as any).any = patched("any");
}
