/** One action: state, attempts, times, inputs, output, the error with its stack and causes, its logs. */
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "./api.ts";
import type { ActionDetail, SerializedError } from "./api.ts";
import { clock, span, stateClass, time } from "./format.ts";

function ErrorChain({ error, depth = 0 }: { error: SerializedError; depth?: number }) {
  // A TaskError carries the child's own error as details.original.
  const original = error.details?.["original"] as SerializedError | undefined;
  return (
    <div class="error-block" data-testid={depth === 0 ? "action-error" : undefined}>
      <p class="error-text">
        <strong>{error.name}</strong>: {error.message}
        {error.task && <span class="muted"> (in {error.task})</span>}
      </p>
      {error.stack && <pre class="stack">{error.stack}</pre>}
      {original && depth < 8 && (
        <>
          <p class="muted">original error:</p>
          <ErrorChain error={original} depth={depth + 1} />
        </>
      )}
      {error.cause && depth < 8 && (
        <>
          <p class="muted">caused by:</p>
          <ErrorChain error={error.cause} depth={depth + 1} />
        </>
      )}
    </div>
  );
}

export function Detail(p: { runId: string; actionId: string; version: number; onClose: () => void }) {
  const [d, setD] = useState<ActionDetail | undefined>();
  const [error, setError] = useState("");
  const head = useRef<HTMLHeadingElement>(null);
  // Opening an action moves the focus here, so a keyboard user reads on from its detail.
  useEffect(() => head.current?.focus(), [p.actionId]);
  useEffect(() => {
    let live = true;
    api.action(p.runId, p.actionId).then(
      (x) => live && (setD(x), setError("")),
      (e: Error) => live && setError(e.message),
    );
    return () => void (live = false);
  }, [p.runId, p.actionId, p.version]);
  return (
    <div class="detail-inner">
      <div class="detail-head">
        <h2 ref={head} tabIndex={-1}>
          {d?.task ?? "Action"}
        </h2>
        <button type="button" onClick={p.onClose} aria-label="close the action's detail (Escape)">
          ✕
        </button>
      </div>
      {error && <p class="error-text">{error}</p>}
      {d && d.id === p.actionId && (
        <>
          <dl class="facts">
            <dt>State</dt>
            <dd>
              <span class={stateClass(d.status)}>{d.status}</span>
              {d.cached && <span class="note"> cached</span>}
              {d.reusedFrom && <span class="note"> reused from {d.reusedFrom}</span>}
            </dd>
            {d.waiting && (
              <>
                <dt>Waiting for</dt>
                <dd data-testid="waiting">{d.waiting}</dd>
              </>
            )}
            <dt>Action</dt>
            <dd class="mono">{d.id}</dd>
            {d.group && (
              <>
                <dt>Group</dt>
                <dd>{d.group}</dd>
              </>
            )}
            <dt>Attempts</dt>
            <dd data-testid="attempts">{d.attempts}</dd>
            <dt>Started</dt>
            <dd>{time(d.startedAt)}</dd>
            <dt>Ended</dt>
            <dd>{time(d.endedAt)}</dd>
            <dt>Duration</dt>
            <dd>{span(d.startedAt, d.endedAt)}</dd>
          </dl>
          <h3>Inputs</h3>
          <pre class="value">{d.inputs}</pre>
          {d.output !== undefined && (
            <>
              <h3>Output</h3>
              <pre class="value">{d.output}</pre>
            </>
          )}
          {d.error && (
            <>
              <h3>Error</h3>
              <ErrorChain error={d.error} />
            </>
          )}
          <h3>Logs</h3>
          {d.logs.length ? (
            <ol class="logs" data-testid="logs">
              {d.logs.map((l) => (
                <li class={`log log-${l.level}`}>
                  <span class="muted">{clock(l.at)}</span>
                  {l.attempt > 1 && <span class="note">#{l.attempt}</span>}
                  <span class="lvl">{l.level}</span>
                  <span class="msg">{l.text}</span>
                </li>
              ))}
            </ol>
          ) : (
            <p class="muted">No output.</p>
          )}
        </>
      )}
    </div>
  );
}
