/**
 * Cancelling one future, and a map's completion rules, in the replay core: given this history,
 * expect these calls, cancels and records — and the same path on every replay after.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { TaskEnvironment } from "../sdk/task.ts";
import { map } from "../sdk/map.ts";
import { CANCELLED_KEY, cancelRecord } from "../sdk/core/cancels.ts";
import { triggerFor } from "../sdk/aws/store/trigger.ts";
import { WaitTracker } from "../sdk/core/wait.ts";
import { Recorder, arg0, completedValue, fail, ok, replayWith, suspended } from "./helpers/drive.ts";

const env = new TaskEnvironment({ name: "cancel_test" });
const child = env.task(async function child(x: number) {
  return x;
});

const name = (p: Promise<unknown>) =>
  p.then(
    (v) => `value:${String(v)}`,
    (e: Error) => e.name,
  );

const cancelsAfterFirst = env.task(async function cancelsAfterFirst() {
  const slow = child(1);
  await child(2);
  slow.cancel();
  return name(slow);
});

test("a cancel is recorded; a replay after the child finished anyway still takes the cancel path", async () => {
  const h = new Recorder();
  const d1 = suspended(await replayWith(cancelsAfterFirst.def, [], h));
  h.record(d1);
  assert.deepEqual(d1.cancels, []);
  const [slow, fast] = d1.calls;
  h.outcomes.set(fast!.id, ok(2));
  const d2 = await replayWith(cancelsAfterFirst.def, [], h);
  assert.equal(completedValue(d2), "CancelledError");
  assert.deepEqual(d2.cancels, [slow!.id]);
  // As a suspension would record it: the next replay finds the cancel in history.
  const h2 = new Recorder();
  h2.record(d1);
  h2.outcomes.set(fast!.id, ok(2));
  h2.outcomes.set(slow!.id, ok(1)); // the child finished before the cancel reached it
  h2.traces.set(`${CANCELLED_KEY}0`, {
    v: 1,
    key: `${CANCELLED_KEY}0`,
    outcome: { ok: true, value: JSON.stringify("0") },
  });
  const d3 = await replayWith(cancelsAfterFirst.def, [], h2);
  assert.equal(completedValue(d3), "CancelledError");
  assert.deepEqual(d3.cancels, [], "a cancel in history is not made again");
});

const cancelsThenWaits = env.task(async function cancelsThenWaits() {
  const a = child(1);
  const b = child(2);
  a.cancel();
  return [await name(a), await b];
});

test("a suspension records its cancels by call position; the next replay reads them back", async () => {
  const h = new Recorder();
  const d1 = suspended(await replayWith(cancelsThenWaits.def, [], h));
  assert.deepEqual(d1.cancels, [d1.calls[0]!.id]);
  const rec = d1.traces.find((t) => t.key.startsWith(CANCELLED_KEY));
  assert.equal(rec?.key, `${CANCELLED_KEY}0`);
  assert.equal(JSON.parse(rec!.outcome.ok ? rec!.outcome.value : ""), "0");
  // The wait is on the other child only.
  const t = new WaitTracker(d1.waits);
  assert.deepEqual([...t.watched()], [d1.calls[1]!.id]);
  h.record(d1);
  h.outcomes.set(d1.calls[1]!.id, ok(2));
  const d2 = await replayWith(cancelsThenWaits.def, [], h);
  assert.deepEqual(completedValue(d2), ["CancelledError", 2]);
  assert.deepEqual(d2.cancels, []);
});

const cancelsSettled = env.task(async function cancelsSettled() {
  const a = child(1);
  const v = await a;
  a.cancel();
  return [v, await name(a)];
});

test("cancel() of a future the body saw settle records nothing", async () => {
  const h = new Recorder();
  const d1 = suspended(await replayWith(cancelsSettled.def, [], h));
  h.record(d1);
  h.outcomes.set(d1.calls[0]!.id, ok(1));
  const d2 = await replayWith(cancelsSettled.def, [], h);
  assert.deepEqual(completedValue(d2), [1, "value:1"]);
  assert.deepEqual(d2.cancels, []);
});

const withRules = env.task(async function withRules(min: number) {
  const out: unknown[] = [];
  for await (const r of map.aio(child, [0, 1, 2, 3], { minSuccessful: min }))
    out.push(r instanceof Error ? r.name : r);
  return out;
});

test("minSuccessful: the replay that sees it met cancels the rest; later outcomes do not change the path", async () => {
  const h = new Recorder();
  const d1 = suspended(await replayWith(withRules.def, [2], h));
  h.record(d1);
  const stream = d1.waits.find((w) => w.kind === "stream");
  assert.deepEqual(stream?.kind === "stream" && stream.quota, { ok: 2, err: Number.MAX_SAFE_INTEGER });
  const byArg = new Map(d1.calls.map((c) => [arg0(c) as number, c.id]));
  h.outcomes.set(byArg.get(0)!, ok(0));
  h.outcomes.set(byArg.get(2)!, ok(2));
  const d2 = await replayWith(withRules.def, [2], h);
  assert.deepEqual(completedValue(d2), [0, "CancelledError", 2, "CancelledError"]);
  assert.deepEqual(new Set(d2.cancels), new Set([byArg.get(1), byArg.get(3)]));
  // Recorded (as a suspension records it); then the cancelled items finish anyway: same path.
  const rec = cancelRecord(h, [], d2.cancels)!;
  h.traces.set(rec.key, rec);
  h.outcomes.set(byArg.get(1)!, ok(1));
  h.outcomes.set(byArg.get(3)!, ok(3));
  const d3 = await replayWith(withRules.def, [2], h);
  assert.deepEqual(completedValue(d3), [0, "CancelledError", 2, "CancelledError"]);
  assert.deepEqual(d3.cancels, []);
  // minSuccessful 0: every item cancelled before it was ever sent, no warning about unawaited calls.
  const d0 = await replayWith(withRules.def, [0], new Recorder());
  assert.deepEqual(completedValue(d0), [
    "CancelledError",
    "CancelledError",
    "CancelledError",
    "CancelledError",
  ]);
  assert.deepEqual(d0.warnings, []);
});

const tolerant = env.task(function tolerant() {
  return [...map(child, [0, 1, 2, 3, 4], { toleratedFailures: "20%" })].map((r) =>
    r instanceof Error ? r.name : r,
  );
});

test("toleratedFailures as a percentage rounds down; the map fails with the counts", async () => {
  const h = new Recorder();
  const d1 = suspended(await replayWith(tolerant.def, [], h));
  h.record(d1);
  const [c0, c1] = d1.calls;
  h.outcomes.set(c0!.id, fail(new Error("x")));
  const d2 = suspended(await replayWith(tolerant.def, [], h)); // 1 failure of 5 at 20%: tolerated
  h.record(d2);
  h.outcomes.set(c1!.id, fail(new Error("y")));
  const d3 = await replayWith(tolerant.def, [], h);
  assert.equal(d3.kind, "failed");
  assert.match(
    d3.kind === "failed" ? d3.error.message : "",
    /2 of 5 items failed, more than the 1 tolerated \(0 succeeded, 3 cancelled\)/,
  );
  assert.equal(d3.kind === "failed" && d3.error.code, "MAP_FAILED");
});

test("the AWS trigger of a stream with a quota resumes once the quota may be met, never late", () => {
  const ids = ["a", "b", "c", "d"];
  const w = { kind: "stream" as const, ids, from: 0, batch: 4, failFast: false, quota: { ok: 2, err: 1 } };
  assert.deepEqual(triggerFor([w], new Map()), { D: 1, B: 2 });
  assert.deepEqual(triggerFor([w], new Map([["c", ok(1)]])), { D: 1, B: 1 });
  assert.deepEqual(triggerFor([w], new Map([["d", fail(new Error("x"))]])), { D: 0, B: 0 });
});
