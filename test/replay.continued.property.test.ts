/**
 * A continued replay (sdk/core/continuation.ts) decides exactly what a fresh replay of the same
 * history decides, at every step of a parent's life, whatever order its children finish in: the
 * same calls, traces (observation and cancel records, deciders), waits and result. So a crash that
 * loses the continuation, and replays the parent afresh from what the continued one recorded,
 * finds the history it expects.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { TaskEnvironment } from "../sdk/task.ts";
import type { Task } from "../sdk/task.ts";
import { map } from "../sdk/map.ts";
import { group } from "../sdk/group.ts";
import { trace } from "../sdk/trace.ts";
import type { Future } from "../sdk/index.ts";
import { replay } from "../sdk/core/replay.ts";
import type { Decision } from "../sdk/core/replay.ts";
import type { Continuation } from "../sdk/core/continuation.ts";
import type { CallId, History, Outcome } from "../sdk/core/history.ts";
import { serialize } from "../sdk/serde.ts";
import { Recorder, arg0, fail, ok, replayWith, watch } from "./helpers/drive.ts";

const env = new TaskEnvironment({ name: "replay_continued" });
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const child = env.task(async function child(i: number) {
  return i * 3;
});
const show = (r: unknown): unknown => (r instanceof Error ? `E${r.name}` : r);
const stamp = trace(function stamp(x: number) {
  return x + 0.5;
});

const programs: Record<string, Task<(k: number) => unknown>> = {
  gather: env.task(async function gather(k: number) {
    return Promise.all(range(k).map((i) => child(i)));
  }),
  settled: env.task(async function settled(k: number) {
    const rs = await Promise.allSettled(range(k).map((i) => child(i)));
    return rs.map((r) => (r.status === "fulfilled" ? r.value : show(r.reason)));
  }),
  sequential: env.task(async function sequential(k: number) {
    const out: unknown[] = [];
    for (const i of range(k)) {
      try {
        out.push(await child(i));
      } catch (e) {
        out.push(show(e));
      }
    }
    return out;
  }),
  raceThenCancel: env.task(async function raceThenCancel(k: number) {
    const fs = range(k).map((i) => child(i));
    let w: unknown;
    try {
      w = await Promise.race(fs);
    } catch (e) {
      w = show(e);
    }
    for (const f of fs) (f as Future<number>).cancel();
    const rest = await Promise.allSettled(fs);
    return [w, rest.map((r) => (r.status === "fulfilled" ? r.value : show(r.reason))), await child(1000)];
  }),
  anyThenGather: env.task(async function anyThenGather(k: number) {
    let first: unknown;
    try {
      first = await Promise.any(range(k).map((i) => child(i)));
    } catch (e) {
      first = show(e);
    }
    const second = await Promise.allSettled(range(k).map((i) => child(i + 100)));
    return [first, second.length];
  }),
  nested: env.task(async function nested(k: number) {
    const half = Math.ceil(k / 2);
    const a = group("a", () => Promise.all(range(half).map((i) => child(i))));
    const b = group("b", () => Promise.allSettled(range(k - half).map((i) => child(i + half))));
    const [x, y] = await Promise.allSettled([a, b]);
    return [show(x.status === "fulfilled" ? x.value : x.reason), y.status];
  }),
  tracedSteps: env.task(async function tracedSteps(k: number) {
    let acc = 0;
    for (const i of range(Math.min(k, 6))) {
      const xs = await Promise.allSettled([child(i), child(i + 50)]);
      acc += stamp(xs.filter((x) => x.status === "fulfilled").length);
    }
    return acc;
  }),
  thenChains: env.task(async function thenChains(k: number) {
    // Futures followed by user reactions: their order depends on the order outcomes are delivered.
    const seen: number[] = [];
    const fs = range(k).map((i) => child(i));
    fs.forEach((f, i) =>
      f.then(
        () => seen.push(i),
        () => seen.push(-i),
      ),
    );
    await Promise.allSettled(fs);
    return seen;
  }),
  // A streamed map, with children awaited between its items: its parked read is handed each item.
  mapStream: env.task(async function mapStream(k: number) {
    const out: unknown[] = [];
    for await (const r of map.aio(child, range(k), { concurrency: 3 })) {
      out.push(show(r));
      if (out.length % 3 === 0) out.push(await child(100 + out.length));
    }
    return out;
  }),
  // A streamed item and another future's reaction: which runs first depends on delivery order.
  mapStreamRacing: env.task(async function mapStreamRacing(k: number) {
    const log: unknown[] = [];
    const side = range(2).map((i) => child(i + 300));
    side.forEach((f, i) =>
      f.then(
        () => log.push(`s${i}`),
        () => log.push(`x${i}`),
      ),
    );
    for await (const r of map.aio(child, range(k), { concurrency: 2 })) log.push(show(r));
    await Promise.allSettled(side);
    return log;
  }),
  // Left early at its first failure (the rest cancelled), with a stream beside it and a child after.
  mapStreamLeft: env.task(async function mapStreamLeft(k: number) {
    let acc = 0;
    const other = Promise.allSettled(range(2).map((i) => child(i + 200)));
    try {
      for await (const r of map.aio(child, range(k), { returnExceptions: false })) acc += r as number;
    } catch {
      acc = -1;
    }
    return [acc, (await other).map((r) => r.status), await child(500)];
  }),
  // Not continued (a sync map, a map with a completion rule, a gather over plain promises):
  // replayed afresh, which must still work.
  mapRule: env.task(async function mapRule(k: number) {
    const out: unknown[] = [];
    for await (const r of map.aio(child, range(k), { minSuccessful: Math.ceil(k / 2) })) out.push(show(r));
    return out;
  }),
  mapThenGather: env.task(async function mapThenGather(k: number) {
    const xs = [...map(child, range(k))].map(show);
    const ys = await Promise.all(range(k).map(async (i) => (await child(i + 10)) + 1));
    return [xs, ys];
  }),
};

/** Bodies that used what a continuation cannot carry (a sync map, a map's completion rule). */
const NEVER = new Set(["mapRule", "mapThenGather"]);

/** Child i fails when the schedule says so; a failed child of a gather fails the gather. */
const outcomeOf = (failing: readonly boolean[]) => (c: { args: string }) => {
  const i = arg0(c) as number;
  return failing[i % failing.length] ? fail(new RangeError(`bad ${i}`)) : ok(i * 3);
};

/** A copy whose maps the continued replay may own (the recorder is shared with the fresh side). */
const own = (h: History): History => ({
  calls: new Map(h.calls),
  outcomes: new Map(h.outcomes),
  traces: new Map(h.traces),
});

/** Decisions compared as data (a continued one has the same fields). */
const data = (d: Decision): unknown => JSON.parse(JSON.stringify({ ...d, bodyMs: undefined }));

interface Lockstep {
  decisions: number;
  continued: number;
}

/**
 * Drives `task` twice in lockstep over one schedule: one side replays afresh at every resume, the
 * other continues where it can. Every decision of the two must be equal.
 */
async function lockstep(
  task: Task<(k: number) => unknown>,
  k: number,
  failing: boolean[],
  pick: number[],
): Promise<Lockstep> {
  const history = new Recorder();
  const args = serialize([k]);
  let cont: Continuation | undefined;
  let arrived = new Map<CallId, Outcome>();
  let decisions = 0;
  let continued = 0;
  const next = async (): Promise<Decision> => {
    const fresh = await replayWith(task.def, [k], history);
    let kept: Decision;
    if (cont?.usable) {
      kept = await cont.resume(arrived);
      continued++;
      if (!cont.usable) cont = undefined;
    } else {
      cont = undefined;
      const onPark = (c: Continuation): void => void (cont = c);
      kept = await replay({ task: task.def, args, actionId: "root", history: own(history), onPark });
    }
    arrived = new Map();
    assert.deepEqual(data(kept), data(fresh), `decision ${decisions} differs`);
    decisions++;
    // The fresh side's next replay reads what the continued side recorded: a crash that lost the
    // continuation replays from exactly that.
    history.record(kept);
    return kept;
  };
  let d = await next();
  let p = 0;
  while (d.kind === "suspended") {
    assert.ok(decisions < 4 * k + 20, "replay loop");
    const tracker = watch(d.waits, history);
    while (!tracker.satisfied) {
      const pending = history.pending();
      assert.ok(pending.length > 0, `stuck on ${JSON.stringify(d.waits)}`);
      const c = pending[pick[p++ % pick.length]! % pending.length]!;
      const o = outcomeOf(failing)(c);
      history.outcomes.set(c.id, o);
      arrived.set(c.id, o);
      tracker.settle(c.id, o.ok);
    }
    d = await next();
  }
  return { decisions, continued };
}

for (const [name, task] of Object.entries(programs)) {
  await test(`a continued ${name} decides as a fresh replay at every step, in any finishing order`, async () => {
    let continued = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 12 }),
        fc.array(fc.nat({ max: 40 }), { minLength: 1, maxLength: 30 }),
        async (k, failing, pick) => {
          continued += (await lockstep(task, k, failing, pick)).continued;
        },
      ),
      { numRuns: 40 },
    );
    if (NEVER.has(name)) assert.equal(continued, 0, `${name} is never continued`);
    else assert.ok(continued > 0, "no step was continued: the property compared nothing");
  });
}
