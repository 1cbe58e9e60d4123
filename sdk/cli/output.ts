/**
 * What every command shares to report: a usage failure, a run's error, JSON output. Light on
 * purpose (the errors module alone): `aloft --help` and every command load it.
 */
import { AloftError, ConfigurationError, TaskError } from "../errors.ts";
import type { Run } from "../run-handle.ts";

export function fail(message: string, code = 2): never {
  process.stderr.write(`aloft: ${message}\n`);
  process.exit(code);
}

export function parseArgs(raw: string[]): unknown[] {
  return raw.map((a, i) => {
    try {
      return JSON.parse(a) as unknown;
    } catch (e) {
      throw new ConfigurationError(
        `argument ${i + 1} is not valid JSON (${(e as Error).message}): ${a}\n` +
          `  pass each task argument as JSON, e.g. 3 '"text"' '["a","b"]'`,
      );
    }
  });
}

export function printError(e: unknown): void {
  if (e instanceof TaskError) {
    const o = e.original;
    process.stderr.write(
      `aloft: run failed in task ${e.task} after ${e.attempts} attempt(s)\n  ${o.name}: ${o.message}\n`,
    );
    const where = o.stack?.split("\n").find((l) => l.trim().startsWith("at "));
    if (where) process.stderr.write(`  where: ${where.trim()}\n`);
    return;
  }
  if (e instanceof AloftError) {
    process.stderr.write(`aloft: ${e.name}: ${e.message}\n`);
    return;
  }
  process.stderr.write(`aloft: ${(e as Error)?.stack ?? String(e)}\n`);
}

/** Prints Map, Set, BigInt and bytes readably in JSON output. */
export function jsonReplacer(_k: string, v: unknown): unknown {
  if (typeof v === "bigint") return v.toString();
  if (v instanceof Map) return Object.fromEntries(v);
  if (v instanceof Set) return [...v];
  if (v instanceof Uint8Array) return Buffer.from(v).toString("base64");
  return v;
}

/** Prints a run's result as JSON (0) or its error (1), with a progress display on a terminal. */
export async function follow(r: Run, json: boolean): Promise<number> {
  const progress =
    !json && process.stderr.isTTY ? new (await import("./progress.ts")).Progress(r) : undefined;
  progress?.start();
  try {
    const value = await r.result();
    progress?.stop();
    process.stdout.write(`${JSON.stringify(value, jsonReplacer, 2)}\n`);
    return 0;
  } catch (e) {
    progress?.stop();
    printError(e);
    return 1;
  }
}
