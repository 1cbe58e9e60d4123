/**
 * Runs one action's replay wherever the engine put it (a worker thread, or inline).
 */
import { ConfigurationError, serializeError } from "../errors.ts";
import type { SerializedError } from "../errors.ts";
import type { CallId, History, Outcome } from "../core/history.ts";
import { emptyHistory } from "../core/history.ts";
import { replay } from "../core/replay.ts";
import { sharedTurnScheduler } from "../core/decision.ts";
import type { Decision } from "../core/replay.ts";
import type { Continuation } from "../core/continuation.ts";
import { findTask, listTasks } from "../registry.ts";
import { capturing, droppedLine, newCapture } from "../log-capture.ts";
import type { LogLine } from "../log-capture.ts";

export interface ExecItem {
  actionId: string;
  runId: string;
  /** Dispatch token: a result is accepted only for the dispatch that is current. */
  token: number;
  task: string;
  args: string;
  /** The attempt this dispatch runs (its logs are kept under it). */
  attempt: number;
  history?: History;
  /** Run on the engine's thread, kept to continue (core/continuation.ts): never sent to a worker. */
  keep?: { cont: Continuation | undefined; arrived: ReadonlyMap<CallId, Outcome> };
}

/** Lines bodies printed, per action and attempt (sdk/log-capture.ts). */
export type LogBatch = [actionId: string, attempt: number, lines: LogLine[]];

/**
 * Gathers the lines bodies print and sends them a moment later, in one batch: a body still running
 * (waiting on a gate, or a long computation) shows its output while it runs, and a thousand
 * children printing cost one message (a worker) or one transaction (the store), not a thousand.
 */
export class LogBuffer {
  private pending = new Map<string, LogBatch>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly send: (batch: LogBatch[]) => void,
    private readonly delayMs = 100,
  ) {}

  add(actionId: string, attempt: number, line: LogLine): void {
    const key = `${actionId}\u0000${attempt}`;
    let b = this.pending.get(key);
    if (!b) this.pending.set(key, (b = [actionId, attempt, []]));
    b[2].push(line);
    this.timer ??= setTimeout(() => this.flush(), this.delayMs);
  }

  /** Sends what is gathered now (before a decision, so an action's lines precede its outcome). */
  flush(): void {
    if (!this.pending.size) return; // (called after each inline body: most print nothing)
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = [...this.pending.values()];
    this.pending = new Map();
    this.send(batch);
  }
}

/** The decision for an action that could not be replayed at all (unknown task, a crash around it). */
export function failedDecision(error: SerializedError): Decision {
  return { kind: "failed", error, calls: [], cancels: [], traces: [], warnings: [] };
}

/**
 * What an item's body prints goes to the log buffer under its action and attempt. Made by a
 * function, not a named arrow: tsx (keepNames) renames every named closure as it is made, about a
 * microsecond each, and this one is made per child.
 */
function lineSink(logs: LogBuffer, item: ExecItem): (l: LogLine) => void {
  return (l) => logs.add(item.actionId, item.attempt, l);
}

function performanceNow(): number {
  return performance.now();
}

/** The history of an action with none (most children): shared, since a replay only reads it. */
const NO_HISTORY = emptyHistory();

/**
 * Runs an item's replay. One on the engine's thread (`item.keep`) continues its parked replay if
 * it has one, and is kept to continue (`onPark` gets the continuation) if it parks.
 */
export async function execute(
  item: ExecItem,
  logs: LogBuffer,
  onPark?: (c: Continuation) => void,
): Promise<Decision> {
  const cont = item.keep?.cont;
  if (cont) {
    // (Its console output still goes where the first replay's did: the sink travels with its scope.)
    const d = await cont.resume(item.keep!.arrived);
    if (onPark && cont.usable) onPark(cont);
    return d;
  }
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
  const onLine = lineSink(logs, item);
  // The terminal shows a body's output as before (echo); the store keeps it per action.
  const keep = item.keep !== undefined && onPark !== undefined;
  const d = await capturing(capture, { now: Date.now, echo: true, onLine }, (sink) =>
    replay({
      sink,
      task: def,
      args: item.args,
      actionId: item.actionId,
      runId: item.runId,
      // A kept replay owns its history's maps: never the shared empty one.
      history: item.history ?? (keep ? emptyHistory() : NO_HISTORY),
      // The engine places a task by how long its synchronous body takes (engine.ts, cheap tasks).
      now: performanceNow,
      scheduler: sharedTurnScheduler,
      onPark: keep ? onPark : undefined,
    }),
  );
  const dropped = droppedLine(capture, Date.now());
  if (dropped) onLine(dropped);
  return d;
}
