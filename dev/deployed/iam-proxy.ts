/**
 * The endpoint every sandbox's AWS SDK talks to. Each request is attributed to its sandbox by the
 * access key that signed it (one per sandbox), authorised against that function's role as IAM
 * would, optionally throttled (chaos), then forwarded to DynamoDB Local or fauxqs (SQS and S3).
 * A denial is answered in the service's own AccessDenied shape, so the SDK raises what it would
 * raise on AWS.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { classify, type ArnContext, type ClassifiedRequest } from "./aws-request.ts";
import { authorize, type FunctionPolicy, type Grant } from "./iam-policy.ts";

export interface Principal {
  functionName: string;
  policy: FunctionPolicy;
}

export interface ProxyHooks {
  /** The function whose sandbox signs with this key, if any. */
  principal(accessKeyId: string): Principal | undefined;
  /** Before forwarding an authorised request: "kill" (the sandbox dies now), "throttle", or nothing. */
  before(accessKeyId: string, request: ClassifiedRequest): "kill" | "throttle" | undefined;
  /** After the service answered (in `serviceMs`), before the sandbox sees it: "kill" or nothing. */
  after(accessKeyId: string, serviceMs: number): "kill" | undefined;
  denied(functionName: string, action: string, resource: string): void;
  used(functionName: string, grants: Grant[]): void;
}

export interface ProxyTargets {
  dynamodb: string;
  sqs: string;
  s3: string;
}

export interface IamProxy {
  endpoint: string;
  requests: number;
  stop(): Promise<void>;
}

export async function startIamProxy(
  targets: ProxyTargets,
  ctx: ArnContext,
  hooks: ProxyHooks,
): Promise<IamProxy> {
  const state = { requests: 0 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      state.requests++;
      handle(req, res, Buffer.concat(chunks)).catch((e: unknown) => {
        if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
        res.end(`aloft iam proxy: ${String(e)}`);
      });
    });
  });
  server.keepAliveTimeout = 60_000;

  async function handle(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
    const url = new URL(req.url ?? "/", "http://proxy");
    const c = classify(req.method ?? "GET", url, req.headers, body, ctx);
    const principal = c && hooks.principal(c.accessKeyId);
    if (!c || !principal) {
      res.writeHead(403, { "content-type": "text/plain" });
      res.end("aloft iam proxy: a request not signed by a sandbox's credentials");
      return;
    }
    const matched: Grant[] = [];
    for (const a of c.accesses) {
      const v = authorize(principal.policy, a.action, a.resource);
      if (!v.allowed) {
        hooks.denied(principal.functionName, a.action, a.resource);
        const who = `${principal.policy.roleArn.replace(":iam::", ":sts::").replace(":role/", ":assumed-role/")}/${principal.functionName}`;
        return deny(
          res,
          c.service,
          `User: ${who} is not authorized to perform: ${a.action} on resource: ${a.resource} because no identity-based policy allows the ${a.action} action`,
        );
      }
      matched.push(...v.matched);
    }
    hooks.used(principal.functionName, matched);
    const fault = hooks.before(c.accessKeyId, c);
    if (fault === "kill") return void res.destroy();
    if (fault === "throttle") return throttle(res, c.service, state.requests);
    const target = new URL(
      c.service === "dynamodb" ? targets.dynamodb : c.service === "s3" ? targets.s3 : targets.sqs,
    );
    const sent = performance.now();
    const answer = await forward(target, req, url, body);
    if (hooks.after(c.accessKeyId, performance.now() - sent) === "kill") return void res.destroy();
    res.writeHead(answer.status, answer.headers);
    res.end(answer.body);
  }

  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    get requests() {
      return state.requests;
    },
    stop: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

function forward(
  target: URL,
  req: IncomingMessage,
  url: URL,
  body: Buffer,
): Promise<{ status: number; headers: Record<string, string | string[]>; body: Buffer }> {
  return new Promise((ok, fail) => {
    const headers = { ...req.headers, host: target.host };
    const out = request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: url.pathname + url.search,
        headers,
      },
      (r) => {
        const chunks: Buffer[] = [];
        r.on("data", (c: Buffer) => chunks.push(c));
        r.on("end", () => {
          const h: Record<string, string | string[]> = {};
          for (const [k, v] of Object.entries(r.headers))
            if (v !== undefined && k !== "transfer-encoding") h[k] = v;
          ok({ status: r.statusCode ?? 502, headers: h, body: Buffer.concat(chunks) });
        });
        r.on("error", fail);
      },
    );
    out.on("error", fail);
    out.end(body);
  });
}

const JSON_TYPE = { "content-type": "application/x-amz-json-1.0" };

function deny(res: ServerResponse, service: string, message: string): void {
  if (service === "s3") {
    res.writeHead(403, { "content-type": "application/xml" });
    res.end(
      `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>${message}</Message></Error>`,
    );
    return;
  }
  const extra = service === "sqs" ? { "x-amzn-query-error": "AccessDenied;Sender" } : {};
  res.writeHead(400, { ...JSON_TYPE, ...extra });
  res.end(
    JSON.stringify({ __type: "com.amazon.coral.service#AccessDeniedException", message, Message: message }),
  );
}

/** The service's throttling error, or (one time in four) its 5xx: both are retried by the SDK. */
function throttle(res: ServerResponse, service: string, n: number): void {
  const server = n % 4 === 0;
  if (service === "s3") {
    res.writeHead(server ? 500 : 503, { "content-type": "application/xml" });
    const code = server ? "InternalError" : "SlowDown";
    res.end(
      `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message></Error>`,
    );
    return;
  }
  if (service === "sqs") {
    const code = server ? "InternalError" : "RequestThrottled";
    res.writeHead(server ? 500 : 400, {
      ...JSON_TYPE,
      "x-amzn-query-error": `${code};${server ? "Receiver" : "Sender"}`,
    });
    res.end(JSON.stringify({ __type: `com.amazonaws.sqs#${code}`, message: code }));
    return;
  }
  const code = server ? "InternalServerError" : "ThrottlingException";
  res.writeHead(server ? 500 : 400, JSON_TYPE);
  res.end(
    JSON.stringify({
      __type: `com.amazonaws.dynamodb.v20120810#${code}`,
      message: "Rate of requests exceeds the allowed throughput.",
    }),
  );
}
