/**
 * A task called inside a task body: derive the call's identity, match it against history, and hand
 * back a durable future (async), the value itself (sync), or suspend the body (sync, not yet known).
 * Identity scheme: docs/identity.md.
 */
import { ConfigurationError } from "../errors.ts";
import { digest, serialize } from "../serde.ts";
import type { Payload } from "../serde.ts";
import { HISTORY_VERSION, IDENTITY_VERSION } from "./history.ts";
import type { CallId, CallRecord, Outcome } from "./history.ts";
import { DurableFuture, outcomeValue } from "./futures.ts";
import type { Scope } from "./state.ts";
import { SuspendSignal } from "./state.ts";
import type { TaskDef } from "./task-def.ts";

/** Serialises an argument list, naming the argument that fails. */
export function serializeArgs(task: string, args: readonly unknown[]): Payload {
  const parts = args.map((a, i) => serialize(a, `argument ${i + 1} of task ${task}`));
  return `[${parts.join(",")}]`;
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
): Call {
  const st = scope.state;
  if (st.closed) {
    throw new ConfigurationError(
      `task ${def.name} was called by ${st.taskName} after that task had finished or suspended; ` +
        `await every child call inside the task body`,
    );
  }
  const names = jsonBytes(def.name) + jsonBytes(scope.group);
  if (names > CALL_NAMES_BYTES) {
    throw new ConfigurationError(
      `task ${def.name} was called in group ${JSON.stringify(scope.group.slice(0, 80))}... whose path and ` +
        `task name take ${names} bytes; at most ${CALL_NAMES_BYTES} fit, since they are recorded with every ` +
        `call: use shorter group names`,
    );
  }
  const payload = serializeArgs(def.name, args);
  const inputs = digest(payload);
  const seqKey = `${def.name}\u0000${scope.group}\u0000${inputs}`;
  const n = st.callSeq.get(seqKey) ?? 0;
  st.callSeq.set(seqKey, n + 1);
  const id = callIdentity(st.actionId, def.name, scope.group, inputs, n);
  st.touch();
  if (st.history.calls.has(id)) st.reissued.add(id);
  else {
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
    st.newCalls.push(rec);
  }
  return { id, outcome: st.history.outcomes.get(id) };
}

/** An async call: a durable future. */
export function callAsync(scope: Scope, def: TaskDef, args: readonly unknown[]): DurableFuture {
  const { id, outcome } = makeCall(scope, def, args);
  const f = new DurableFuture(scope.state, id, def.name, outcome);
  if (!outcome) {
    scope.state.fresh.push(f);
    for (const c of scope.state.openClaims) c.claim(f);
  }
  return f;
}

/** A sync call: the value now, or a suspension of the body until it exists. */
export function callSync(scope: Scope, def: TaskDef, args: readonly unknown[]): unknown {
  const { id, outcome } = makeCall(scope, def, args);
  if (!outcome) {
    scope.state.requestSuspend({ kind: "call", id });
    throw new SuspendSignal();
  }
  const r = outcomeValue(def.name, outcome);
  if (r.ok) return r.value;
  throw r.error;
}
