// Worker entry. tsx is registered in this thread when the task modules are TypeScript, or when
// Aloft itself runs from its TypeScript sources (its own repository); the built package with
// JavaScript task modules loads without it.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { workerData } from "node:worker_threads";

const source = new URL("./worker.ts", import.meta.url);
const fromSource = existsSync(source);
const typescript = workerData.modules.some((m) => /\.[cm]?tsx?$/.test(m));
if (fromSource || typescript) {
  const { register } = await import("tsx/esm/api");
  // From source, the repository's tsconfig maps "aloft" to the sources (one registry per thread,
  // whatever the working directory); built, the user's own tsconfig applies.
  register(fromSource ? { tsconfig: fileURLToPath(new URL("../../tsconfig.json", import.meta.url)) } : {});
}
await import(fromSource ? source.href : new URL("./worker.js", import.meta.url).href);
