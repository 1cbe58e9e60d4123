/**
 * The semantic suite: PRODUCT.md's API and semantics, written against a {@link Backend} so the
 * same tests run on the embedded engine and on the AWS handlers.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { RunStatus } from "aloft";
import { TERMINAL, flatten, maxOverlap } from "../helpers/status.ts";
import type { Backend } from "./backend.ts";
import * as t from "./tasks.ts";
import { boundMapScenarios, cancelScenarios, flyteScenarios, ruleScenarios } from "./flyte-suite.ts";
import { waitScenarios } from "./waits-suite.ts";
import { recoverScenarios } from "./recover-suite.ts";

function allTerminal(s: RunStatus): void {
  for (const n of flatten(s.root)) assert.ok(TERMINAL.has(n.status), `${n.task} ${n.id} left ${n.status}`);
}

export function semanticSuite(makeBackend: () => Promise<Backend>): void {
  let b: Backend;
  let dir: string;
  const key = (): string => Math.random().toString(36).slice(2, 10);

  describe("semantics", () => {
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), "aloft-sem-"));
      process.env["ALOFT_TEST_DIR"] = dir;
      b = await makeBackend();
    });
    after(async () => {
      await b.close();
      rmSync(dir, { recursive: true, force: true });
    });

    flyteScenarios(() => b, key);
    boundMapScenarios(() => b);
    cancelScenarios(() => b, key);
    ruleScenarios(() => b);
    waitScenarios(() => b);
    recoverScenarios(() => b, key);

    it("a gather returns children's results in call order and resumes its parent once", async () => {
      const r = await b.run(t.gather, 50);
      assert.deepEqual(
        await r.result(),
        Array.from({ length: 50 }, (_, i) => i * 2),
      );
      assert.equal(await b.replays(r.id), 1);
      const s = await r.status();
      assert.equal(s.root?.children.length, 50);
      allTerminal(s);
    });

    it("the async-arrow gather idiom also resumes its parent once", async () => {
      const r = await b.run(t.gatherArrows, 20);
      assert.deepEqual(
        await r.result(),
        Array.from({ length: 20 }, (_, i) => i * 2 + 1),
      );
      assert.equal(await b.replays(r.id), 1);
    });

    it("a two-stage gather (`async (i) => c2(await c1(i))`) resumes its parent once per stage", async () => {
      const r = await b.run(t.twoStage, 20);
      assert.deepEqual(
        await r.result(),
        Array.from({ length: 20 }, (_, i) => i * 4),
      );
      assert.equal(await b.replays(r.id), 2);
    });

    it("a sync task calling sync tasks gets their values (one suspension per call)", async () => {
      const r = await b.run(t.sumOfSquares, [1, 2, 3]);
      assert.equal(await r.result(), 14);
      assert.equal(await b.replays(r.id), 3);
    });

    it(".aio() fans a sync task out from an async one", async () => {
      const r = await b.run(t.aioSquares, [1, 2, 3, 4]);
      assert.deepEqual(await r.result(), [1, 4, 9, 16]);
    });

    it("nested parents: each level suspends and resumes independently", async () => {
      const r = await b.run(t.nested, 5);
      assert.deepEqual(await r.result(), { a: [0, 2, 4, 6, 8], b: [1, 4, 9] });
      const s = await r.status();
      assert.equal(flatten(s.root).length, 1 + 2 + 5 + 3);
    });

    it("map yields errors in place by default, in input order, under the task's group", async () => {
      const r = await b.run(t.mapSync, 7);
      assert.deepEqual(await r.result(), [
        "error:TaskError",
        1,
        2,
        "error:TaskError",
        4,
        5,
        "error:TaskError",
      ]);
      const s = await r.status();
      assert.ok(s.groups.some((g) => g.group === "flaky" && g.total === 7));
    });

    it("map.aio keeps at most `concurrency` children in flight and streams in order", async () => {
      const r = await b.run(t.mapAio, 24, 4);
      assert.deepEqual(
        await r.result(),
        Array.from({ length: 24 }, (_, i) => i * 2),
      );
      const s = await r.status();
      const kids = s.root!.children;
      assert.equal(kids.length, 24);
      assert.ok(kids.every((k) => k.group === "doubling"));
      const inFlight = maxOverlap(kids);
      assert.ok(inFlight <= 4, `max in flight ${inFlight} > 4`);
      assert.ok(inFlight >= 2, `max in flight ${inFlight}: the window never ran children side by side`);
      const replays = await b.replays(r.id);
      assert.ok(replays <= 8, `streaming resumes are coalesced (8 batches): ${replays} replays`);
      assert.ok(replays >= 1, "the parent resumed at least once as results streamed in");
    });

    it("a windowed map of parent tasks: each item frees its slot when it ends after resuming", async () => {
      const r = await b.run(t.mapOfParents, 8, 2);
      assert.deepEqual(
        await r.result(),
        Array.from({ length: 8 }, (_, i) => [i * i, (i + 1) * (i + 1)]),
      );
      const kids = (await r.status()).root!.children;
      assert.equal(kids.length, 8);
      assert.ok(maxOverlap(kids) <= 2, `max in flight ${maxOverlap(kids)} > 2`);
    });

    it("map.aio with returnExceptions: false throws the first failure", async () => {
      const r = await b.run(t.mapThrows, 4);
      await assert.rejects(
        r.result(),
        (e: Error) => e.name === "TaskError" && /multiple of 3/.test(e.message),
      );
    });

    it("Promise.race settles with the first child and cancels the loser", async () => {
      const r = await b.run(t.race);
      assert.equal(await r.result(), "fast");
      const s = await r.status();
      allTerminal(s);
      assert.ok(s.root!.children.some((c) => c.status === "CANCELLED"));
    });

    it("a race over promises derived with .then (as_completed) replays the path it took", async () => {
      const r = await b.run(t.asCompleted, 6);
      const batches = (await r.result()) as string[];
      assert.equal(batches.length, 3);
      const items = batches.flatMap((x) => x.split("+")).sort();
      assert.deepEqual(
        items,
        Array.from({ length: 6 }, (_, i) => `item${i}`),
      );
      allTerminal(await r.status());
    });

    it("Promise.any and Promise.allSettled behave as JavaScript says", async () => {
      assert.equal(await (await b.run(t.anyOf)).result(), "second");
      assert.deepEqual(await (await b.run(t.settled)).result(), ["TaskError", "ok"]);
    });

    it("a child's failure rejects the parent's await with a TaskError naming the child", async () => {
      const r = await b.run(t.catchesChild);
      assert.deepEqual(await r.result(), {
        name: "TaskError",
        task: "sem.boom",
        errorName: "TypeError",
        attempts: 1,
      });
    });

    it("an uncaught child failure fails the run, and the gather's other members end too", async () => {
      const r = await b.run(t.failsThrough);
      await assert.rejects(
        r.result(),
        (e: Error & { task?: string }) => e.name === "TaskError" && /gather member failed/.test(e.message),
      );
      const s = await r.status();
      assert.equal(s.state, "FAILED");
      allTerminal(s);
    });

    it("retries with backoff until an attempt succeeds", async () => {
      const k = key();
      const r = await b.run(t.callsRetried, k);
      assert.equal(await r.result(), 3);
      const child = (await r.status()).root!.children[0]!;
      assert.equal(child.attempts, 3);
    });

    it("NonRecoverableError skips the remaining retries", async () => {
      const k = key();
      const r = await b.run(t.nonRecoverable, k);
      await assert.rejects(r.result(), /retrying will not help/);
      assert.equal(t.count(`nonrec-${k}`), 1);
    });

    it("a child past its timeout rejects in the parent with TaskTimeoutError", async () => {
      const r = await b.run(t.callsTooSlow);
      assert.equal(await r.result(), "TaskTimeoutError");
      const child = (await r.status()).root!.children[0]!;
      assert.equal(child.status, "TIMED_OUT");
    });

    it("cancel stops every descendant, queued or running, and the run ends CANCELLED", async () => {
      const k = key();
      const r = await b.run(t.longParent, k, 6);
      // Cancel once the children are in the tree and two bodies have begun (not before dispatch).
      const deadline = Date.now() + 30_000;
      for (;;) {
        const kids = (await r.status()).root?.children ?? [];
        const running = kids.filter((c) => c.status === "RUNNING").length;
        if (kids.length === 6 && running > 0 && t.count(`long-${k}`) >= 2) break;
        assert.ok(
          Date.now() < deadline,
          `no children running: ${kids.length} in the tree, ${running} RUNNING, ${t.count(`long-${k}`)} begun`,
        );
        await new Promise((res) => setTimeout(res, 50));
      }
      await r.cancel();
      await assert.rejects(r.result(), (e: Error) => e.name === "CancelledError");
      const s = await r.status();
      assert.equal(s.state, "CANCELLED");
      allTerminal(s);
      assert.equal(flatten(s.root).length, 1 + 6, "the parent and its six children");
      assert.ok(flatten(s.root).every((n) => n.status === "CANCELLED"));
    });

    it("a cached task's result is reused across runs for the same inputs", async () => {
      const k = key();
      assert.deepEqual(await (await b.run(t.usesCache, k)).result(), [2, 3]);
      const second = await b.run(t.usesCache, k);
      assert.deepEqual(await second.result(), [2, 3]);
      assert.equal(t.count(`cached-${k}`), 2, "each input ran once across both runs");
      const kids = (await second.status()).root!.children;
      assert.equal(kids.length, 2, "the second run has both children");
      assert.ok(kids.every((c) => c.cached));
    });

    it("trace runs its function once and replays return the recorded value", async () => {
      const k = key();
      const r = await b.run(t.traced, k);
      assert.deepEqual(await r.result(), { visits: 1, doubled: [2, 4] });
      assert.equal(t.count(`trace-${k}`), 1);
    });

    it("a non-serialisable argument fails at the call site, naming the argument and its type", async () => {
      const r = await b.run(t.badArgument);
      await assert.rejects(
        r.result(),
        (e: Error) => /argument 1 of task sem\.double/.test(e.message) && /function/.test(e.message),
      );
      allTerminal(await r.status());
    });

    it("a task that throws a non-Error fails with an error saying to throw an Error", async () => {
      const r = await b.run(t.throwsString);
      await assert.rejects(
        r.result(),
        (e: Error) => /non-Error value/.test(e.message) && /a string, not an Error/.test(e.message),
      );
    });

    it("groups appear in the status tree", async () => {
      const r = await b.run(t.grouped);
      assert.deepEqual(await r.result(), [2, 4, 6]);
      const s = await r.status();
      const groups = Object.fromEntries(s.groups.map((g) => [g.group, g.total]));
      assert.deepEqual(groups, { first: 2, second: 1 });
    });

    it("Date, Map, Set, BigInt, Uint8Array and undefined survive a round trip through a child", async () => {
      const v = (await (await b.run(t.roundTrip)).result()) as Record<string, unknown>;
      assert.ok(v["when"] instanceof Date && v["when"].toISOString() === "2026-01-02T03:04:05.000Z");
      assert.equal((v["m"] as Map<string, bigint>).get("big"), 12345678901234567890n);
      assert.deepEqual([...(v["s"] as Set<number>)], [1, 2]);
      assert.deepEqual([...(v["bytes"] as Uint8Array)], [1, 2, 255]);
      assert.ok("nothing" in v && v["nothing"] === undefined);
    });

    it("a body that is not deterministic fails with NonDeterminismError naming both calls", async () => {
      const r = await b.run(t.nonDeterministic);
      await assert.rejects(r.result(), (e: Error & { original?: { name: string; message: string } }) => {
        assert.equal(e.original?.name, "NonDeterminismError");
        assert.match(
          e.message,
          /history records sem\.double\(\d+\) #0 but the replay called sem\.double\(\d+\) #0 instead/,
        );
        return true;
      });
    });
  });
}
