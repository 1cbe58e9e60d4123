/** Completing a callback in a store file from any process (wait-store.ts has the rules). */
import { existsSync } from "node:fs";
import { UnknownCallbackError } from "../errors.ts";
import { parseCallbackId } from "../core/callbacks.ts";
import type { Outcome } from "../core/history.ts";
import { Store } from "./store.ts";
import { WaitStore } from "./wait-store.ts";

/**
 * Completes a callback in the store at `path` with no engine in this process (`completeCallback`
 * in local mode, `aloft callback`): the engine running the run finds it by polling the store.
 */
export function completeInStore(path: string, id: string, outcome: Outcome, now: number): void {
  const { run, secret } = parseCallbackId(id);
  if (path === ":memory:" || !existsSync(path))
    throw new UnknownCallbackError(
      `no run ${run} here: ${path === ":memory:" ? "an in-memory store is this process's own" : `no store at ${path}`}; ` +
        `complete the callback where its run runs (init({ store }) or --store)`,
    );
  const store = new Store(path);
  try {
    new WaitStore(store.db).completeCallback(run, secret, outcome, now);
  } finally {
    store.close();
  }
}
