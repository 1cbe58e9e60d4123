/** The runs list: status, task, start, duration; filtered by status and task name. */
import { useEffect, useState } from "preact/hooks";
import { api } from "./api.ts";
import type { RunSummary } from "./api.ts";
import { span, stateClass, time } from "./format.ts";
import { navigate } from "./nav.ts";

const STATUSES = ["", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"];

export function RunsPage() {
  const params = new URLSearchParams(location.search);
  const [status, setStatus] = useState(params.get("status") ?? "");
  const [task, setTask] = useState(params.get("task") ?? "");
  const [runs, setRuns] = useState<RunSummary[] | undefined>();
  const [error, setError] = useState("");
  const [tick, setTick] = useState(0);

  useEffect(() => {
    let live = true;
    api.runs({ status, task }).then(
      (r) => live && (setRuns(r.runs), setError("")),
      (e: Error) => live && setError(e.message),
    );
    const q = new URLSearchParams({ ...(status ? { status } : {}), ...(task ? { task } : {}) }).toString();
    history.replaceState(null, "", q ? `/?${q}` : "/");
    return () => void (live = false);
  }, [status, task, tick]);
  // The list is short: refreshed every few seconds while the page is open.
  useEffect(() => {
    const t = setInterval(() => setTick((n) => n + 1), 3000);
    return () => clearInterval(t);
  }, []);

  return (
    <section class="runs">
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="filter runs">
        <label>
          Status{" "}
          <select value={status} onChange={(e) => setStatus((e.target as HTMLSelectElement).value)}>
            {STATUSES.map((s) => (
              <option value={s}>{s || "any"}</option>
            ))}
          </select>
        </label>
        <label>
          Task{" "}
          <input
            type="search"
            placeholder="task name contains…"
            value={task}
            onInput={(e) => setTask((e.target as HTMLInputElement).value)}
          />
        </label>
      </form>
      {error && <p class="error-text">{error}</p>}
      {runs && !runs.length && <p class="muted">No runs{status || task ? " match" : " yet"}.</p>}
      {runs && runs.length > 0 && (
        <table class="grid">
          <thead>
            <tr>
              <th>Run</th>
              <th>Status</th>
              <th>Task</th>
              <th>Started</th>
              <th>Duration</th>
            </tr>
          </thead>
          <tbody>
            {runs.map((r) => (
              <tr key={r.id} data-run={r.id}>
                <td>
                  <a
                    href={`/runs/${r.id}`}
                    onClick={(e) => {
                      e.preventDefault();
                      navigate(`/runs/${r.id}`);
                    }}
                  >
                    {r.id}
                  </a>
                </td>
                <td>
                  <span class={stateClass(r.status)}>{r.status}</span>
                  {r.stopped && <span class="note"> process stopped</span>}
                </td>
                <td>{r.task}</td>
                <td>{time(r.created)}</td>
                <td>{span(r.created, r.ended)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
