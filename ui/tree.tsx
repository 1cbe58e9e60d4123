/**
 * The action tree. A parent's children come as groups: a small group lists its children, a large
 * one is a single row (counts by state, a progress bar) that opens into pages of 50 — the page
 * never holds more rows than the pages opened.
 */
import { useEffect, useState } from "preact/hooks";
import { api } from "./api.ts";
import type { ActionSummary, ChildGroup, GroupPage } from "./api.ts";
import { STATES, span, stateClass } from "./format.ts";

const PAGE = 50;

interface Ctx {
  runId: string;
  version: number;
  selected: string | undefined;
  onSelect: (id: string) => void;
}

export function Tree(p: Ctx & { root: ActionSummary }) {
  return (
    <ul class="tree" role="tree" aria-label="actions of the run">
      <Action {...p} node={p.root} open />
    </ul>
  );
}

function Action(p: Ctx & { node: ActionSummary; open?: boolean }) {
  const [open, setOpen] = useState(p.open ?? false);
  const n = p.node;
  return (
    <li role="treeitem" aria-expanded={n.hasChildren ? open : undefined} data-action={n.id}>
      <div class={`row${p.selected === n.id ? " selected" : ""}`}>
        {n.hasChildren ? (
          <button
            type="button"
            class="toggle"
            aria-label={`${open ? "collapse" : "expand"} ${n.task}`}
            onClick={() => setOpen(!open)}
          >
            {open ? "▾" : "▸"}
          </button>
        ) : (
          <span class="toggle" />
        )}
        <button type="button" class="pick" onClick={() => p.onSelect(n.id)}>
          <span class={stateClass(n.status)}>{n.status}</span>
          <span class="task">{n.task}</span>
          <span class="id">{n.id.slice(0, 8)}</span>
          {n.waiting && <span class="note">{n.waiting}</span>}
          {n.attempts > 1 && <span class="note">{n.attempts} attempts</span>}
          {n.cached && <span class="note">cached</span>}
          {n.reusedFrom && <span class="note">reused</span>}
          <span class="dur">{span(n.startedAt, n.endedAt)}</span>
        </button>
      </div>
      {open && n.hasChildren && <Children {...p} parent={n.id} />}
    </li>
  );
}

function Children(p: Ctx & { parent: string }) {
  const [groups, setGroups] = useState<ChildGroup[] | undefined>();
  useEffect(() => {
    let live = true;
    void api.children(p.runId, p.parent).then((r) => live && setGroups(r.groups));
    return () => void (live = false);
  }, [p.runId, p.parent, p.version]);
  if (!groups) return <p class="muted indent">Loading…</p>;
  return (
    <ul role="group">
      {groups.map((g) =>
        g.items && !g.group ? (
          g.items.map((c) => <Action {...p} key={c.id} node={c} />)
        ) : (
          <Group {...p} key={g.group} g={g} />
        ),
      )}
    </ul>
  );
}

function Counts({ byStatus }: { byStatus: Record<string, number> }) {
  return (
    <span class="counts">
      {STATES.filter((s) => byStatus[s]).map((s) => (
        <span class={stateClass(s)}>
          {byStatus[s]} {s.toLowerCase().replace("_", " ")}
        </span>
      ))}
    </span>
  );
}

function Progress({ g }: { g: ChildGroup }) {
  const pct = (s: string) => `${(100 * (g.byStatus[s] ?? 0)) / Math.max(1, g.total)}%`;
  const ended = ["SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED"].reduce(
    (a, s) => a + (g.byStatus[s] ?? 0),
    0,
  );
  return (
    <span
      class="progress"
      role="progressbar"
      aria-valuemin={0}
      aria-valuemax={g.total}
      aria-valuenow={ended}
      aria-label={`${ended} of ${g.total} ended`}
    >
      {["SUCCEEDED", "FAILED", "TIMED_OUT", "CANCELLED", "RUNNING"].map((s) => (
        <span class={`bar bar-${s.toLowerCase().replace("_", "-")}`} style={{ width: pct(s) }} />
      ))}
    </span>
  );
}

function Group(p: Ctx & { g: ChildGroup; parent: string }) {
  const { g } = p;
  const [open, setOpen] = useState(false);
  return (
    <li role="treeitem" aria-expanded={open} class="group" data-group={g.group}>
      <div class="row">
        <button
          type="button"
          class="toggle"
          aria-label={`${open ? "collapse" : "expand"} group ${g.group || "(no group)"}`}
          onClick={() => setOpen(!open)}
        >
          {open ? "▾" : "▸"}
        </button>
        <button type="button" class="pick group-pick" onClick={() => setOpen(!open)}>
          <span class="task">[{g.group || "no group"}]</span>
          <span class="total" data-testid="group-total">
            {g.total} calls
          </span>
          <Counts byStatus={g.byStatus} />
          <Progress g={g} />
          <span class="dur">{span(g.startedAt, g.endedAt)}</span>
        </button>
      </div>
      {open &&
        (g.items ? (
          <ul role="group">
            {g.items.map((c) => (
              <Action {...p} key={c.id} node={c} />
            ))}
          </ul>
        ) : (
          <Paged {...p} />
        ))}
    </li>
  );
}

/**
 * One page of a large group's children, filterable by state. Pages follow cursors (the server's
 * `next`); the cursors of the pages before this one are kept for Previous.
 */
function Paged(p: Ctx & { g: ChildGroup; parent: string }) {
  const { g } = p;
  const [status, setStatus] = useState("");
  // Each earlier page's cursor and size, the current page's last.
  const [trail, setTrail] = useState<{ after: string; size: number }[]>([{ after: "", size: 0 }]);
  const [page, setPage] = useState<GroupPage | undefined>();
  const { parent } = p;
  const here = trail[trail.length - 1]!;
  useEffect(() => {
    let live = true;
    void api.page(p.runId, parent, g.group, status, here.after, PAGE).then((r) => live && setPage(r));
    return () => void (live = false);
  }, [p.runId, parent, g.group, status, here.after, p.version]);
  const total = status ? (g.byStatus[status] ?? 0) : g.total;
  const first = trail.reduce((a, t) => a + t.size, 0);
  const shown = page?.items.length ?? 0;
  return (
    <div class="paged">
      <div class="pager">
        <label>
          Show{" "}
          <select
            value={status}
            onChange={(e) => {
              setStatus((e.target as HTMLSelectElement).value);
              setTrail([{ after: "", size: 0 }]);
            }}
          >
            <option value="">all</option>
            {STATES.filter((s) => g.byStatus[s]).map((s) => (
              <option value={s}>{s.toLowerCase().replace("_", " ")}</option>
            ))}
          </select>
        </label>
        <button type="button" disabled={trail.length === 1} onClick={() => setTrail(trail.slice(0, -1))}>
          ‹ Previous
        </button>
        <span class="muted" aria-live="polite">
          {shown ? `${first + 1}–${first + shown} of ${total}` : page?.next ? "none on this page" : "none"}
        </span>
        <button
          type="button"
          disabled={!page?.next}
          onClick={() => page?.next && setTrail([...trail, { after: page.next, size: shown }])}
        >
          Next ›
        </button>
      </div>
      <ul role="group">
        {page?.items.map((c) => (
          <Action {...p} key={c.id} node={c} />
        ))}
      </ul>
    </div>
  );
}
