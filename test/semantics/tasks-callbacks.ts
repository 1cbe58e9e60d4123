/**
 * Tasks of the callback scenarios (issue 18), run by the semantic suite on every backend. A task
 * hands its callback's id out through a child, which writes it under ALOFT_TEST_DIR where the test
 * (the outside world) reads it.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TaskEnvironment, TaskError, TaskTimeoutError, createCallback, waitForSignal } from "aloft";
import type { Duration } from "aloft";

const env = new TaskEnvironment({ name: "callbacks" });

function idFile(key: string): string {
  const d = process.env["ALOFT_TEST_DIR"];
  if (!d) throw new Error("ALOFT_TEST_DIR is not set");
  return join(d, `callback-${key}.id`);
}

/** The id a task published under `key`, once it has. */
export function publishedId(key: string): string | undefined {
  const f = idFile(key);
  return existsSync(f) ? readFileSync(f, "utf8") : undefined;
}

/** Hands a callback id to the outside world (here, a file the test reads). */
export const publish = env.task(async function publish(key: string, id: string) {
  writeFileSync(idFile(key), id);
});

async function outcome(p: Promise<unknown>): Promise<unknown> {
  try {
    return { got: await p };
  } catch (e) {
    if (e instanceof TaskTimeoutError) return { timedOut: e.message };
    if (e instanceof TaskError) return { failed: e.message, cause: (e.cause as Error).message };
    throw e;
  }
}

/** Creates a callback, publishes its id, and awaits it. */
export const awaitCallback = env.task(async function awaitCallback(key: string, timeout?: Duration) {
  const cb = createCallback<unknown>(timeout === undefined ? {} : { timeout });
  await publish(key, cb.id);
  return outcome(cb);
});

/** Publishes the id, waits for signal "go" (the test completes the callback first), then awaits it. */
export const awaitLater = env.task(async function awaitLater(key: string) {
  const cb = createCallback<unknown>();
  await publish(key, cb.id);
  await waitForSignal("go");
  return outcome(cb);
});

/** Publishes the id and ends without awaiting it: the callback's run has ended. */
export const abandon = env.task(async function abandon(key: string) {
  const cb = createCallback<unknown>();
  await publish(key, cb.id);
  return "done";
});

/** Two callbacks: the ids are distinct and each gets its own payload. */
export const twoCallbacks = env.task(async function twoCallbacks(key: string) {
  const a = createCallback<string>();
  const b = createCallback<string>();
  await Promise.all([publish(`${key}-a`, a.id), publish(`${key}-b`, b.id)]);
  return Promise.all([a, b]);
});
