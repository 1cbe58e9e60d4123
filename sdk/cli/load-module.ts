/**
 * Loading the user's task module. A module written in TypeScript is loaded through tsx, registered
 * here on first need: the built CLI itself is JavaScript, and a JavaScript module needs no tsx.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { ConfigurationError } from "../errors.ts";

const TYPESCRIPT = /\.[cm]?tsx?$/;
let tsx: Promise<void> | undefined;

export async function loadModule(path: string): Promise<void> {
  const abs = resolve(path);
  if (!existsSync(abs)) throw new ConfigurationError(`module ${path} not found (looked at ${abs})`);
  if (TYPESCRIPT.test(abs)) {
    tsx ??= import("tsx/esm/api").then(({ register }) => void register());
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
