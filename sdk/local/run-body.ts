/**
 * Runs one action's replay wherever the engine put it (a worker thread, or inline).
 */
import { ConfigurationError, serializeError } from "../errors.ts";
import type { SerializedError } from "../errors.ts";
import type { History } from "../core/history.ts";
import { emptyHistory } from "../core/history.ts";
import { replay } from "../core/replay.ts";
import type { Decision } from "../core/replay.ts";
import { findTask, listTasks } from "../registry.ts";
import { capturing, droppedLine, newCapture } from "../log-capture.ts";
import type { LogLine } from "../log-capture.ts";

export interface ExecItem {
  actionId: string;
  /** Dispatch token: a result is accepted only for the dispatch that is current. */
  token: number;
  task: string;
  args: string;
  /** The attempt this dispatch runs (its logs are kept under it). */
  attempt: number;
  history?: History;
}

/** A replay's decision, with the console output its body printed (sdk/log-capture.ts). */
export type Executed = Decision & { logs?: { attempt: number; lines: LogLine[] } };

/** The decision for an action that could not be replayed at all (unknown task, a crash around it). */
export function failedDecision(error: SerializedError): Decision {
  return { kind: "failed", error, calls: [], cancels: [], traces: [], warnings: [] };
}

export async function execute(item: ExecItem): Promise<Executed> {
  const def = findTask(item.task);
  if (!def) {
    const known = listTasks().map((t) => t.name);
    const e = new ConfigurationError(
      `unknown task ${JSON.stringify(item.task)} in this worker; registered: ${known.join(", ") || "(none)"}. ` +
        `Is the task defined in the module given to aloft?`,
    );
    return failedDecision({ ...serializeError(e), nonRecoverable: true });
  }
  const capture = newCapture();
  // The terminal shows a body's output as before (echo); the store keeps it per action.
  const d: Executed = await capturing(capture, { now: Date.now, echo: true }, () =>
    replay({
      task: def,
      args: item.args,
      actionId: item.actionId,
      history: item.history ?? emptyHistory(),
      // The engine places a task by how long its synchronous body takes (engine.ts, cheap tasks).
      now: () => performance.now(),
    }),
  );
  const dropped = droppedLine(capture, Date.now());
  if (capture.lines.length)
    d.logs = { attempt: item.attempt, lines: dropped ? [...capture.lines, dropped] : capture.lines };
  return d;
}
