/** Times and durations as the pages show them. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || ms < 0) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} m ${Math.round((ms % 60_000) / 1000)} s`;
  return `${Math.floor(ms / 3_600_000)} h ${Math.round((ms % 3_600_000) / 60_000)} m`;
}

export function span(start: number | null, end: number | null, now = Date.now()): string {
  return start === null ? "–" : duration((end ?? now) - start);
}

export function time(at: number | null): string {
  if (at === null) return "–";
  const d = new Date(at);
  return `${d.toLocaleDateString(undefined, { month: "short", day: "numeric" })} ${d.toLocaleTimeString(undefined, { hour12: false })}`;
}

export function clock(at: number): string {
  const d = new Date(at);
  return `${d.toLocaleTimeString(undefined, { hour12: false })}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

/** The states in the order a summary lists them. */
export const STATES = [
  "RUNNING",
  "QUEUED",
  "WAITING",
  "SUSPENDED",
  "SUCCEEDED",
  "FAILED",
  "TIMED_OUT",
  "CANCELLED",
];

/**
 * States of an action not yet over: those outside sdk/core/history.ts TERMINAL (the bundle imports
 * only types from sdk/).
 */
export const OPEN_STATES = ["RUNNING", "QUEUED", "WAITING", "SUSPENDED"];

export function stateClass(s: string): string {
  return `state state-${s.toLowerCase().replace("_", "-")}`;
}
