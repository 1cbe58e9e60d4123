/**
 * Test helpers over aloft/testing (sdk/testing): the recorder and driver users get, plus assertions
 * on decisions.
 */
import assert from "node:assert/strict";
import type { Decision } from "../../sdk/core/replay.ts";
import type { History } from "../../sdk/core/history.ts";
import type { SerializedError } from "../../sdk/errors.ts";
import { deserialize } from "../../sdk/serde.ts";
import type { TaskDef } from "../../sdk/core/task-def.ts";
import { replayTask } from "../../sdk/testing/drive.ts";

export { Recorder, fail, ok } from "../../sdk/testing/history.ts";
export { drive, watch } from "../../sdk/testing/drive.ts";
export type { Driven } from "../../sdk/testing/drive.ts";

/** The first argument of a recorded call (most test children take one). */
export const arg0 = (c: { args: string }): any => (JSON.parse(c.args) as unknown[])[0];

export function replayWith(
  def: TaskDef,
  args: unknown[],
  history: History,
  actionId = "root",
): Promise<Decision> {
  return replayTask(def, args, history, actionId);
}

type Kind<K extends Decision["kind"]> = Extract<Decision, { kind: K }>;

function expectKind<K extends Decision["kind"]>(d: Decision, kind: K): Kind<K> {
  const shown =
    d.kind === "failed" ? `failed with ${d.error.name}: ${d.error.message}` : JSON.stringify(d).slice(0, 500);
  assert.equal(d.kind, kind, `expected a ${kind} decision, got ${shown}`);
  return d as Kind<K>;
}

/** The completed decision's value, deserialised. */
export const completedValue = (d: Decision): unknown => deserialize(expectKind(d, "completed").value);
export const failedError = (d: Decision): SerializedError => expectKind(d, "failed").error;
export const suspended = (d: Decision): Kind<"suspended"> => expectKind(d, "suspended");
