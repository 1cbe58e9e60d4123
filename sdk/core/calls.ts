/**
 * A task called inside a task body: derive the call's identity, match it against history, and hand
 * back a durable future (async), the value itself (sync), or suspend the body (sync, not yet known).
 * Identity scheme: docs/identity.md.
 */
import { ConfigurationError } from "../errors.ts";
import { digest, flatPayload, serialize } from "../serde.ts";
import type { Payload } from "../serde.ts";
import { HISTORY_VERSION, IDENTITY_VERSION } from "./history.ts";
import type { CallId, CallRecord, Outcome } from "./history.ts";
import { DurableFuture, outcomeValue } from "./futures.ts";
import { cancelledOutcome } from "./cancels.ts";
import type { ReplayState, Scope } from "./state.ts";
import { SuspendSignal } from "./state.ts";
import type { CallSettings, TaskDef } from "./task-def.ts";

/** Serialises an argument list, naming the argument that fails. */
export function serializeArgs(task: string, args: readonly unknown[]): Payload {
  let out = "[";
  for (let i = 0; i < args.length; i++) {
    if (i > 0) out += ",";
    // The argument's name for an error is built only for a value that is not flat.
    out += flatPayload(args[i]) ?? serialize(args[i], `argument ${i + 1} of task ${task}`);
  }
  return out + "]";
}

/**
 * The identity of a child call: a digest of its parent, task, group, inputs and its sequence among
 * calls with that same task, group and inputs. Nothing here depends on time or settle order.
 */
export function callIdentity(parent: CallId, task: string, group: string, inputs: string, n: number): CallId {
  return digest(parent, task, group, inputs, String(n));
}

/**
 * Bytes a call's task name and group path may take together (UTF-8, JSON-escaped): both are
 * recorded with every call, and 100 calls with up to 3,000 bytes of inline arguments each must fit
 * in one 400 KB DynamoDB item (sdk/aws/store/history.ts). Checked here so that an over-long group
 * fails its parent clearly, on every backend alike.
 */
export const CALL_NAMES_BYTES = 700;

const jsonBytes = (s: string): number => Buffer.byteLength(JSON.stringify(s));

export interface Call {
  id: CallId;
  outcome: Outcome | undefined;
}

/** Records (or re-matches) one child call in the scope's replay. */
export function makeCall(
  scope: Scope,
  def: TaskDef,
  args: readonly unknown[],
  window?: CallRecord["window"],
  settings?: CallSettings,
): Call {
  const st = scope.state;
  if (st.closed) {
    st.touch(); // a parked continuation does not continue from here (continuation.ts)
    throw new ConfigurationError(
      `task ${def.name} was called by ${st.taskName} after that task had finished or suspended; ` +
        `await every child call inside the task body`,
    );
  }
  // (A JSON-escaped UTF-16 unit takes at most 6 bytes: short names need no measuring.)
  const short = (def.name.length + scope.group.length) * 6 + 4 <= CALL_NAMES_BYTES;
  const names = short ? 0 : jsonBytes(def.name) + jsonBytes(scope.group);
  if (names > CALL_NAMES_BYTES) {
    throw new ConfigurationError(
      `task ${def.name} was called in group ${JSON.stringify(scope.group.slice(0, 80))}... whose path and ` +
        `task name take ${names} bytes; at most ${CALL_NAMES_BYTES} fit, since they are recorded with every ` +
        `call: use shorter group names`,
    );
  }
  const payload = serializeArgs(def.name, args);
  st.touch();
  const next = matchInOrder(st, def.name, scope.group, payload);
  if (next) {
    st.reissued.push(next.id);
    return { id: next.id, outcome: outcomeOf(st, def.name, next.id) };
  }
  const inputs = digest(payload);
  const n = count(st, def.name, scope.group, inputs);
  let id = callIdentity(st.actionId, def.name, scope.group, inputs, n);
  const recorded = st.history.calls.get(id);
  if (recorded) {
    // The recorded string, not this replay's equal copy: one string per child while both live.
    if (recorded.id === id) id = recorded.id;
    // And the record keeps this replay's inputs digest (the counters' key): an adapter that reads
    // a long history may leave it out (sdk/local/store.ts), and an equal copy would be one more.
    recorded.digest = inputs;
    st.reissued.push(id);
  } else {
    const rec: CallRecord = {
      v: HISTORY_VERSION,
      id,
      parent: st.actionId,
      task: def.name,
      group: scope.group,
      digest: inputs,
      n,
      args: payload,
      idv: IDENTITY_VERSION,
    };
    if (window) rec.window = window;
    if (settings) rec.settings = settings;
    st.newCalls.push(rec);
  }
  return { id, outcome: outcomeOf(st, def.name, id) };
}

/** What a call's future starts with: its recorded outcome, if any. */
function outcomeOf(st: ReplayState, task: string, id: CallId): Outcome | undefined {
  // A cancelled call's outcome is CancelledError, whatever the child did after the cancel.
  return st.cancelled.has(id) ? cancelledOutcome(task) : st.history.outcomes.get(id);
}

/** The `n` of a call's identity: how many calls with its task, group and inputs came before it. */
function count(st: ReplayState, task: string, group: string, inputs: string): number {
  // Counters by (task, group), then by inputs: a fan-out of N distinct inputs keeps N counters
  // for the whole replay, keyed by the digest itself rather than by a longer string built per call.
  const counterKey = `${task}\u0000${group}`;
  let counters = st.callSeq.get(counterKey);
  if (!counters) st.callSeq.set(counterKey, (counters = new Map()));
  const n = counters.get(inputs) ?? 0;
  counters.set(inputs, n + 1);
  return n;
}

/**
 * The recorded call this one is, matched by position: while a replay makes its recorded calls again
 * in the order they were made (a history in call order), the call with the task, group and inputs
 * of the next record is that record, with its count and id, since every call before it was the
 * same as recorded too. That takes no digest and no counter: a gather's last replay makes its N
 * calls without either. The first call that is not the next record ends the matching, and the
 * counters are filled in for the calls matched before it; from there calls are matched by id.
 */
function matchInOrder(
  st: ReplayState,
  task: string,
  group: string,
  payload: Payload,
): CallRecord | undefined {
  const order = st.inOrder;
  if (!order) return undefined;
  const next = order.next();
  if (!next.done) {
    const rec = next.value;
    if (rec.task === task && rec.group === group && rec.args === payload) return rec;
  }
  st.inOrder = undefined;
  for (const id of st.reissued) {
    const rec = st.history.calls.get(id)!;
    count(st, rec.task, rec.group, rec.digest || (rec.digest = digest(rec.args)));
  }
  return undefined;
}

/**
 * A task call made while `map` binds a function of the item: recorded in the scope's capture list
 * instead of made (map makes it, with its window and group), and answered with a marker promise
 * that never settles, which the function must return as it is.
 */
export function captureCall(
  scope: Scope,
  def: TaskDef,
  args: readonly unknown[],
  settings: CallSettings | undefined,
): Promise<never> {
  const marker = new Promise<never>(() => {});
  scope.capture!.push({ def, args, settings, marker });
  return marker;
}

/** An async call: a durable future. */
export function callAsync(
  scope: Scope,
  def: TaskDef,
  args: readonly unknown[],
  settings?: CallSettings,
): DurableFuture {
  const { id, outcome } = makeCall(scope, def, args, undefined, settings);
  const f = new DurableFuture(scope.state, id, def.name, outcome);
  if (!outcome) {
    if (scope.state.keeping) (scope.state.waiting ??= new Map()).set(id, f);
    scope.state.fresh.push(f);
    if (scope.state.claiming) for (const c of scope.state.openClaims) c.claim(f);
  }
  return f;
}

/** A sync call: the value now, or a suspension of the body until it exists. */
export function callSync(
  scope: Scope,
  def: TaskDef,
  args: readonly unknown[],
  settings?: CallSettings,
): unknown {
  const { id, outcome } = makeCall(scope, def, args, undefined, settings);
  if (!outcome) {
    scope.state.requestSuspend({ kind: "call", id });
    throw new SuspendSignal();
  }
  const r = outcomeValue(def.name, outcome);
  if (r.ok) return r.value;
  throw r.error;
}
