/**
 * Tasks of the recover scenarios (issue 18, docs/recover.md), run by the semantic suite on every
 * backend. Which calls fail is switched by flag files between a run and its recovery, as a fixed
 * bug would; counter files show which calls ran again.
 */
import { TaskEnvironment, map, sleep, waitForSignal } from "aloft";
import { bump, hasFlag } from "./tasks.ts";

const env = new TaskEnvironment({ name: "rec" });

export const leaf = env.task(async function leaf(k: string, i: number) {
  bump(`leaf-${k}-${i}`);
  if (hasFlag(`fail-${k}-${i}`)) throw new Error(`leaf ${i} fails`);
  return i * 10;
});

/** Three leaves; waits for all of them (so every sibling of a failed leaf ends SUCCEEDED). */
export const branch = env.task(async function branch(k: string, b: number) {
  const got = await Promise.allSettled([0, 1, 2].map((j) => leaf(k, b * 3 + j)));
  const failed = got.filter((g) => g.status === "rejected").length;
  if (failed) throw new Error(`${failed} leaf(s) of branch ${b} failed`);
  return got.reduce((t, g) => t + (g.status === "fulfilled" ? g.value : 0), 0);
});

/** Nested parents: three branches of three leaves. With the abort flag its body ends early. */
export const tree = env.task(async function tree(k: string) {
  if (hasFlag(`abort-${k}`)) throw new Error("aborted before any call");
  const got = await Promise.allSettled([0, 1, 2].map((b) => branch(k, b)));
  const failed = got.filter((g) => g.status === "rejected").length;
  if (failed) throw new Error(`${failed} branch(es) failed`);
  return got.map((g) => (g.status === "fulfilled" ? g.value : 0));
});

/** A map with returnExceptions (the default): failed items are errors in place; any fails the run. */
export const mapped = env.task(async function mapped(k: string) {
  const out: number[] = [];
  let failed = 0;
  for await (const r of map.aio((i: number) => leaf.aio(k, i), [0, 1, 2, 3, 4, 5], { concurrency: 2 })) {
    if (r instanceof Error) failed++;
    else out.push(r);
  }
  if (failed) throw new Error(`${failed} item(s) failed`);
  return out;
});

/** Its calls depend on a flag: a recovery after a code change makes other calls. */
export const shifting = env.task(async function shifting(k: string) {
  const first = hasFlag(`shift-${k}`) ? 10 : 0;
  // allSettled: every leaf ends before the run fails (Promise.all would cancel the slower ones,
  // which the recovery then runs again).
  const got = await Promise.allSettled([leaf(k, first), leaf(k, 1), leaf(k, 2)]);
  const failed = got.find((g) => g.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason as Error;
  return got.map((g) => (g.status === "fulfilled" ? g.value : 0));
});

/** A durable wait, then a call that may fail: a recovery must not wait again for what it received. */
export const approvedThenScored = env.task(async function approvedThenScored(k: string) {
  const approval = await waitForSignal<{ by: string }>("approve", { timeout: "1h" });
  await sleep(20);
  return { by: approval.by, score: await leaf(k, 1) };
});
