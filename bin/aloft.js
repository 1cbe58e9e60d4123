#!/usr/bin/env node
// The `aloft` command. Installed, it runs the built JavaScript (tsx is registered later, and only
// to load a task module written in TypeScript); in Aloft's own repository, where the TypeScript
// sources are, it runs those through tsx, so a checkout works without a build.
import { existsSync } from "node:fs";

const source = new URL("../sdk/cli/main.ts", import.meta.url);
if (existsSync(source)) {
  const { register } = await import("tsx/esm/api");
  register();
  await import(source.href);
} else {
  await import(new URL("../dist/sdk/cli/main.js", import.meta.url).href);
}
