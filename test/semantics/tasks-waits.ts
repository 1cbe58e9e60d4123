/**
 * Tasks of the durable-wait scenarios (`sleep`, `waitForSignal`: issue 14), run by the semantic
 * suite on every backend and by test/sleep-signals.test.ts on a virtual clock. Durations are
 * arguments, so the same task sleeps 200 ms on real time and 2 h on a virtual clock.
 */
import { TaskEnvironment, TaskTimeoutError, map, sleep, waitForSignal } from "aloft";
import type { Duration } from "aloft";

const env = new TaskEnvironment({ name: "waits" });

export const triple = env.task(async function triple(x: number) {
  return x * 3;
});

export const napper = env.task(async function napper(d: Duration) {
  await sleep(d);
  return "rested";
});

/** A child that never ends unless signalled: the slow side of a race. */
export const awaitsGo = env.task(async function awaitsGo(name: string) {
  return waitForSignal<string>(name);
});

export const raceChildSleep = env.task(async function raceChildSleep(x: number, d: Duration) {
  return Promise.race([triple(x), sleep(d).then(() => "timeout")]);
});

export const raceSlowChildSleep = env.task(async function raceSlowChildSleep(name: string, d: Duration) {
  return Promise.race([awaitsGo(name), sleep(d).then(() => "timeout")]);
});

export const waitOnce = env.task(async function waitOnce(name: string) {
  return waitForSignal<unknown>(name);
});

export const waitInTurn = env.task(async function waitInTurn(name: string, n: number) {
  const got: unknown[] = [];
  for (let i = 0; i < n; i++) got.push(await waitForSignal(name));
  return got;
});

/** Several waits of one name at once: signals go to them in call order. */
export const waitTogether = env.task(async function waitTogether(name: string, n: number) {
  return Promise.all(Array.from({ length: n }, () => waitForSignal(name)));
});

export const waitWithTimeout = env.task(async function waitWithTimeout(name: string, d: Duration) {
  try {
    return { got: await waitForSignal(name, { timeout: d }) };
  } catch (e) {
    if (e instanceof TaskTimeoutError) return { timedOut: e.message };
    throw e;
  }
});

/** Sleeps first, so a signal sent meanwhile arrives before the wait starts. */
export const sleepThenWait = env.task(async function sleepThenWait(d: Duration, name: string) {
  await sleep(d);
  return waitForSignal<unknown>(name);
});

export const napItem = env.task(async function napItem(i: number, d: Duration) {
  await sleep(d);
  return i;
});

/** Sleeps inside map items: each item's body suspends and resumes on its own timer. */
export const mapOfNaps = env.task(async function mapOfNaps(n: number, d: Duration) {
  const out: number[] = [];
  const items = Array.from({ length: n }, (_, i) => i);
  for await (const r of map.aio((i: number) => napItem.aio(i, d), items, { concurrency: 2 }))
    out.push(r as number);
  return out;
});
