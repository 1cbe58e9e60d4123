/**
 * The order in which a replay hands recorded outcomes to the body (docs/replay.md, "Delivery
 * order").
 *
 * A replay knows every recorded outcome from its start, but the first execution learnt them one
 * resume at a time. Settling them all at once would let promises derived from the futures (a
 * `.then`, an async helper, a race over those) settle in another order than they did the first
 * time. So outcomes are delivered one at a time, in the order the body first observed them, and the
 * replay lets the body's microtasks settle between two deliveries that may run its code.
 *
 * The order is recorded in the history as engine records among the traces (`observed:<r>`, one per
 * replay that observed something new), so both adapters persist it with the rest of a decision.
 * Outcomes no replay observed yet are delivered after the recorded ones, in call order.
 */
import { HistoryError } from "../errors.ts";
import { deserialize, serialize } from "../serde.ts";
import { HISTORY_VERSION } from "./history.ts";
import type { CallId, History, TraceRecord } from "./history.ts";

/** Trace-key prefix of observation records; user trace keys always contain `|`, these never do. */
export const OBSERVED_KEY = "observed:";

/** Something waiting for an outcome to be delivered: a subscribed future, a `map.aio` item. */
export interface Receiver {
  /** Settles the receiver's promise from the outcome. */
  deliver(): void;
  /** Whether settling it may run the body's code (then the replay drains microtasks after it). */
  visible(): boolean;
}

/** Call positions as ascending runs, e.g. `0-4,7,9-10`. */
export function encodePositions(positions: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < positions.length;) {
    let j = i;
    while (j + 1 < positions.length && positions[j + 1] === positions[j]! + 1) j++;
    parts.push(j === i ? String(positions[i]) : `${positions[i]}-${positions[j]}`);
    i = j + 1;
  }
  return parts.join(",");
}

export function decodePositions(text: string): number[] {
  if (text === "") return [];
  const out: number[] = [];
  for (const part of text.split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new HistoryError(`corrupted history record (observation order): ${JSON.stringify(part)}`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    for (let p = a; p <= b; p++) out.push(p);
  }
  return out;
}

/**
 * Whether every call the history's observation records name has its outcome in the history (an
 * adapter that may read outcomes stale checks this before replaying: see Delivery's constructor,
 * which rejects a record naming an unsettled call as corrupt). Records it cannot read count as
 * settled: the replay reports them.
 */
export function observedSettled(history: History): boolean {
  const named = new Set<number>();
  for (let r = 0, rec; (rec = history.traces.get(`${OBSERVED_KEY}${r}`)); r++) {
    const text = rec.outcome.ok ? deserialize(rec.outcome.value) : undefined;
    if (typeof text !== "string") return true;
    try {
      for (const p of decodePositions(text)) named.add(p);
    } catch {
      return true;
    }
  }
  if (!named.size) return true;
  let p = 0;
  for (const id of history.calls.keys()) if (named.has(p++) && !history.outcomes.has(id)) return false;
  return true;
}

/** A call whose outcome the body has been handed (or that it cancelled). */
const DELIVERED = 0;

export class Delivery {
  /** Outcomes in delivery order: the recorded order, then the new ones in call order. */
  private readonly order: CallId[] = [];
  /** How many of `order` earlier replays (or decisions of this one, continued) observed. */
  private recorded: number;
  /** Observation records already in the history (the next one is numbered so). */
  private records: number;
  /** The recorded calls, in call order (positions in observation records index this). */
  private readonly calls: ReadonlyMap<CallId, unknown>;
  private next = 0;
  /**
   * Per call: its receivers (one, or a list when several wait for it) until it is delivered, then
   * DELIVERED. One map for both: a gather's last replay holds an entry per child.
   */
  private readonly states = new Map<CallId, Receiver | Receiver[] | typeof DELIVERED>();
  /** Cancelled calls: the body sees them settle when it cancels them, not in this order. */
  private readonly cancelled: ReadonlySet<CallId>;

  constructor(history: History, cancelled: ReadonlySet<CallId> = new Set()) {
    this.cancelled = cancelled;
    this.calls = history.calls;
    // The calls by position, listed only if there is an observation record to read.
    let ids: CallId[] | undefined;
    const seen = new Set<CallId>();
    let r = 0;
    for (
      let rec = history.traces.get(`${OBSERVED_KEY}${r}`);
      rec;
      rec = history.traces.get(`${OBSERVED_KEY}${++r}`)
    ) {
      const text = rec.outcome.ok ? deserialize(rec.outcome.value) : undefined;
      if (typeof text !== "string")
        throw new HistoryError(`corrupted history record (observation order ${r}): not a list of positions`);
      ids ??= [...history.calls.keys()];
      for (const p of decodePositions(text)) {
        const id = ids[p];
        if (id === undefined || !history.outcomes.has(id) || seen.has(id))
          throw new HistoryError(
            `corrupted history record (observation order ${r}): position ${p} is not a settled call of this action`,
          );
        seen.add(id);
        this.order.push(id);
      }
    }
    this.records = r;
    this.recorded = this.order.length;
    for (const id of history.calls.keys())
      if (history.outcomes.has(id) && !seen.has(id) && !cancelled.has(id)) this.order.push(id);
    // Last, calls cancelled in history: the body cancels them again before it needs their outcome,
    // unless it diverged — then they still settle (CancelledError) rather than hang the replay.
    for (const id of cancelled) if (!seen.has(id)) this.order.push(id);
  }

  /**
   * An outcome that arrived while a continued replay was parked (continuation.ts): delivered after
   * those already in the order. Arrivals come in call order, as a fresh replay orders outcomes no
   * earlier replay observed.
   */
  arrive(id: CallId): void {
    this.order.push(id);
  }

  /** A decision was made: what it recorded as observed (`recorded`: whether it made a record) is history. */
  decided(recorded: boolean): void {
    this.recorded = Math.min(this.next, this.order.length);
    if (recorded) this.records++;
  }

  /** A call the body cancels: settled now, for whoever subscribed (never recorded as observed). */
  cancel(id: CallId): void {
    const list = this.states.get(id);
    if (list === DELIVERED) return;
    this.states.set(id, DELIVERED);
    if (!list) return;
    for (const r of Array.isArray(list) ? list : [list]) {
      r.visible();
      r.deliver();
    }
  }

  isDelivered(id: CallId): boolean {
    return this.states.get(id) === DELIVERED;
  }

  /** Has `r` delivered when `id`'s outcome is (at once if it has been). */
  onDelivery(id: CallId, r: Receiver): void {
    const at = this.states.get(id);
    if (at === DELIVERED) return r.deliver();
    if (at === undefined) this.states.set(id, r);
    else if (Array.isArray(at)) at.push(r);
    else this.states.set(id, [at, r]);
  }

  /**
   * Delivers outcomes in order, stopping after the first one that may run the body's code (the
   * caller lets the microtasks settle before calling again). False when none remained.
   */
  deliverNext(): boolean {
    if (this.next >= this.order.length) return false;
    while (this.next < this.order.length) {
      const id = this.order[this.next++]!;
      const list = this.states.get(id);
      if (list === DELIVERED) continue; // cancelled by the body already
      this.states.set(id, DELIVERED);
      if (!list) continue;
      let visible = false;
      if (!Array.isArray(list)) {
        visible = list.visible();
        list.deliver();
      } else
        for (const r of list) {
          if (r.visible()) visible = true;
          r.deliver();
        }
      if (visible) break;
    }
    return true;
  }

  /** The record of the outcomes this replay delivered that no earlier replay had (if any). */
  record(): TraceRecord | undefined {
    const end = Math.min(this.next, this.order.length);
    if (end <= this.recorded) return undefined;
    const fresh = new Set(this.order.slice(this.recorded, end).filter((id) => !this.cancelled.has(id)));
    if (!fresh.size) return undefined;
    // Positions are looked up here, once, rather than kept for every call through the replay.
    const at = new Map<CallId, number>();
    let i = 0;
    for (const id of this.calls.keys()) {
      if (fresh.has(id)) at.set(id, i);
      i++;
    }
    const positions = [...fresh].map((id) => at.get(id)!);
    return {
      v: HISTORY_VERSION,
      key: `${OBSERVED_KEY}${this.records}`,
      outcome: { ok: true, value: serialize(encodePositions(positions)) },
    };
  }
}
