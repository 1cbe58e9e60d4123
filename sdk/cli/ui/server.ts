/**
 * `aloft ui`: a small JSON API and the bundled page over node:http, on 127.0.0.1 only. Guarded as
 * the dev stack's emulators are (dev/loopback.ts): a request must name a loopback Host (no DNS
 * rebinding) and, if it has an Origin, a loopback one; a write (cancel, resume) must also carry a
 * header of Aloft's, which no cross-origin page can send without a preflight this server never grants.
 *
 *   GET  /  /runs/<id>                       the page (a deep link works: the page reads the path)
 *   GET  /api/runs?status=&task=&limit=      runs, newest first
 *   GET  /api/runs/<id>                      a run: summary, root, counts, timeline
 *   GET  /api/runs/<id>/children?parent=     a parent's children as groups (small ones inline)
 *   GET  /api/runs/<id>/page?parent=&group=&status=&after=&limit=   a page of one group (after: its
 *                                            previous page's `next`)
 *   GET  /api/runs/<id>/actions/<action>     an action: inputs, output, error, logs
 *   GET  /api/runs/<id>/events               server-sent events: "change" when the run changes
 *   POST /api/runs/<id>/cancel | resume | recover
 */
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { LOOPBACK_HOST, isLoopbackRequest } from "../../../dev/loopback.ts";
import { uiAssets } from "./bundle.ts";
import type { UiSource } from "./source.ts";

/** The header a write must carry (a cross-origin page cannot add it without a preflight). */
export const WRITE_HEADER = "x-aloft-ui";
/** How often a live page's run is looked at for changes. */
const WATCH_MS = 500;

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Aloft</title><link rel="stylesheet" href="/assets/app.css"></head>
<body><div id="app"></div><script type="module" src="/assets/app.js"></script></body></html>
`;

const SECURITY_HEADERS = {
  "content-security-policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface UiServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { ...SECURITY_HEADERS, "content-type": type });
  res.end(body);
}

const json = (res: ServerResponse, body: unknown, status = 200): void =>
  send(res, status, "application/json; charset=utf-8", JSON.stringify(body));

function int(v: string | null, dflt: number, max: number): number {
  const n = v === null ? dflt : Number(v);
  if (!Number.isInteger(n) || n < 0) throw new HttpError(400, `not a count: ${v}`);
  return Math.min(n, max);
}

/** Starts the server; `port` 0 picks a free one. */
export async function startUiServer(source: UiSource, port = 0): Promise<UiServer> {
  const watchers = new Map<string, Set<ServerResponse>>();
  let watching: NodeJS.Timeout | undefined;
  const last = new Map<string, string>();

  const tick = async (): Promise<void> => {
    for (const [runId, clients] of watchers) {
      if (!clients.size) {
        watchers.delete(runId);
        last.delete(runId);
        continue;
      }
      let fp: string;
      try {
        fp = await source.fingerprint(runId);
      } catch {
        continue; // a transient read error: look again next time
      }
      if (last.get(runId) === fp) continue;
      last.set(runId, fp);
      for (const c of clients) c.write(`event: change\ndata: ${JSON.stringify(fp.length)}\n\n`);
    }
    watching = watchers.size ? setTimeout(() => void tick(), WATCH_MS) : undefined;
  };

  const api = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent); // api, runs, id, ...
    const q = url.searchParams;
    if (req.method === "POST") {
      if (req.headers[WRITE_HEADER] !== "1")
        throw new HttpError(403, `a write needs the ${WRITE_HEADER} header`);
      const [, , id, verb] = parts;
      if (parts.length !== 4 || !id) throw new HttpError(404, "no such endpoint");
      if (verb === "cancel") return json(res, { message: await source.cancel(id) });
      if (verb === "recover") return json(res, await source.recover(id));
      if (verb === "resume") {
        if (!source.resume) throw new HttpError(400, "only a local run can be resumed");
        return json(res, { message: await source.resume(id) });
      }
      throw new HttpError(404, "no such endpoint");
    }
    if (req.method !== "GET") throw new HttpError(405, "GET or POST");
    if (parts.length === 2)
      return json(res, {
        source: source.kind,
        runs: await source.runs({
          ...(q.get("status") ? { status: q.get("status")! } : {}),
          ...(q.get("task") ? { task: q.get("task")! } : {}),
          limit: int(q.get("limit"), 50, 500),
        }),
      });
    const id = parts[2]!;
    const what = parts[3];
    if (what === undefined) {
      const view = await source.run(id);
      if (!view) throw new HttpError(404, `no run ${id}`);
      return json(res, { source: source.kind, ...view });
    }
    if (what === "children") return json(res, { groups: await source.children(id, q.get("parent") ?? id) });
    if (what === "page")
      return json(
        res,
        await source.page(id, q.get("parent") ?? id, q.get("group") ?? "", {
          ...(q.get("status") ? { status: q.get("status")! } : {}),
          ...(q.get("after") ? { after: q.get("after")! } : {}),
          limit: int(q.get("limit"), 50, 200),
        }),
      );
    if (what === "actions" && parts[4]) {
      const d = await source.action(id, parts[4]);
      if (!d) throw new HttpError(404, `no action ${parts[4]} in run ${id}`);
      return json(res, d);
    }
    if (what === "events") {
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        "content-type": "text/event-stream",
        connection: "keep-alive",
      });
      res.write(": watching\n\n");
      let clients = watchers.get(id);
      if (!clients) watchers.set(id, (clients = new Set()));
      clients.add(res);
      last.delete(id); // a new page gets the current state at once
      req.on("close", () => clients.delete(res));
      watching ??= setTimeout(() => void tick(), 0);
      return;
    }
    throw new HttpError(404, "no such endpoint");
  };

  const server = createServer((req, res) => {
    if (!isLoopbackRequest(req.headers.host, req.headers.origin)) {
      send(res, 403, "text/plain", "aloft ui serves this machine only (Host and Origin must be loopback)\n");
      return;
    }
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const handle = async (): Promise<void> => {
      if (url.pathname.startsWith("/api/")) return api(req, res, url);
      if (req.method !== "GET") throw new HttpError(405, "GET");
      if (url.pathname === "/assets/app.js")
        return send(res, 200, "text/javascript; charset=utf-8", (await uiAssets()).js);
      if (url.pathname === "/assets/app.css")
        return send(res, 200, "text/css; charset=utf-8", (await uiAssets()).css);
      if (url.pathname === "/" || /^\/runs\/[^/]+\/?$/.test(url.pathname))
        return send(res, 200, "text/html; charset=utf-8", PAGE);
      throw new HttpError(404, "not found");
    };
    handle().catch((e: unknown) => {
      const status = e instanceof HttpError ? e.status : 500;
      if (res.headersSent) return void res.end();
      json(res, { error: (e as Error)?.message ?? String(e) }, status);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, LOOPBACK_HOST, () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://${LOOPBACK_HOST}:${actual}`,
    port: actual,
    async close() {
      clearTimeout(watching);
      for (const clients of watchers.values()) for (const c of clients) c.end();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      source.close();
    },
  };
}
