/**
 * What `aloft ui` serves, whichever backend holds the runs: the local store (local-source.ts) or a
 * stack (aws-source.ts). Shapes are plain JSON: the browser gets them as they are.
 *
 * A parent's children come as groups with counts; only a small group's children come inline, a
 * large one (a fan-out of 100,000) is read a page at a time, from a cursor: no view reads or draws
 * every child.
 */
import type { SerializedError } from "../../errors.ts";
import type { LogEntry } from "../logs.ts";

/** Children of a group shown inline; a larger group is collapsed to its counts and paged. */
export const INLINE_CHILDREN = 20;
/** The largest page of children a request may ask for. */
export const MAX_PAGE = 200;

export interface RunSummary {
  id: string;
  task: string;
  status: string;
  created: number;
  ended: number | null;
  /** RUNNING, but no process is running it (a local run whose process stopped): it can be resumed. */
  stopped: boolean;
  /** It ended in a state a recovery may start from (docs/recover.md). */
  recoverable: boolean;
}

export interface ActionSummary {
  id: string;
  task: string;
  group: string;
  status: string;
  attempts: number;
  cached: boolean;
  /** In a recovery: the run whose recorded outcome it returned instead of running. */
  reusedFrom?: string | null;
  startedAt: number | null;
  endedAt: number | null;
  hasChildren: boolean;
  /** A durable wait not yet over (a sleep, a signal): what it waits for. Its state reads WAITING. */
  waiting?: string;
}

export interface ChildGroup {
  /** "" for calls made outside any group or map. */
  group: string;
  total: number;
  byStatus: Record<string, number>;
  startedAt: number | null;
  endedAt: number | null;
  /** The children themselves when there are at most {@link INLINE_CHILDREN}. */
  items?: ActionSummary[];
}

export interface ActionDetail extends ActionSummary {
  /** The arguments, as readable JSON. */
  inputs: string;
  /** The result, as readable JSON, once it succeeded. */
  output?: string;
  error?: SerializedError;
  logs: LogEntry[];
}

export interface TimelineRow {
  label: string;
  /** How many actions the row stands for (a group's children are one row). */
  count: number;
  status: string;
  startedAt: number | null;
  endedAt: number | null;
}

export interface RunView {
  run: RunSummary;
  root: ActionSummary | undefined;
  /** Children per state over the whole run. */
  byStatus: Record<string, number>;
  actions: number;
  timeline: TimelineRow[];
  /** The run this one recovers (docs/recover.md). */
  recoveredFrom?: string;
  /** The recoveries started from this run, oldest first. */
  recoveries?: string[];
}

/** A page of one group's children, in call order. */
export interface GroupPage {
  items: ActionSummary[];
  /** Where the next page starts (an opaque cursor); absent on the last page. */
  next?: string;
}

export interface RunFilter {
  status?: string;
  task?: string;
  limit: number;
}

export interface UiSource {
  readonly kind: "local" | "aws";
  runs(filter: RunFilter): Promise<RunSummary[]>;
  run(id: string): Promise<RunView | undefined>;
  children(runId: string, parent: string): Promise<ChildGroup[]>;
  page(
    runId: string,
    parent: string,
    group: string,
    opts: { status?: string; after?: string; limit: number },
  ): Promise<GroupPage>;
  action(runId: string, id: string): Promise<ActionDetail | undefined>;
  /** Changes whenever the run's state or logs do (the server pushes an event when it changes). */
  fingerprint(runId: string): Promise<string>;
  cancel(runId: string): Promise<string>;
  /** Continues a stopped local run; undefined where it cannot (AWS runs need no resume). */
  resume?(runId: string): Promise<string>;
  /** Starts a recovery of a run that ended badly (docs/recover.md): its message and the new run. */
  recover(runId: string): Promise<{ message: string; run: string }>;
  close(): void;
}

/** A payload (serde JSON) as readable JSON; the raw text if it does not decode. */
export function readable(payload: string, decode: (p: string) => unknown): string {
  try {
    return JSON.stringify(decode(payload), readableReplacer, 2) ?? "undefined";
  } catch {
    return payload;
  }
}

function readableReplacer(_k: string, v: unknown): unknown {
  if (typeof v === "bigint") return `${v}n`;
  if (v instanceof Map) return Object.fromEntries(v);
  if (v instanceof Set) return [...v];
  if (v instanceof Uint8Array) return `<${v.length} bytes>`;
  if (v instanceof Date) return v.toISOString();
  return v;
}
