/**
 * A task body's console output, kept per action and attempt. The adapters run each replay inside
 * {@link capturing}; the console methods (patched once per thread, on the first capture, never by
 * `import "aloft"`) find the action whose body is printing through the replay's scope, so bodies that
 * interleave on one thread (async children in a worker, a parent's replay on the engine's thread)
 * keep their lines apart.
 *
 * Lines are numbered from 0 in each replay. A replay runs the body again from its start, so a
 * parent's replay k+1 prints again, deterministically, the lines of replay k: a line is identified
 * by (action, attempt, seq), and a store keeps the first line under each identity (the embedded
 * store's primary key; `aloft logs --aws` when it reads the structured lines back).
 */
import { format } from "node:util";
import { currentScope } from "./core/state.ts";

export type LogLevel = "debug" | "info" | "log" | "warn" | "error";

/** One line a task body printed. */
export interface LogLine {
  seq: number;
  /** Epoch milliseconds. */
  at: number;
  level: LogLevel;
  text: string;
}

/** Lines kept per replay of an attempt; later ones are counted and reported in one last line. */
export const LOG_LINES_PER_ATTEMPT = 1000;
/** Characters kept of one line; the rest is cut, and the cut said. */
export const LOG_LINE_CHARS = 4096;

export interface Capture {
  readonly lines: LogLine[];
  /** Lines past {@link LOG_LINES_PER_ATTEMPT}, not kept. */
  dropped: number;
}

interface Sink {
  capture: Capture;
  now: () => number;
  /** Also print to the original console (the embedded engine keeps the terminal output). */
  echo: boolean;
  /** Called with each kept line as it is printed (the Lambda handlers log it at once). */
  onLine: ((line: LogLine) => void) | undefined;
}

const LEVELS: LogLevel[] = ["debug", "info", "log", "warn", "error"];
const PATCHED = Symbol.for("aloft.consoleCaptured");

function record(sink: Sink, level: LogLevel, args: unknown[]): void {
  const c = sink.capture;
  if (c.lines.length >= LOG_LINES_PER_ATTEMPT) {
    c.dropped++;
    return;
  }
  let text = format(...args);
  if (text.length > LOG_LINE_CHARS)
    text = `${text.slice(0, LOG_LINE_CHARS)} … (${text.length - LOG_LINE_CHARS} more characters cut)`;
  const line: LogLine = { seq: c.lines.length, at: sink.now(), level, text };
  c.lines.push(line);
  sink.onLine?.(line);
}

/** Routes console output made inside a capture to it; outside any capture, console is unchanged. */
function patchConsole(): void {
  const con = console as unknown as Record<string | symbol, unknown>;
  if (con[PATCHED]) return;
  con[PATCHED] = true;
  for (const level of LEVELS) {
    const original = con[level] as (...a: unknown[]) => void;
    con[level] = function (this: unknown, ...args: unknown[]): void {
      const sink = currentScope()?.state.sink as Sink | undefined;
      if (sink) record(sink, level, args);
      if (!sink || sink.echo) original.apply(this, args);
    };
  }
}

/**
 * Runs `fn` (a replay) with the console output of everything its body starts captured into
 * `capture`: `fn` passes the sink it is given to `replay` (ReplayInput.sink), and the replay's scope
 * carries it to the console. When lines were dropped, the adapter reports them with
 * {@link droppedLine}.
 */
export function capturing<T>(
  capture: Capture,
  opts: { now: () => number; echo: boolean; onLine?: (line: LogLine) => void },
  fn: (sink: unknown) => T,
): T {
  patchConsole();
  const sink: Sink = { capture, now: opts.now, echo: opts.echo, onLine: opts.onLine };
  return fn(sink);
}

export function newCapture(): Capture {
  return { lines: [], dropped: 0 };
}

/** The line that says how many were dropped (numbered after the kept ones), if any were. */
export function droppedLine(c: Capture, now: number): LogLine | undefined {
  if (c.dropped === 0) return undefined;
  return {
    seq: LOG_LINES_PER_ATTEMPT,
    at: now,
    level: "warn",
    text: `[aloft] ${c.dropped} more line(s) not kept: at most ${LOG_LINES_PER_ATTEMPT} lines per attempt are kept`,
  };
}
