#!/usr/bin/env node
// The `aloft` command. Installed, it runs the built JavaScript (tsx is registered later, and only
// to load a task module written in TypeScript); in Aloft's own repository, where the TypeScript
// sources are, it runs those through tsx, so a checkout works without a build.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const source = new URL("../sdk/cli/main.ts", import.meta.url);
const TASK_COMMANDS = new Set(["run", "resume", "recover", "cancel", "dev"]);
if (existsSync(source)) {
  // zod before tsx, for the commands that load task modules: once tsx's hooks are registered,
  // each module loaded makes a round trip to their thread, and zod is over 200 files of
  // JavaScript that need no compiling (docs/performance.md, start-up).
  if (process.argv.slice(2).some((a) => TASK_COMMANDS.has(a))) await import("zod");
  const { register } = await import("tsx/esm/api");
  // The repository's tsconfig maps "aloft" to the sources, wherever the command runs: a task
  // module importing "aloft" must share this CLI's registry, not load a second copy from dist/.
  register({ tsconfig: fileURLToPath(new URL("../tsconfig.json", import.meta.url)) });
  await import(source.href);
} else {
  await import(new URL("../dist/sdk/cli/main.js", import.meta.url).href);
}
