/**
 * `aloft logs <run> [action] [--follow] [--aws]`: what task bodies printed, per action and attempt.
 * Local runs read the store; AWS runs read CloudWatch Logs (or, under `aloft dev`, the file its
 * handlers write; under `aloft dev --cdk-out`, its sandboxes' output), keeping the first of each
 * line a parent's replays printed again.
 */
import type { Store } from "../local/store.ts";
import type { AloftClient } from "../aws/client.ts";
import { ConfigurationError } from "../errors.ts";
import { dedupeTaskLogs, readTaskLogDir, readTaskLogFile } from "../aws/task-log.ts";
import type { TaskLogRecord } from "../aws/task-log.ts";

/** One line as the CLI and the UI show it, whichever backend it came from. */
export interface LogEntry {
  at: number;
  action: string;
  task: string;
  attempt: number;
  level: string;
  text: string;
}

export function formatLog(e: LogEntry): string {
  const where = `${e.task} ${e.action.slice(0, 8)}${e.attempt > 1 ? ` #${e.attempt}` : ""}`;
  return `${new Date(e.at).toISOString()}  ${where}  ${e.level.padEnd(5)}  ${e.text}\n`;
}

export const logEntryOf = (r: TaskLogRecord): LogEntry => ({
  at: r.at,
  action: r.action,
  task: r.task,
  attempt: r.attempt,
  level: r.level,
  text: r.message,
});

/** An action id typed in full or by a unique prefix, among the run's actions. */
export function resolveAction(store: Store, runId: string, prefix: string): string {
  const rows = store.db
    .prepare(`SELECT id FROM actions WHERE run_id = ? AND id LIKE ? LIMIT 6`)
    .all(runId, `${prefix}%`) as { id: string }[];
  if (rows.length === 1) return rows[0]!.id;
  if (rows.some((r) => r.id === prefix)) return prefix;
  throw new ConfigurationError(
    rows.length
      ? `action ${prefix} is ambiguous in run ${runId}: ${rows.map((r) => r.id).join(", ")}`
      : `no action ${prefix} in run ${runId}; aloft status ${runId} --json lists them`,
  );
}

/** Lines read from the store at a time. */
export const LOG_PAGE = 5000;

/** A local run's lines after `afterRowid` (at most {@link LOG_PAGE}), and the rowid to continue from. */
export function localLogs(
  store: Store,
  runId: string,
  action: string | undefined,
  afterRowid = 0,
): { entries: LogEntry[]; last: number } {
  const rows = store.logs(runId, { ...(action ? { action } : {}), afterRowid, limit: LOG_PAGE });
  return {
    entries: rows.map((r) => ({
      at: r.at,
      action: r.action_id,
      task: r.task,
      attempt: r.attempt,
      level: r.level,
      text: r.text,
    })),
    last: rows.length ? rows[rows.length - 1]!.rowid : afterRowid,
  };
}

/**
 * Where a stack's task logs are: the dev stack's file, the deployed shape's sandbox output, or the
 * executors' log groups.
 */
export async function awsLogs(
  client: AloftClient,
  runId: string,
  opts: { action?: string; logGroups?: string[]; startTime?: number },
): Promise<TaskLogRecord[]> {
  const cfg = client.config;
  if (cfg.taskLogFile) return readTaskLogFile(cfg.taskLogFile, runId, opts.action);
  if (cfg.functionLogDir) return readTaskLogDir(cfg.functionLogDir, runId, opts.action);
  const groups = opts.logGroups?.length ? opts.logGroups : Object.values(cfg.executorLogGroups ?? {});
  if (!groups.length) {
    throw new ConfigurationError(
      "no log groups to read: the stack outputs name none (AloftExecutorLogGroups, written by the " +
        "construct since this version: redeploy), and no --log-group was given",
    );
  }
  const { readCloudWatchTaskLogs } = await import("../aws/cloudwatch-logs.ts");
  return readCloudWatchTaskLogs({
    logGroups: groups,
    run: runId,
    ...(opts.action ? { action: opts.action } : {}),
    ...(opts.startTime !== undefined ? { startTime: opts.startTime } : {}),
    ...(cfg.region ? { region: cfg.region } : {}),
  });
}

/** Prints a run's lines on AWS; with `follow`, polls until the run has ended. */
export async function printAwsLogs(
  client: AloftClient,
  runId: string,
  opts: { action?: string; logGroups?: string[]; follow?: boolean; intervalMs?: number },
  write: (s: string) => void,
): Promise<void> {
  const seen = new Set<string>();
  const run = await client.getRun(runId);
  if (!run) throw new ConfigurationError(`no run ${runId} on this stack; list runs with: aloft runs --aws`);
  let since = run.created - 60_000;
  for (;;) {
    const ended = (await client.getRun(runId))?.status !== "RUNNING";
    const fresh = dedupeTaskLogs(await awsLogs(client, runId, { ...opts, startTime: since }), seen);
    for (const r of fresh) write(formatLog(logEntryOf(r)));
    // CloudWatch delivers late: look back a minute each time (seen drops the repeats).
    if (fresh.length) since = Math.max(since, fresh[fresh.length - 1]!.at - 60_000);
    if (!opts.follow || ended) return;
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 2000));
  }
}
