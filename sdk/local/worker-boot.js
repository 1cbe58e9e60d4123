// Worker entry. tsx is registered in this thread when the task modules are TypeScript, or when
// Aloft itself runs from its TypeScript sources (its own repository); the built package with
// JavaScript task modules loads without it.
//
// What can load without tsx loads before it: once loader hooks are registered, every module
// imported afterwards, JavaScript or not, makes a round trip to the hooks' thread, which costs a
// worker several hundred milliseconds over Aloft's and zod's few hundred files
// (docs/performance.md, start-up). So built, the package's own modules (those a task module's
// `import "aloft"` and the worker need) load first; from source, zod does, the one large
// dependency the sources import. The URLs are the same as the ones tsx resolves later, so each
// module is still loaded once.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { workerData } from "node:worker_threads";

const source = new URL("./worker.ts", import.meta.url);
const fromSource = existsSync(source);
const typescript = workerData.modules.some((m) => /\.[cm]?tsx?$/.test(m));
if (fromSource) await import("zod");
else if (typescript) await Promise.all([import("../index.js"), import("./run-body.js")]);
if (fromSource || typescript) {
  const { register } = await import("tsx/esm/api");
  // From source, the repository's tsconfig maps "aloft" to the sources (one registry per thread,
  // whatever the working directory); built, the user's own tsconfig applies.
  register(fromSource ? { tsconfig: fileURLToPath(new URL("../../tsconfig.json", import.meta.url)) } : {});
}
await import(fromSource ? source.href : new URL("./worker.js", import.meta.url).href);
