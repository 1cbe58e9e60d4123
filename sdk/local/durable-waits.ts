/**
 * The embedded engine's durable waits: it takes over every `aloft:sleep` / `aloft:signal` call
 * (sdk/core/durable-waits.ts) instead of running a body, and completes it when its timer is due or
 * a signal arrives. Timers are one-shot and unref'd (a run in progress holds the process, not its
 * timers); a timer that fires before its recorded due time (a clock step, a chained long wait) is
 * set again for the rest, so a wait ends late, never early. Signals and callback completions from
 * another process (`aloft signal`, `aloft callback`) are found by polling the store, as cancels are.
 * A callback ends once, by whichever of its completion, its timeout or its cancel updates its row
 * first (wait-store.ts).
 */
import type { CallId, Outcome } from "../core/history.ts";
import { parseOutcome } from "../core/history.ts";
import { cancelledOutcome } from "../core/cancels.ts";
import type { CallbackRow } from "./wait-store.ts";
import type { DurableWait } from "../core/durable-waits.ts";
import { CALLBACK_TASK, durableWaitOf, dueOutcome, dueStatus } from "../core/durable-waits.ts";
import type { Payload } from "../serde.ts";
import type { ActionStatus } from "./store.ts";
import type { WaitStore } from "./wait-store.ts";
import type { Clock } from "../core/clock.ts";

/** Time as the waits see it: injectable, so tests play hours out without waiting them. */
export type WaitClock = Clock;

export const realWaitClock: WaitClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** Longest single timer: Node's setTimeout holds at most 2^31-1 ms; longer waits are chained. */
const MAX_TIMER_MS = 2 ** 30;

interface Armed {
  runId: string;
  wait: DurableWait;
  timer?: unknown;
}

export class LocalWaits {
  private readonly armed = new Map<CallId, Armed>();
  /** Signal waits not yet satisfied, per run and name, in the order they were recorded. */
  private readonly waiting = new Map<string, CallId[]>();
  private seenSeq: number;
  /** Callbacks waiting here, by secret. */
  private readonly callbacks = new Map<string, CallId>();
  private seenCompletion: number;

  constructor(
    private readonly store: WaitStore,
    private readonly clock: WaitClock,
    /** Ends the action (the engine's finish: idempotent, tells the parent). */
    private readonly complete: (id: CallId, status: ActionStatus, outcome: Outcome) => void,
  ) {
    this.seenSeq = store.lastSeq();
    this.seenCompletion = store.lastCompletion();
  }

  /**
   * Takes over the actions among `actions` that are durable waits (given in the order their calls
   * were recorded); returns those it took.
   */
  arm(actions: readonly { id: CallId; runId: string; task: string; args: string }[]): Set<CallId> {
    const taken = new Set<CallId>();
    const rows = [];
    for (const a of actions) {
      const wait = durableWaitOf(a.task, a.args);
      if (!wait) continue;
      taken.add(a.id);
      rows.push({ a, wait, row: this.store.register(a.id, a.runId, wait, this.clock.now()) });
    }
    // After a restart, waits of one name queue in the order they were first recorded.
    rows.sort((x, y) => x.row.since - y.row.since);
    for (const { a, wait, row } of rows) {
      const entry: Armed = { runId: a.runId, wait };
      this.armed.set(a.id, entry);
      if (wait.kind === "signal") {
        const key = `${a.runId}\u0000${wait.name}`;
        const queue = this.waiting.get(key);
        // A wait queued behind earlier ones of its name takes nothing yet: signals go in wait order.
        const payload =
          this.store.consumedBy(a.id) ??
          (queue?.length ? undefined : this.store.take(a.runId, wait.name, a.id));
        if (payload !== undefined) {
          this.received(a.id, payload);
          continue;
        }
        if (queue) queue.push(a.id);
        else this.waiting.set(key, [a.id]);
      }
      if (wait.kind === "callback") {
        const cb = this.store.registerCallback(wait.secret, a.runId, a.id, row.since);
        // Completed (or timed out) while no engine ran it: deliver what its row says.
        if (cb.state !== null && cb.state !== "CANCELLED") {
          this.settleFrom(a.id, cb);
          continue;
        }
        this.callbacks.set(wait.secret, a.id);
      }
      if (row.due !== null) this.schedule(a.id, entry, row.due);
    }
    return taken;
  }

  /** Stores a signal (refused for a run that ended) and hands it to the first wait of its name. */
  send(runId: string, name: string, payload: Payload): void {
    this.store.send(runId, name, payload, this.clock.now());
    this.match(runId, name);
  }

  /**
   * Records the first completion of a callback (refused, with the error that says why, for one that
   * is over, unknown, or of a run that ended) and delivers it if its wait is here.
   */
  completeCallback(runId: string, secret: string, outcome: Outcome): void {
    this.store.completeCallback(runId, secret, outcome, this.clock.now());
    const id = this.callbacks.get(secret);
    if (id !== undefined) this.settleFrom(id, this.store.callback(secret)!);
  }

  /** Hands signals sent and callbacks completed by other processes since the last look to the waits here. */
  poll(): void {
    if (this.callbacks.size)
      for (const c of this.store.completedSince(this.seenCompletion)) {
        this.seenCompletion = Math.max(this.seenCompletion, c.seq);
        if (this.callbacks.get(c.secret) === c.action_id)
          this.settleFrom(c.action_id, this.store.callback(c.secret)!);
      }
    else this.seenCompletion = this.store.lastCompletion();
    if (!this.waiting.size) {
      this.seenSeq = this.store.lastSeq();
      return;
    }
    const fresh = this.store.sentSince(this.seenSeq);
    for (const s of fresh) {
      this.seenSeq = Math.max(this.seenSeq, s.seq);
      this.match(s.run_id, s.name);
    }
  }

  /**
   * The action ended otherwise (cancelled, its run ended): a callback still waiting is closed, so a
   * late completion is told so.
   */
  ended(id: CallId, status: ActionStatus): void {
    const e = this.armed.get(id);
    if (e?.wait.kind === "callback")
      this.store.endCallback(e.wait.secret, status, cancelledOutcome(CALLBACK_TASK), this.clock.now());
    this.forget(id);
  }

  /** The action ended (completed here, or cancelled, or its run ended): drop its timer and place. */
  forget(id: CallId): void {
    const e = this.armed.get(id);
    if (!e) return;
    this.armed.delete(id);
    if (e.timer !== undefined) this.clock.clearTimeout(e.timer);
    if (e.wait.kind === "callback") this.callbacks.delete(e.wait.secret);
    if (e.wait.kind === "signal") {
      const key = `${e.runId}\u0000${e.wait.name}`;
      const q = this.waiting.get(key)?.filter((x) => x !== id);
      if (q?.length) this.waiting.set(key, q);
      else this.waiting.delete(key);
    }
  }

  close(): void {
    for (const id of [...this.armed.keys()]) this.forget(id);
  }

  private match(runId: string, name: string): void {
    const key = `${runId}\u0000${name}`;
    for (let q = this.waiting.get(key); q?.length; q = this.waiting.get(key)) {
      const payload = this.store.take(runId, name, q[0]!);
      if (payload === undefined) return;
      this.received(q[0]!, payload);
    }
  }

  private received(id: CallId, payload: Payload): void {
    this.forget(id);
    this.complete(id, "SUCCEEDED", { ok: true, value: payload });
  }

  private schedule(id: CallId, e: Armed, due: number): void {
    const left = due - this.clock.now();
    if (left <= 0) return this.due(id, e);
    e.timer = this.clock.setTimeout(
      () => {
        e.timer = undefined;
        if (this.armed.get(id) === e) this.schedule(id, e, due);
      },
      Math.min(left, MAX_TIMER_MS),
    );
  }

  private due(id: CallId, e: Armed): void {
    if (e.wait.kind === "callback") {
      // Times out unless a completion got there first (then that is delivered).
      const cb = this.store.endCallback(e.wait.secret, "TIMED_OUT", dueOutcome(e.wait), this.clock.now());
      if (cb) return this.settleFrom(id, cb);
    }
    this.forget(id);
    this.complete(id, dueStatus(e.wait), dueOutcome(e.wait));
  }

  /** Ends a callback's action as its row says (a completion, a failure, its timeout). */
  private settleFrom(id: CallId, cb: CallbackRow): void {
    this.forget(id);
    this.complete(id, cb.state!, parseOutcome(`callback of ${id}`, cb.outcome!));
  }
}
