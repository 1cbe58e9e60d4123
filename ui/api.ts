/** The server's JSON API (sdk/cli/ui/server.ts), typed with its own shapes. */
import type {
  ActionDetail,
  ActionSummary,
  ChildGroup,
  GroupPage,
  RunSummary,
  RunView,
} from "../sdk/cli/ui/source.ts";

export type { ActionDetail, ActionSummary, ChildGroup, GroupPage, RunSummary, RunView };
export type { TimelineRow } from "../sdk/cli/ui/source.ts";
export type { SerializedError } from "../sdk/errors.ts";

async function get<T>(path: string): Promise<T> {
  const res = await fetch(path);
  const body = (await res.json()) as T & { error?: string };
  if (!res.ok) throw new Error(body.error ?? `${res.status} ${res.statusText}`);
  return body;
}

async function post(path: string): Promise<string> {
  const res = await fetch(path, { method: "POST", headers: { "x-aloft-ui": "1" } });
  const body = (await res.json()) as { message?: string; error?: string };
  if (!res.ok) throw new Error(body.error ?? `${res.status} ${res.statusText}`);
  return body.message ?? "";
}

async function postJson<T>(path: string): Promise<T> {
  const res = await fetch(path, { method: "POST", headers: { "x-aloft-ui": "1" } });
  const body = (await res.json()) as T & { error?: string };
  if (!res.ok) throw new Error(body.error ?? `${res.status} ${res.statusText}`);
  return body;
}

const run = (id: string): string => `/api/runs/${encodeURIComponent(id)}`;

export const api = {
  runs: (f: { status: string; task: string }) =>
    get<{ source: string; runs: RunSummary[] }>(
      `/api/runs?${new URLSearchParams({ ...(f.status ? { status: f.status } : {}), ...(f.task ? { task: f.task } : {}) })}`,
    ),
  run: (id: string) => get<RunView & { source: string }>(run(id)),
  children: (id: string, parent: string) =>
    get<{ groups: ChildGroup[] }>(`${run(id)}/children?${new URLSearchParams({ parent })}`),
  page: (id: string, parent: string, group: string, status: string, after: string, limit: number) =>
    get<GroupPage>(
      `${run(id)}/page?${new URLSearchParams({ parent, group, status, ...(after ? { after } : {}), limit: String(limit) })}`,
    ),
  action: (id: string, action: string) =>
    get<ActionDetail>(`${run(id)}/actions/${encodeURIComponent(action)}`),
  events: (id: string) => new EventSource(`${run(id)}/events`),
  cancel: (id: string) => post(`${run(id)}/cancel`),
  resume: (id: string) => post(`${run(id)}/resume`),
  recover: (id: string) => postJson<{ message: string; run: string }>(`${run(id)}/recover`),
};
