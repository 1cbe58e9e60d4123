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

/** One request to the server; its JSON body, or an Error with the server's message. */
async function request<T>(path: string, init?: RequestInit): Promise<T> {
  const res = await fetch(path, init);
  const body = (await res.json()) as T & { error?: string };
  if (!res.ok) throw new Error(body.error ?? `${res.status} ${res.statusText}`);
  return body;
}

/** An action: a POST with the header the server requires of writes (sdk/cli/ui/server.ts WRITE_HEADER). */
const POST: RequestInit = { method: "POST", headers: { "x-aloft-ui": "1" } };

const message = async (path: string): Promise<string> =>
  (await request<{ message?: string }>(path, POST)).message ?? "";

const run = (id: string): string => `/api/runs/${encodeURIComponent(id)}`;

export const api = {
  runs: (f: { status: string; task: string }) =>
    request<{ source: string; runs: RunSummary[] }>(
      `/api/runs?${new URLSearchParams({ ...(f.status ? { status: f.status } : {}), ...(f.task ? { task: f.task } : {}) })}`,
    ),
  run: (id: string) => request<RunView & { source: string }>(run(id)),
  children: (id: string, parent: string) =>
    request<{ groups: ChildGroup[] }>(`${run(id)}/children?${new URLSearchParams({ parent })}`),
  page: (id: string, parent: string, group: string, status: string, after: string, limit: number) =>
    request<GroupPage>(
      `${run(id)}/page?${new URLSearchParams({ parent, group, status, ...(after ? { after } : {}), limit: String(limit) })}`,
    ),
  action: (id: string, action: string) =>
    request<ActionDetail>(`${run(id)}/actions/${encodeURIComponent(action)}`),
  events: (id: string) => new EventSource(`${run(id)}/events`),
  cancel: (id: string) => message(`${run(id)}/cancel`),
  resume: (id: string) => message(`${run(id)}/resume`),
  recover: (id: string) => request<{ message: string; run: string }>(`${run(id)}/recover`, POST),
};
