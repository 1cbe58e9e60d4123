#!/usr/bin/env node
// The `aloft` command: registers tsx so user task modules (and Aloft itself) load as TypeScript.
import { register } from "tsx/esm/api";
register();
await import("../sdk/cli/main.ts");
