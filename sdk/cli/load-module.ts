/**
 * Loading the user's task module. A module written in TypeScript is loaded through tsx, registered
 * here on first need: the built CLI itself is JavaScript, and a JavaScript module needs no tsx.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { ConfigurationError } from "../errors.ts";

const TYPESCRIPT = /\.[cm]?tsx?$/;
const FROM_SOURCE = import.meta.url.endsWith(".ts");
let tsx: Promise<void> | undefined;

export async function loadModule(path: string): Promise<void> {
  const abs = resolve(path);
  if (!existsSync(abs)) throw new ConfigurationError(`module ${path} not found (looked at ${abs})`);
  // From Aloft's TypeScript sources (its repository, tests), tsx is registered already.
  if (TYPESCRIPT.test(abs) && !FROM_SOURCE) {
    tsx ??= (async () => {
      // Aloft's own modules first (what the task module's `import "aloft"` loads): once tsx's
      // hooks are registered, every module loaded makes a round trip to their thread, JavaScript
      // or not (docs/performance.md, start-up). Built, they are JavaScript and need no tsx.
      await import("../index.ts");
      const { register } = await import("tsx/esm/api");
      register();
    })();
    await tsx;
  }
  try {
    await import(pathToFileURL(abs).href);
  } catch (e) {
    // A .ts file in a package without "type": "module" is compiled as CommonJS, which cannot
    // require the ES modules it imports (aloft among them): Node says so in its own terms.
    if ((e as { code?: string }).code === "ERR_REQUIRE_CYCLE_MODULE" && /\.tsx?$/.test(abs))
      throw new ConfigurationError(
        `module ${path} was loaded as CommonJS, and Aloft task modules are ES modules: add ` +
          `"type": "module" to your package.json (npx aloft init does), or rename it to .mts`,
        { cause: e },
      );
    throw e;
  }
}
