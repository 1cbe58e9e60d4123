/**
 * Task log lines of a deployed run from CloudWatch Logs: FilterLogEvents on the executors' log
 * groups (the stack output AloftExecutorLogGroups), with a JSON filter on the run id. The client
 * package is an optional peer, loaded here only: neither the Lambda bundles nor a user who never
 * reads deployed logs carries it.
 */
import { ConfigurationError } from "../errors.ts";
import { parseTaskLog } from "./task-log.ts";
import type { TaskLogRecord } from "./task-log.ts";

type Logs = typeof import("@aws-sdk/client-cloudwatch-logs");

async function loadClient(): Promise<Logs> {
  try {
    return await import("@aws-sdk/client-cloudwatch-logs");
  } catch (e) {
    throw new ConfigurationError(
      "aloft logs --aws reads CloudWatch Logs with @aws-sdk/client-cloudwatch-logs, which is not installed " +
        "here. Install it in your project:\n  npm install --save-dev @aws-sdk/client-cloudwatch-logs",
      { cause: e },
    );
  }
}

export interface CloudWatchQuery {
  logGroups: string[];
  run: string;
  action?: string;
  /** Epoch milliseconds: events before it are skipped (the run's start, or the last one seen). */
  startTime?: number;
  region?: string;
}

/** Reads every page of the run's task log events in each log group. */
export async function readCloudWatchTaskLogs(q: CloudWatchQuery): Promise<TaskLogRecord[]> {
  const { CloudWatchLogsClient, FilterLogEventsCommand } = await loadClient();
  const client = new CloudWatchLogsClient(q.region ? { region: q.region } : {});
  // Values are JSON strings, quoted for the filter syntax.
  const pattern =
    `{ ($.source = "task") && ($.run = ${JSON.stringify(q.run)})` +
    (q.action ? ` && ($.action = ${JSON.stringify(q.action)}) }` : " }");
  const out: TaskLogRecord[] = [];
  try {
    for (const logGroupName of q.logGroups) {
      let nextToken: string | undefined;
      do {
        const page = await client.send(
          new FilterLogEventsCommand({
            logGroupName,
            filterPattern: pattern,
            ...(q.startTime !== undefined ? { startTime: q.startTime } : {}),
            ...(nextToken ? { nextToken } : {}),
          }),
        );
        for (const e of page.events ?? []) {
          const r = e.message ? parseTaskLog(e.message, e.timestamp) : undefined;
          if (r) out.push(r);
        }
        nextToken = page.nextToken;
      } while (nextToken);
    }
  } finally {
    client.destroy();
  }
  return out;
}
