/** When the run's parts ran: the run, then one bar per group of children (a fan-out is one bar). */
import type { TimelineRow } from "./api.ts";
import { span, stateClass } from "./format.ts";

export function Timeline({ rows }: { rows: TimelineRow[] }) {
  const now = Date.now();
  const starts = rows.map((r) => r.startedAt).filter((x): x is number => x !== null);
  if (!starts.length) return <p class="muted">Nothing has started.</p>;
  const t0 = Math.min(...starts);
  const t1 = Math.max(...rows.map((r) => r.endedAt ?? now), t0 + 1);
  const pct = (t: number) => `${(100 * (t - t0)) / (t1 - t0)}%`;
  return (
    <ol class="timeline">
      {rows.map((r) => (
        <li>
          <span class="tl-label" title={r.label}>
            {r.label}
            {r.count > 1 && <span class="muted"> ×{r.count}</span>}
          </span>
          <span class="tl-track">
            {r.startedAt !== null && (
              <span
                class={`tl-bar ${stateClass(r.status)}`}
                style={{
                  left: pct(r.startedAt),
                  width: `max(2px, calc(${pct(r.endedAt ?? now)} - ${pct(r.startedAt)}))`,
                }}
              />
            )}
          </span>
          <span class="dur">{span(r.startedAt, r.endedAt, now)}</span>
        </li>
      ))}
    </ol>
  );
}
