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
  await import(pathToFileURL(abs).href);
}
