/**
 * A run: its state and actions (cancel, resume), counts by state, a timeline, the action tree
 * (groups collapsed to one row with counts), and the selected action's detail. Live: the server
 * sends an event when the run changes, and every view refetches what it shows.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "./api.ts";
import type { RunView } from "./api.ts";
import { OPEN_STATES, STATES, span, stateClass, time } from "./format.ts";
import { Tree } from "./tree.tsx";
import { Detail } from "./detail.tsx";
import { Timeline } from "./timeline.tsx";
import { navigate } from "./nav.ts";

/** A link to another run that moves within the app. */
function RunLink({ id }: { id: string }) {
  return (
    <a
      href={`/runs/${id}`}
      onClick={(e) => {
        e.preventDefault();
        navigate(`/runs/${id}`);
      }}
    >
      {id}
    </a>
  );
}

export function RunPage({ id }: { id: string }) {
  const [view, setView] = useState<RunView | undefined>();
  const [error, setError] = useState("");
  const [version, setVersion] = useState(0);
  const [selected, setSelected] = useState<string | undefined>(
    new URLSearchParams(location.search).get("action") ?? undefined,
  );
  const [message, setMessage] = useState("");
  const dialog = useRef<HTMLDialogElement>(null);
  // The control that opened the detail: closing it (Escape, ✕) gives the focus back there.
  const opener = useRef<HTMLElement | null>(null);
  const select = (action: string) => {
    opener.current = document.activeElement as HTMLElement | null;
    setSelected(action);
  };
  const close = () => {
    setSelected(undefined);
    const back = opener.current;
    opener.current = null;
    if (back?.isConnected) requestAnimationFrame(() => back.focus());
  };

  useEffect(() => {
    // At most one refresh a second: a run of 100,000 children changes at every look.
    let timer: ReturnType<typeof setTimeout> | undefined;
    let lastAt = 0;
    const refresh = () => {
      timer = undefined;
      lastAt = Date.now();
      setVersion((v) => v + 1);
    };
    const es = api.events(id);
    es.addEventListener("change", () => {
      timer ??= setTimeout(refresh, Math.max(0, lastAt + 1000 - Date.now()));
    });
    return () => {
      es.close();
      clearTimeout(timer);
    };
  }, [id]);
  useEffect(() => {
    let live = true;
    api.run(id).then(
      (v) => live && (setView(v), setError("")),
      (e: Error) => live && setError(e.message),
    );
    return () => void (live = false);
  }, [id, version]);
  useEffect(() => {
    const q = selected ? `?action=${encodeURIComponent(selected)}` : "";
    history.replaceState(null, "", `/runs/${encodeURIComponent(id)}${q}`);
  }, [id, selected]);
  const closeRef = useRef(close);
  closeRef.current = close;
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape" && !dialog.current?.open) closeRef.current();
    };
    addEventListener("keydown", onKey);
    return () => removeEventListener("keydown", onKey);
  }, []);

  if (error && !view) return <p class="error-text">{error}</p>;
  if (!view) return <p class="muted">Loading…</p>;
  const r = view.run;
  const act = (f: () => Promise<string>) =>
    f().then(
      (m) => (setMessage(m), setVersion((v) => v + 1)),
      (e: Error) => setMessage(`Failed: ${e.message}`),
    );
  const children = view.actions - 1;
  const done = STATES.filter((s) => !OPEN_STATES.includes(s)).reduce(
    (a, s) => a + (view.byStatus[s] ?? 0),
    0,
  );

  return (
    <div class={`run-page${selected ? " with-detail" : ""}`}>
      <section class="run-head" aria-label="run">
        <div class="title">
          <h1>{r.task}</h1>
          <span class={stateClass(r.status)} data-testid="run-status">
            {r.status}
          </span>
          {r.stopped && <span class="note">its process stopped</span>}
        </div>
        <dl class="facts">
          <dt>Run</dt>
          <dd>{r.id}</dd>
          <dt>Started</dt>
          <dd>{time(r.created)}</dd>
          <dt>Duration</dt>
          <dd>{span(r.created, r.ended)}</dd>
          <dt>Children</dt>
          <dd data-testid="run-progress">
            {done} / {children} done
          </dd>
          {view.recoveredFrom && (
            <>
              <dt>Recovers</dt>
              <dd data-testid="recovered-from">
                <RunLink id={view.recoveredFrom} />
              </dd>
            </>
          )}
          {view.recoveries && view.recoveries.length > 0 && (
            <>
              <dt>Recovered by</dt>
              <dd data-testid="recoveries">
                {view.recoveries.map((x, i) => (
                  <>
                    {i > 0 && ", "}
                    <RunLink id={x} />
                  </>
                ))}
              </dd>
            </>
          )}
        </dl>
        <div class="actions">
          {r.status === "RUNNING" && (
            <button type="button" class="danger" onClick={() => dialog.current?.showModal()}>
              Cancel run…
            </button>
          )}
          {r.recoverable && (
            <button
              type="button"
              title="A new run of the same task and inputs that reuses every call that succeeded in this one"
              onClick={() =>
                void api.recover(id).then(
                  (x) => navigate(`/runs/${x.run}`),
                  (e: Error) => setMessage(`Failed: ${e.message}`),
                )
              }
            >
              Recover
            </button>
          )}
          {r.stopped && (
            <button type="button" onClick={() => void act(() => api.resume(id))}>
              Resume
            </button>
          )}
          {message && (
            <span class="muted" role="status">
              {message}
            </span>
          )}
        </div>
        <dialog ref={dialog} aria-labelledby="cancel-title">
          <form method="dialog">
            <h2 id="cancel-title">Cancel this run?</h2>
            <p>Every queued or running action of {r.id} stops. This cannot be undone.</p>
            <div class="actions">
              <button value="keep" autofocus>
                Keep running
              </button>
              <button value="cancel" class="danger" onClick={() => void act(() => api.cancel(id))}>
                Cancel run
              </button>
            </div>
          </form>
        </dialog>
      </section>
      <section class="counts" aria-label="actions by state">
        {STATES.filter((s) => view.byStatus[s]).map((s) => (
          <span class={stateClass(s)}>
            {view.byStatus[s]} {s.toLowerCase().replace("_", " ")}
          </span>
        ))}
      </section>
      <div class="columns">
        <div class="main-col">
          <section aria-label="actions">
            <h2>Actions</h2>
            {view.root && (
              <Tree runId={id} root={view.root} version={version} selected={selected} onSelect={select} />
            )}
          </section>
          <section aria-label="timeline">
            <h2>Timeline</h2>
            <Timeline rows={view.timeline} />
          </section>
        </div>
        {selected && (
          <aside class="detail" aria-label="action detail">
            <Detail runId={id} actionId={selected} version={version} onClose={close} />
          </aside>
        )}
      </div>
    </div>
  );
}
