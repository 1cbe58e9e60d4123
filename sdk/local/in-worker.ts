/** Set in worker threads, where a module's top-level `run(...)` must not start another run. */
export const IN_WORKER = Symbol.for("aloft.inWorker");
