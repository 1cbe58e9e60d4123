// A Lambda sandbox: one OS process that loads a function's bundled handler once (the init phase)
// and then serves invocations from its parent over IPC, one at a time, like a warm Lambda. Plain
// JavaScript run by plain Node, so nothing of the project (tsx, its node_modules) leaks in: the
// bundle resolves its imports from its own folder and the runtime's SDK beside it.
//   node sandbox.mjs <task dir> <Handler, e.g. index.handler>
import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [taskDir, handlerSpec] = process.argv.slice(2);
const dot = handlerSpec.lastIndexOf(".");
const base = handlerSpec.slice(0, dot);
const exportName = handlerSpec.slice(dot + 1);

function serializeError(e) {
  if (e instanceof Error) return { name: e.name, message: e.message, stack: e.stack };
  return { name: "Error", message: String(e) };
}

// An error outside any invocation's promise crashes the runtime, as on Lambda.
process.on("uncaughtException", (e) => {
  process.send?.({ t: "crash", error: serializeError(e) });
  process.exit(129);
});
process.on("unhandledRejection", (e) => {
  process.send?.({ t: "crash", error: serializeError(e) });
  process.exit(128);
});

// Lambda's order: <base>.js (its package.json decides the format), then .mjs, then .cjs.
const file = [".js", ".mjs", ".cjs"].map((ext) => join(taskDir, base + ext)).find((f) => existsSync(f));
const started = performance.now();
let handler;
try {
  if (!file) throw new Error(`Runtime.ImportModuleError: no ${base}.js, .mjs or .cjs in ${taskDir}`);
  const mod = await import(pathToFileURL(file).href);
  handler = mod[exportName] ?? mod.default?.[exportName];
  if (typeof handler !== "function")
    throw new Error(`Runtime.HandlerNotFound: ${handlerSpec} is not a function exported by ${file}`);
} catch (e) {
  process.send({ t: "init-error", error: serializeError(e) });
  process.exit(1);
}
// Wall time of the import, and CPU time of the whole start (Node's boot included): on a loaded
// machine the wall time measures the load, the CPU time what a cold start costs it.
const cpu = process.cpuUsage();
process.send({
  t: "ready",
  initMs: Math.round(performance.now() - started),
  cpuMs: Math.round((cpu.user + cpu.system) / 1000),
});

process.on("message", async (m) => {
  if (m.t !== "invoke") return;
  const context = {
    callbackWaitsForEmptyEventLoop: true,
    functionName: m.functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: m.functionArn,
    memoryLimitInMB: String(m.memoryMiB),
    awsRequestId: m.requestId,
    logGroupName: m.logGroupName,
    logStreamName: `local/[$LATEST]${process.pid}`,
    getRemainingTimeInMillis: () => Math.max(0, m.deadline - Date.now()),
  };
  try {
    const value = await handler(m.event, context);
    process.send({ t: "done", id: m.id, ok: true, value: value === undefined ? null : value });
  } catch (e) {
    process.send({ t: "done", id: m.id, ok: false, error: serializeError(e) });
  }
});
