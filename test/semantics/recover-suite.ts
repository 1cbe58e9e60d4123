/**
 * `recover` (issue 18, docs/recover.md), run by the semantic suite on every backend: a new run in
 * which every call that succeeded in the source run (or in the runs it recovered) returns its
 * recorded outcome without running, and the rest run with the code as it is now.
 */
import assert from "node:assert/strict";
import { it } from "node:test";
import type { ActionNode, Run } from "aloft";
import { flatten } from "../helpers/status.ts";
import type { Backend } from "./backend.ts";
import { count, setFlag } from "./tasks.ts";
import * as r from "./tasks-recover.ts";
import { recorded } from "./waits-suite.ts";

async function failed(run: Run): Promise<string> {
  const e = await run.result().then(
    () => assert.fail(`run ${run.id} succeeded`),
    (x: Error) => x,
  );
  return e.message;
}

/** The leaves of a status tree by their argument: leaf task nodes in call order. */
function leaves(root: ActionNode | undefined): ActionNode[] {
  return flatten(root).filter((n) => n.task === "rec.leaf");
}

export function recoverScenarios(backend: () => Backend, key: () => string): void {
  it("recover: nested parents reuse every call that succeeded; only the failed path runs again", async () => {
    const b = backend();
    const k = key();
    setFlag(`fail-${k}-4`);
    const src = await b.run(r.tree, k);
    assert.match(await failed(src), /1 branch\(es\) failed/);
    setFlag(`fail-${k}-4`, false); // the bug is fixed
    const rec = await b.recover(src.id);
    assert.notEqual(rec.id, src.id, "a recovery is a new run");
    assert.deepEqual(await rec.result(), [30, 120, 210]);
    for (let i = 0; i < 9; i++) assert.equal(count(`leaf-${k}-${i}`), i === 4 ? 2 : 1, `leaf ${i} runs`);
    const s = await rec.status();
    assert.equal(s.recoveredFrom, src.id);
    const [b0, b1, b2] = s.root!.children;
    assert.equal(b0!.reusedFrom, src.id, "a succeeded branch is reused whole");
    assert.equal(b0!.children.length, 0, "a reused branch does not run its children");
    assert.equal(b2!.reusedFrom, src.id);
    assert.equal(b1!.reusedFrom, undefined, "the failed branch runs again");
    assert.equal(b1!.status, "SUCCEEDED");
    assert.deepEqual(
      b1!.children.map((c) => c.reusedFrom ?? "ran"),
      [src.id, "ran", src.id],
      "inside it, the leaves that succeeded are reused",
    );
    assert.deepEqual((await src.status()).recoveries, [rec.id], "the source lists its recovery");
  });

  it("recover: a map with returnExceptions reuses the items that succeeded", async () => {
    const b = backend();
    const k = key();
    setFlag(`fail-${k}-2`);
    setFlag(`fail-${k}-5`);
    const src = await b.run(r.mapped, k);
    assert.match(await failed(src), /2 item\(s\) failed/);
    setFlag(`fail-${k}-2`, false);
    setFlag(`fail-${k}-5`, false);
    const rec = await b.recover(src.id);
    assert.deepEqual(await rec.result(), [0, 10, 20, 30, 40, 50]);
    for (let i = 0; i < 6; i++)
      assert.equal(count(`leaf-${k}-${i}`), i === 2 || i === 5 ? 2 : 1, `item ${i}`);
    const reused = leaves((await rec.status()).root).filter((n) => n.reusedFrom === src.id);
    assert.equal(reused.length, 4);
  });

  it("recover: a recovery of a recovery reuses what succeeded in any run of the chain", async () => {
    const b = backend();
    const k = key();
    setFlag(`fail-${k}-4`);
    setFlag(`fail-${k}-7`);
    const first = await b.run(r.tree, k);
    assert.match(await failed(first), /2 branch\(es\) failed/);
    // A recovery whose code ends before any call: it reuses nothing and fails again.
    setFlag(`abort-${k}`);
    const second = await b.recover(first.id);
    assert.match(await failed(second), /aborted before any call/);
    setFlag(`abort-${k}`, false);
    setFlag(`fail-${k}-7`, false);
    // Leaf 7 now succeeds; leaf 4 still fails. What the first run did is found through the second.
    const third = await b.recover(second.id);
    assert.match(await failed(third), /1 branch\(es\) failed/);
    setFlag(`fail-${k}-4`, false);
    const fourth = await b.recover(third.id);
    assert.deepEqual(await fourth.result(), [30, 120, 210]);
    const runs: Record<number, number> = { 4: 3, 7: 2 };
    for (let i = 0; i < 9; i++) assert.equal(count(`leaf-${k}-${i}`), runs[i] ?? 1, `leaf ${i} runs`);
    const s = await fourth.status();
    assert.equal(s.recoveredFrom, third.id);
    assert.deepEqual(
      s.root!.children.map((c) => c.reusedFrom ?? "ran"),
      [third.id, "ran", third.id],
      "branches 0 and 2 succeeded in the third run (0 reused there from the first)",
    );
    assert.deepEqual((await third.status()).root!.children[0]!.reusedFrom, first.id);
  });

  it("recover: a changed task body makes other calls, and they simply run (no NonDeterminismError)", async () => {
    const b = backend();
    const k = key();
    setFlag(`fail-${k}-1`);
    const src = await b.run(r.shifting, k);
    assert.match(await failed(src), /leaf 1 fails/);
    setFlag(`fail-${k}-1`, false);
    setFlag(`shift-${k}`); // the new code calls leaf(10) where the old one called leaf(0)
    const rec = await b.recover(src.id);
    assert.deepEqual(await rec.result(), [100, 10, 20]);
    assert.equal(count(`leaf-${k}-0`), 1, "the call the new code no longer makes is not made");
    assert.equal(count(`leaf-${k}-10`), 1);
    assert.equal(count(`leaf-${k}-1`), 2);
    assert.equal(count(`leaf-${k}-2`), 1, "a call both versions make is reused");
  });

  it("recover: a run that succeeded is refused, with why", async () => {
    const b = backend();
    const ok = await b.run(r.tree, key());
    await ok.result();
    await assert.rejects(b.recover(ok.id), /cannot be recovered: it succeeded/);
  });

  it("recover: a signal the source received and a sleep it finished are reused, not waited for again", async () => {
    const b = backend();
    const k = key();
    setFlag(`fail-${k}-1`);
    const src = await b.run(r.approvedThenScored, k);
    await recorded(src, "aloft:signal");
    await src.signal("approve", { by: "ana" });
    assert.match(await failed(src), /leaf 1 fails/);
    setFlag(`fail-${k}-1`, false);
    const rec = await b.recover(src.id);
    // No signal is sent to the recovery: the source's approval answers its wait.
    assert.deepEqual(await rec.result(), { by: "ana", score: 10 });
    const waits = (await rec.status()).root!.children.filter((c) => c.task.startsWith("aloft:"));
    assert.deepEqual(
      waits.map((w) => [w.task, w.reusedFrom]),
      [
        ["aloft:signal", src.id],
        ["aloft:sleep", src.id],
      ],
    );
  });
}
