/**
 * task.override and traced generators in the replay core: given a history, expect these calls,
 * records and errors.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { TaskEnvironment } from "../sdk/task.ts";
import { trace } from "../sdk/trace.ts";
import { ConfigurationError } from "../sdk/errors.ts";
import { executorFor, executorSizes, findEnvironment } from "../sdk/registry.ts";
import { Recorder, completedValue, drive, failedError, ok, replayWith, suspended } from "./helpers/drive.ts";

const env = new TaskEnvironment({ name: "override_test", memorySizesMiB: [2048, 512, 2048] });
const child = env.task(async function child(x: number) {
  return x + 1;
});

const plainParent = env.task(async function plainParent() {
  return child(1);
});
const overriddenParent = env.task(async function overriddenParent() {
  return child.override({ retries: 4, timeout: "2s", cache: { version: "v2" }, memoryMiB: 2048 })(1);
});

test("an override records the call's settings and leaves its identity as it was", async () => {
  const plain = suspended(await replayWith(plainParent.def, [], new Recorder()));
  const over = suspended(await replayWith(overriddenParent.def, [], new Recorder()));
  assert.equal(over.calls[0]!.id, plain.calls[0]!.id);
  assert.equal(plain.calls[0]!.settings, undefined);
  assert.deepEqual(over.calls[0]!.settings, {
    retries: { count: 4, backoff: { baseMs: 1000, factor: 2, capMs: 60_000 } },
    timeoutMs: 2000,
    cacheVersion: "v2",
    memoryMiB: 2048,
  });
  // A history recorded without the override replays under it (and the other way round).
  const h = new Recorder();
  h.record(plain);
  h.outcomes.set(plain.calls[0]!.id, ok(2));
  assert.equal(completedValue(await replayWith(overriddenParent.def, [], h)), 2);
});

test("override options are checked: unknown keys and bad values say what is valid", () => {
  assert.throws(
    () => child.override({ retry: 3 } as never),
    (e: Error) =>
      e instanceof ConfigurationError &&
      /unknown option "retry"/.test(e.message) &&
      /retries/.test(e.message),
  );
  assert.throws(() => child.override({ timeout: "soon" as never }), /not a duration/);
  assert.throws(() => child.override({ memoryMiB: 64 }), ConfigurationError);
});

test("memoryMiB: a size the environment deploys (rounded up to one); above all of them, an error naming the fix", () => {
  assert.deepEqual(executorSizes(findEnvironment("override_test")!), [
    { key: "override_test", memoryMiB: 1024 },
    { key: "override_test@512", memoryMiB: 512 },
    { key: "override_test@2048", memoryMiB: 2048 },
  ]);
  const spec = findEnvironment("override_test")!;
  assert.equal(executorFor(spec, undefined)?.key, "override_test");
  assert.equal(executorFor(spec, 300)?.key, "override_test@512");
  assert.equal(executorFor(spec, 1000)?.key, "override_test");
  assert.equal(executorFor(spec, 1500)?.key, "override_test@2048");
  assert.equal(executorFor(spec, 4096), undefined);
  assert.equal(child.override({ memoryMiB: 1500 }).settings?.memoryMiB, 1500);
  assert.throws(
    () => child.override({ memoryMiB: 4096 }),
    (e: Error) =>
      e instanceof ConfigurationError &&
      e.message.includes(
        'memoryMiB 4096 is more than environment "override_test" deploys (512, 1024, 2048 MiB)',
      ) &&
      e.message.includes("memorySizesMiB: [512, 2048, 4096]"),
  );
  assert.throws(
    () => new TaskEnvironment({ name: "override_bad_sizes", memorySizesMiB: [100] }),
    /memorySizesMiB/,
  );
});

test("overrides compose, the later setting winning", async () => {
  const twice = child.override({ retries: 1, timeout: "1s" }).override({ retries: 2 });
  const p = env.task(async function composed() {
    return twice(1);
  });
  const d = suspended(await replayWith(p.def, [], new Recorder()));
  assert.equal(d.calls[0]!.settings?.retries?.count, 2);
  assert.equal(d.calls[0]!.settings?.timeoutMs, 1000);
});

let runs = 0;
const letters = trace(function* letters(n: number) {
  runs++;
  for (let i = 0; i < n; i++) yield String.fromCharCode(97 + i);
  return n;
});
const leavesEarly = env.task(async function leavesEarly(take: number) {
  const got: string[] = [];
  for (const l of letters(5)) {
    if (got.length === take) break;
    got.push(l);
  }
  return [...got, String(await child(got.length))];
});

test("a traced generator left early records what it yielded; replays stop at the same place", async () => {
  runs = 0;
  const { final, decisions } = await drive(leavesEarly.def, [2], () => ok(3));
  assert.deepEqual(completedValue(final), ["a", "b", "3"]);
  assert.equal(runs, 1, "the generator ran once");
  assert.equal(decisions[0]!.traces[0]!.gen, "sync");
});

test("a replay that asks a traced generator for more than it recorded fails as not deterministic", async () => {
  const h = new Recorder();
  const first = suspended(await replayWith(leavesEarly.def, [1], h));
  h.record(first);
  h.outcomes.set(first.calls[0]!.id, ok(2));
  // The same history, consumed further: the record ends where the first run left it.
  const e = failedError(await replayWith(leavesEarly.def, [3], h));
  assert.match(e.message, /left after 2 item\(s\)/);
});

const failing = trace(async function* failing() {
  yield 1;
  throw new RangeError("source broke");
});
const readsFailing = env.task(async function readsFailing() {
  const got: unknown[] = [];
  try {
    for await (const x of failing()) got.push(x);
  } catch (e) {
    got.push((e as Error).name);
  }
  got.push(await child(0));
  return got;
});

test("a traced async generator that throws replays its items, then the same error", async () => {
  const { final } = await drive(readsFailing.def, [], () => ok(1));
  assert.deepEqual(completedValue(final), [1, "RangeError", 1]);
});

const unserialisable = trace(function* unserialisable() {
  yield () => 1;
});
const readsUnserialisable = env.task(async function readsUnserialisable() {
  return [...unserialisable()];
});

test("a traced generator yielding what cannot be serialised fails naming the item", async () => {
  const e = failedError(await replayWith(readsUnserialisable.def, [], new Recorder()));
  assert.match(e.message, /item 0 yielded by trace unserialisable/);
});
