/**
 * Task log lines on AWS, as the handlers write them (lambdas/exec/task-logs.ts) and as
 * `aloft logs --aws` and `aloft ui --aws` read them back: from CloudWatch Logs on a deployed stack
 * (sdk/aws/cloudwatch-logs.ts), from a file under `aloft dev`, from the sandboxes' output files
 * under `aloft dev --cdk-out`.
 */
import { createReadStream, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

/** One line of a task body's console output, with where it came from. */
export interface TaskLogRecord {
  source: "task";
  run: string;
  action: string;
  task: string;
  attempt: number;
  /** Its number in the replay that printed it: (action, attempt, seq) names a line. */
  seq: number;
  level: string;
  /** Epoch milliseconds. */
  at: number;
  message: string;
}

/**
 * A task log record from one structured line (a Powertools line from CloudWatch, or a line of the
 * dev stack's file); undefined for any other line.
 */
export function parseTaskLog(line: string, timestamp?: number): TaskLogRecord | undefined {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line.slice(line.indexOf("{"))) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (o["source"] !== "task" || typeof o["run"] !== "string" || typeof o["action"] !== "string")
    return undefined;
  const at =
    typeof o["at"] === "number"
      ? o["at"]
      : typeof o["timestamp"] === "string"
        ? Date.parse(o["timestamp"])
        : NaN;
  return {
    source: "task",
    run: o["run"],
    action: o["action"],
    task: String(o["task"] ?? ""),
    attempt: Number(o["attempt"] ?? 1),
    seq: Number(o["seq"] ?? 0),
    level: String(o["level"] ?? "info").toLowerCase(),
    at: Number.isFinite(at) ? at : (timestamp ?? 0),
    message: String(o["message"] ?? ""),
  };
}

/**
 * Keeps the first record of each (action, attempt, seq) — a parent's replays print their earlier
 * lines again — and orders them by time. `seen` carries across calls (`--follow`).
 */
export function dedupeTaskLogs(records: TaskLogRecord[], seen = new Set<string>()): TaskLogRecord[] {
  const out: TaskLogRecord[] = [];
  for (const r of records) {
    const key = `${r.action}\u0000${r.attempt}\u0000${r.seq}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(r);
  }
  return out.sort((a, b) => a.at - b.at);
}

/** The records of `run` (of one action, if given) in the dev stack's task log file. */
export function readTaskLogFile(file: string, run: string, action?: string): TaskLogRecord[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  const out: TaskLogRecord[] = [];
  for (const line of text.split("\n")) {
    if (!line.includes(run)) continue;
    const r = parseTaskLog(line);
    if (r && r.run === run && (!action || r.action === action)) out.push(r);
  }
  return out;
}

/**
 * The records of `run` (of one action, if given) in the sandboxes' output under `aloft dev
 * --cdk-out`: one `<function>.log` per function, holding the executors' Powertools lines among the
 * rest. Read a line at a time: a long session's files outgrow what one string may hold.
 */
export async function readTaskLogDir(dir: string, run: string, action?: string): Promise<TaskLogRecord[]> {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith(".log"));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  const out: TaskLogRecord[] = [];
  for (const f of files) {
    const lines = createInterface({ input: createReadStream(join(dir, f)), crlfDelay: Infinity });
    for await (const line of lines) {
      if (!line.includes(run)) continue;
      const r = parseTaskLog(line);
      if (r && r.run === run && (!action || r.action === action)) out.push(r);
    }
  }
  return out;
}
