/** Runs the real `aloft` command in a directory and captures what it prints. */
import { spawn } from "node:child_process";
import type { ChildProcessByStdio } from "node:child_process";
import type { Readable } from "node:stream";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const BIN = `${ROOT}bin/aloft.js`;

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function aloft(
  args: string[],
  opts: { cwd: string; env?: Record<string, string> },
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("error", reject);
    p.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

const DEV_READY_TIMEOUT_MS = 120_000;

export interface DevProcess {
  child: ChildProcessByStdio<null, Readable, Readable>;
  output: () => string;
  /** The variables `aloft dev` prints for another shell. */
  exports: Record<string, string>;
}

/** Starts `aloft dev <args>` and resolves once it prints that it is ready. */
export async function startDev(
  cwd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<DevProcess> {
  const child = spawn(process.execPath, [BIN, "dev", ...args], {
    cwd,
    env: { ...process.env, POWERTOOLS_LOG_LEVEL: "SILENT", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let text = "";
  child.stdout.on("data", (d: Buffer) => (text += d.toString()));
  child.stderr.on("data", (d: Buffer) => (text += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`aloft dev not ready:\n${text}`)), DEV_READY_TIMEOUT_MS);
    const check = () => {
      if (text.includes("Ctrl-C stops it.")) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stderr.on("data", check);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`aloft dev exited (${String(code)}) before it was ready:\n${text}`));
    });
  });
  const exports = Object.fromEntries(
    [...text.matchAll(/^ {2}export (\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!] as const),
  );
  return { child, output: () => text, exports };
}

export async function stopDev(dev: DevProcess | undefined): Promise<void> {
  if (!dev || dev.child.exitCode !== null || dev.child.signalCode !== null) return;
  const exited = new Promise((resolve) => dev.child.once("exit", resolve));
  dev.child.kill("SIGTERM");
  await exited;
}
