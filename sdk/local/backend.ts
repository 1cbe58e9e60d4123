/**
 * The embedded engine as `run()` uses it: the store, its lock and the engine, opened together, and
 * the `Run` handle over them. Loaded by sdk/run.ts on first use only, so `import "aloft"` loads no
 * SQLite and starts no worker.
 */
import type { Engine } from "./engine.ts";
import { Engine as EngineImpl } from "./engine.ts";
import { StoreLock } from "./lock.ts";
import { runStatus } from "./status.ts";
import type { Run } from "../run-handle.ts";
import { Store } from "./store.ts";
import type { RunRow } from "./store.ts";

export interface LocalBackend {
  engine: Engine;
  store: Store;
  lock: StoreLock | undefined;
  /**
   * A worker has loaded the task modules, or why none could. Runs start before it: a root's first
   * replay runs on this thread while the workers load, its children wait for them (start-up,
   * docs/performance.md).
   */
  ready: Promise<void>;
  /** Holds the event loop until `ready` settles (the workers are unref'd). */
  starting: NodeJS.Timeout;
  /** Runs started or resumed here and not yet ended: while there are any, the process stays. */
  active: number;
  keepAlive: NodeJS.Timeout | undefined;
}

/** Opens the store at `path` (locked unless in memory) and starts an engine over it. */
export function openLocal(path: string, workers: number, modules: string[]): LocalBackend {
  const lock = path === ":memory:" ? undefined : StoreLock.acquire(path);
  try {
    const store = new Store(path);
    const engine = new EngineImpl({ store, workers, modules });
    // Workers are unref'd: while they load the task modules, only this holds the event loop.
    const starting = setInterval(() => undefined, 1 << 30);
    const ready = engine.takingWork();
    const started = (): void => clearInterval(starting);
    ready.then(started, started);
    return { engine, store, lock, ready, starting, active: 0, keepAlive: undefined };
  } catch (e) {
    lock?.release();
    throw e;
  }
}

export async function closeLocal(b: LocalBackend): Promise<void> {
  clearInterval(b.starting);
  clearInterval(b.keepAlive);
  await b.engine.close();
  b.store.close();
  b.lock?.release();
}

/**
 * Holds the event loop while `id` is in progress: workers and the engine's timers are unref'd, so
 * a process whose runs have all ended exits by itself.
 */
export function keepAliveUntilEnded(b: LocalBackend, id: string): void {
  if (b.active++ === 0) b.keepAlive = setInterval(() => undefined, 1 << 30);
  void b.engine.waitRun(id).then(() => {
    if (--b.active === 0) clearInterval(b.keepAlive);
  });
}

export function makeRun<R>(b: LocalBackend, id: string, resultOf: (row: RunRow) => R): Run<R> {
  const run: Run<R> = {
    id,
    async result() {
      return resultOf(await b.engine.waitRun(id));
    },
    async status() {
      return runStatus(b.store, b.store.getRun(id)!);
    },
    async *watch(intervalMs = 500) {
      for (;;) {
        const s = await run.status();
        yield s;
        if (s.state !== "RUNNING") return;
        await Promise.race([new Promise((r) => setTimeout(r, intervalMs)), b.engine.waitRun(id)]);
      }
    },
    async cancel() {
      b.engine.cancelRun(id);
      await b.engine.waitRun(id);
    },
    async signal(name: string, payload?: unknown) {
      b.engine.signal(id, name, payload);
    },
    progress() {
      return b.engine.progressOf(id);
    },
  };
  return run;
}

export { completeInStore } from "./complete-callback.ts";
