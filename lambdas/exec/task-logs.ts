/**
 * A task body's console output on AWS: each line is logged at once through the handler's
 * Powertools Logger as a structured line carrying the run, the action, the task and the attempt
 * (`source: "task"`), which `aloft logs --aws` finds in CloudWatch Logs by run id. A parent's
 * replays print their earlier lines again under the same `seq`: the reader keeps the first.
 * Under `aloft dev` (no CloudWatch) the lines are also appended to the file ALOFT_TASK_LOG_FILE names.
 */
import { appendFileSync } from "node:fs";
import { replay } from "../../sdk/core/replay.ts";
import type { Decision, ReplayInput } from "../../sdk/core/replay.ts";
import { capturing, droppedLine, newCapture } from "../../sdk/log-capture.ts";
import type { LogLine } from "../../sdk/log-capture.ts";
import type { ExecMessage } from "../../sdk/aws/messages.ts";
import type { Runtime } from "../../sdk/aws/runtime.ts";
import { ENV } from "../../sdk/aws/config.ts";
import type { TaskLogRecord } from "../../sdk/aws/task-log.ts";

function emit(rt: Runtime, m: ExecMessage, line: LogLine): void {
  const keys = { source: "task", run: m.run, action: m.id, task: m.task, attempt: m.attempt, seq: line.seq };
  const method =
    line.level === "error"
      ? "error"
      : line.level === "warn"
        ? "warn"
        : line.level === "debug"
          ? "debug"
          : "info";
  rt.log[method](line.text, keys);
  const file = process.env[ENV.taskLogFile];
  if (file) {
    const rec: TaskLogRecord = {
      ...keys,
      source: "task",
      level: method,
      at: line.at,
      message: line.text,
    };
    appendFileSync(file, `${JSON.stringify(rec)}\n`);
  }
}

/** Replays `input` with the body's console output logged as the action's (see the file comment). */
export async function replayLogged(rt: Runtime, m: ExecMessage, input: ReplayInput): Promise<Decision> {
  const capture = newCapture();
  const d = await capturing(capture, { now: rt.now, echo: false, onLine: (l) => emit(rt, m, l) }, (sink) =>
    replay({ ...input, sink, runId: input.runId ?? m.run }),
  );
  const dropped = droppedLine(capture, rt.now());
  if (dropped) emit(rt, m, dropped);
  return d;
}
