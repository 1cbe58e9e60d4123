/**
 * `aloft/testing`: unit-test task bodies without an engine. A task called outside any task runs as
 * a plain function (children included), which tests its logic; to test how it fans out, suspends
 * and replays, drive it here with the outcomes of its children, or replay a recorded history.
 * @example
 * import { drive, ok } from "aloft/testing";
 * const { final, decisions } = await drive(parallelPipeline, [["a", "b"]], (call) => ok(`done ${call.args}`));
 * assert.equal(final.kind, "completed");
 * assert.equal(decisions.length, 2); // dispatch both children, then resume once
 */
export { drive, replayTask, watch } from "./drive.ts";
export type { Driven, TaskLike } from "./drive.ts";
export { Recorder, fail, loadHistory, ok } from "./history.ts";
export type { StoredHistory } from "./history.ts";
export { replay } from "../core/replay.ts";
export type { Decision, ReplayInput, Scheduler } from "../core/replay.ts";
export { emptyHistory, parseCallRecord, parseOutcome } from "../core/history.ts";
export type { CallId, CallRecord, History, Outcome, TraceRecord } from "../core/history.ts";
export { WaitTracker } from "../core/wait.ts";
export type { Wait } from "../core/wait.ts";
export { deserialize, serialize } from "../serde.ts";
export type { Payload } from "../serde.ts";
