/**
 * The soak's task module (scripts/soak/run.ts): a mix of the shapes Aloft runs — gathers, nested
 * parents, windowed maps, failures retried to exhaustion, per-attempt timeouts, large payloads,
 * long children to cancel, durable sleeps and signals. Every result is a pure function of the
 * inputs (and of the signals the soak sends, in order), so the embedded engine's result is the
 * expected one.
 */
import { TaskEnvironment, map, sleep as durableSleep, waitForSignal } from "aloft";

// Short absolute settings, production ratios: the executor's queue visibility is 6x its 10 s
// timeout, and the lease (renewed every third of it) is 10 s.
const soak = new TaskEnvironment({ name: "soak", timeout: "10s", visibilityTimeout: "10s" });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/**
 * A leaf's timeout (10 s) is its lease: a leaf whose sandbox is killed is delivered again a lease
 * later, plus any chaos delay, so it often reaches its deadline first and is rightly timed out
 * (docs/aws.md, "Recovery bound"). Its retry is what recovers it, as a deployment's would.
 */
const LEAF = { retries: { count: 2, backoff: { base: "100ms", factor: 2, max: "1s" } } } as const;
/** A parent's timeout covers its children's time, recoveries from killed sandboxes included. */
const PARENT = { timeout: "5m" } as const;

export const leaf = soak.task(async function leaf(i: number) {
  await sleep(5);
  return i * 2;
}, LEAF);

export const gather = soak.task(async function gather(n: number) {
  const xs = await Promise.all(Array.from({ length: n }, (_, i) => leaf(i)));
  return xs.reduce((a, b) => a + b, 0);
}, PARENT);

export const nested = soak.task(async function nested(n: number) {
  return Promise.all([gather(n), gather(n + 1), leaf(n)]);
}, PARENT);

export const windowed = soak.task(async function windowed(n: number, concurrency: number) {
  const out: number[] = [];
  for await (const r of map.aio(
    leaf,
    Array.from({ length: n }, (_, i) => i),
    { concurrency, group: "window" },
  )) {
    if (r instanceof Error) throw r;
    out.push(r);
  }
  return out;
}, PARENT);

export const alwaysFails = soak.task(
  async function alwaysFails(i: number) {
    throw new Error(`item ${i} fails every attempt`);
  },
  { retries: { count: 2, backoff: { base: "50ms", factor: 2, max: "200ms" } } },
);

export const withFailures = soak.task(async function withFailures(n: number) {
  const settled = await Promise.allSettled(
    Array.from({ length: n }, (_, i) => (i % 2 ? alwaysFails(i) : leaf(i))),
  );
  return settled.map((s) => (s.status === "fulfilled" ? s.value : `failed: ${(s.reason as Error).name}`));
}, PARENT);

export const tooSlow = soak.task(
  async function tooSlow() {
    await sleep(3_000);
    return "late";
  },
  { timeout: "500ms" },
);

export const withTimeout = soak.task(async function withTimeout() {
  try {
    return await tooSlow();
  } catch (e) {
    return (e as Error).name;
  }
}, PARENT);

export const echo = soak.task(async function echo(s: string) {
  return s.toUpperCase();
}, LEAF);

/** Arguments and results past the item and message limits: offloaded to S3 both ways. */
export const large = soak.task(async function large(kb: number) {
  const out = await echo("x".repeat(kb * 1024));
  return { length: out.length, head: out.slice(0, 4) };
}, PARENT);

// Long enough that a cancel sent a second after the run starts lands first, even on a loaded machine.
export const longChild = soak.task(async function longChild(i: number) {
  await sleep(5_000);
  return i;
});

/** Cancelled by the soak while its children run. */
export const longParent = soak.task(async function longParent(n: number) {
  return Promise.all(Array.from({ length: n }, (_, i) => longChild(i)));
}, PARENT);

/** Durable sleeps beside children and between rounds: each must end late, never early. */
export const napping = soak.task(async function napping(n: number) {
  const first = await Promise.all([leaf(1), durableSleep("1s").then(() => 0), leaf(2)]);
  await durableSleep("2s");
  const then = await Promise.all(Array.from({ length: n }, (_, i) => leaf(i)));
  return [...first, ...then].reduce((a, b) => a + b, 0);
}, PARENT);

/**
 * Two waits for one signal name open at once take the soak's two sends in the order the waits
 * were made, whether a send lands before or after its wait; a third wait that nothing answers
 * times out.
 */
export const signalled = soak.task(async function signalled(n: number) {
  const xs = await Promise.all(Array.from({ length: n }, (_, i) => leaf(i)));
  const [a, b] = await Promise.all([waitForSignal<number>("go"), waitForSignal<number>("go")]);
  const late = await waitForSignal<number>("never", { timeout: "2s" }).catch((e: Error) => e.name);
  return { sum: xs.reduce((x, y) => x + y, 0), a, b, late };
}, PARENT);
