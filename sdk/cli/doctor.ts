/**
 * `aloft doctor`: what stands between this machine and a working Aloft, each with what to do. Local
 * (the default): Node, the store (its format, who holds it), runs whose process stopped, task
 * modules that moved. With `--aws`: the stack (sdk/cli/doctor-aws.ts).
 */
import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { StoreLock } from "../local/lock.ts";
import { STORE_FORMAT, Store } from "../local/store.ts";

export interface Check {
  level: "ok" | "warn" | "problem";
  what: string;
  /** What to do about it (warn and problem). */
  fix?: string;
}

const MARK = { ok: "ok  ", warn: "warn", problem: "FAIL" } as const;

/** The checks as lines, and a last line that counts them. */
export function renderChecks(checks: readonly Check[]): string {
  const lines = checks.map((c) => `${MARK[c.level]}  ${c.what}${c.fix ? `\n        → ${c.fix}` : ""}`);
  const problems = checks.filter((c) => c.level === "problem").length;
  const warnings = checks.filter((c) => c.level === "warn").length;
  lines.push(
    problems || warnings
      ? `${problems} problem(s), ${warnings} warning(s)`
      : "everything checked is as Aloft needs it",
  );
  return `${lines.join("\n")}\n`;
}

export function doctorLocal(storePath: string): Check[] {
  const checks: Check[] = [];
  const major = Number(process.versions.node.split(".")[0]);
  checks.push(
    major >= 20
      ? { level: "ok", what: `Node.js ${process.versions.node}` }
      : {
          level: "problem",
          what: `Node.js ${process.versions.node}`,
          fix: "Aloft needs Node.js 20 or later",
        },
  );
  const path = resolve(storePath);
  if (!existsSync(path)) {
    checks.push({
      level: "ok",
      what: `no store at ${path} yet: the first aloft run creates it`,
    });
    return checks;
  }
  const holder = StoreLock.holder(path);
  checks.push(
    holder === undefined
      ? {
          level: "ok",
          what: `store ${path} (${(statSync(path).size / 1e6).toFixed(1)} MB), not held by any process`,
        }
      : { level: "ok", what: `store ${path}, held by process ${holder} (it is running runs)` },
  );
  let store: Store;
  try {
    store = new Store(path, { readonly: true });
  } catch (e) {
    checks.push({
      level: "problem",
      what: `cannot open the store: ${(e as Error).message}`,
      fix: "move it aside to start afresh (its runs are then gone), or open it with the Aloft that wrote it",
    });
    return checks;
  }
  try {
    const format = (
      store.db.prepare("SELECT v FROM meta WHERE k = 'format'").get() as { v: string } | undefined
    )?.v;
    if (format !== undefined && Number(format) > STORE_FORMAT)
      checks.push({
        level: "problem",
        what: `the store's format is v${format}, newer than this Aloft's v${STORE_FORMAT}`,
        fix: "upgrade Aloft (npm install aloft@latest)",
      });
    const running = store.listRuns(1000).filter((r) => r.status === "RUNNING");
    if (running.length && holder === undefined)
      checks.push({
        level: "warn",
        what: `${running.length} run(s) RUNNING whose process stopped: ${running
          .slice(0, 5)
          .map((r) => r.id)
          .join(", ")}${running.length > 5 ? ", ..." : ""}`,
        fix: `continue each with aloft resume <run>, or end it with aloft cancel <run>`,
      });
    const moved = [...new Set(running.flatMap((r) => (r.module && !existsSync(r.module) ? [r.module] : [])))];
    if (moved.length)
      checks.push({
        level: "problem",
        what: `task module(s) of running runs no longer exist: ${moved.join(", ")}`,
        fix: "put the module back where it was to resume those runs, or cancel them",
      });
  } finally {
    store.close();
  }
  return checks;
}
