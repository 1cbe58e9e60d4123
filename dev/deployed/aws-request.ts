/**
 * What IAM authorises in one AWS request: its service (from the SigV4 credential scope), and each
 * (action, resource ARN) pair it needs — the way AWS itself counts them: a DynamoDB transaction or
 * batch needs each item action on each table, SendMessageBatch is sqs:SendMessage, a HeadObject
 * is s3:GetObject, a query on an index is authorised on `<table ARN>/index/<name>`.
 */
export interface Access {
  action: string;
  resource: string;
}

export interface ClassifiedRequest {
  service: string;
  /** The operation's name (e.g. TransactWriteItems), for messages. */
  operation: string;
  /** The access key that signed it: which sandbox sent it. */
  accessKeyId: string;
  accesses: Access[];
}

export interface ArnContext {
  region: string;
  account: string;
  /** Queue ARN of a queue URL (else derived from the URL's last segment). */
  queueArn(url: string): string;
}

/** `AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/dynamodb/aws4_request, ...` → its parts. */
export function credentialScope(
  authorization: string | undefined,
): { accessKeyId: string; service: string } | undefined {
  const m = /Credential=([^/]+)\/\d{8}\/[^/]+\/([^/]+)\/aws4_request/.exec(authorization ?? "");
  return m ? { accessKeyId: m[1]!, service: m[2]! } : undefined;
}

export function classify(
  method: string,
  url: URL,
  headers: Record<string, string | string[] | undefined>,
  body: Buffer,
  ctx: ArnContext,
): ClassifiedRequest | undefined {
  const scope = credentialScope(headers["authorization"] as string | undefined);
  if (!scope) return undefined;
  const target = String(headers["x-amz-target"] ?? "");
  if (scope.service === "dynamodb") return { ...scope, ...dynamo(target, json(body), ctx) };
  if (scope.service === "sqs") return { ...scope, ...sqs(target, body, headers, ctx) };
  if (scope.service === "s3") return { ...scope, ...s3(method, url) };
  return { ...scope, operation: "?", accesses: [{ action: `${scope.service}:*`, resource: "*" }] };
}

function json(body: Buffer): Record<string, any> {
  try {
    return body.length ? (JSON.parse(body.toString("utf8")) as Record<string, any>) : {};
  } catch {
    return {};
  }
}

function dynamo(target: string, b: Record<string, any>, ctx: ArnContext) {
  const operation = target.split(".").pop() ?? "?";
  const table = (name: string) =>
    name.startsWith("arn:") ? name : `arn:aws:dynamodb:${ctx.region}:${ctx.account}:table/${name}`;
  const on = (action: string, t: string, index?: string): Access => ({
    action: `dynamodb:${action}`,
    resource: index ? `${table(t)}/index/${index}` : table(t),
  });
  let accesses: Access[];
  switch (operation) {
    case "BatchGetItem":
    case "BatchWriteItem":
      accesses = Object.keys(b["RequestItems"] ?? {}).map((t) => on(operation, t));
      break;
    case "TransactWriteItems": {
      // No action of its own: each item's (Put → PutItem, ...) on its table.
      const kinds: Record<string, string> = {
        Put: "PutItem",
        Update: "UpdateItem",
        Delete: "DeleteItem",
        ConditionCheck: "ConditionCheckItem",
      };
      accesses = (b["TransactItems"] ?? []).flatMap((item: Record<string, { TableName: string }>) =>
        Object.entries(item).map(([k, v]) => on(kinds[k] ?? k, v.TableName)),
      );
      break;
    }
    case "TransactGetItems":
      accesses = (b["TransactItems"] ?? []).map((item: { Get: { TableName: string } }) =>
        on("GetItem", item.Get.TableName),
      );
      break;
    default:
      accesses = [
        b["TableName"]
          ? on(operation, b["TableName"], b["IndexName"])
          : { action: `dynamodb:${operation}`, resource: "*" },
      ];
  }
  return { operation, accesses: dedupe(accesses) };
}

const SQS_BATCH: Record<string, string> = {
  SendMessageBatch: "SendMessage",
  DeleteMessageBatch: "DeleteMessage",
  ChangeMessageVisibilityBatch: "ChangeMessageVisibility",
};

function sqs(
  target: string,
  body: Buffer,
  headers: Record<string, string | string[] | undefined>,
  ctx: ArnContext,
) {
  let operation: string;
  let queueUrl: string | undefined;
  let queueName: string | undefined;
  if (target) {
    // The JSON protocol (SDK v3 since 2023): X-Amz-Target: AmazonSQS.<Operation>.
    const b = json(body);
    operation = target.split(".").pop() ?? "?";
    queueUrl = b["QueueUrl"];
    queueName = b["QueueName"];
  } else {
    const form = new URLSearchParams(
      String(headers["content-type"] ?? "").includes("x-www-form") ? body.toString("utf8") : "",
    );
    operation = form.get("Action") ?? "?";
    queueUrl = form.get("QueueUrl") ?? undefined;
    queueName = form.get("QueueName") ?? undefined;
  }
  const resource = queueUrl
    ? ctx.queueArn(queueUrl)
    : queueName
      ? `arn:aws:sqs:${ctx.region}:${ctx.account}:${queueName}`
      : "*";
  return { operation, accesses: [{ action: `sqs:${SQS_BATCH[operation] ?? operation}`, resource }] };
}

function s3(method: string, url: URL) {
  const [bucket = "", ...rest] = url.pathname.replace(/^\//, "").split("/");
  const key = decodeURIComponent(rest.join("/"));
  const q = url.searchParams;
  const object = `arn:aws:s3:::${bucket}/${key}`;
  const bucketArn = `arn:aws:s3:::${bucket}`;
  let operation: string;
  let access: Access;
  if (!key) {
    operation =
      method === "PUT"
        ? "CreateBucket"
        : method === "DELETE"
          ? "DeleteBucket"
          : q.has("delete")
            ? "DeleteObjects"
            : "ListObjects";
    const action = {
      CreateBucket: "s3:CreateBucket",
      DeleteBucket: "s3:DeleteBucket",
      DeleteObjects: "s3:DeleteObject",
      ListObjects: "s3:ListBucket",
    }[operation]!;
    access = { action, resource: operation === "DeleteObjects" ? `${bucketArn}/*` : bucketArn };
  } else if (method === "GET" || method === "HEAD") {
    operation = method === "GET" ? "GetObject" : "HeadObject";
    access = { action: "s3:GetObject", resource: object };
  } else if (method === "DELETE") {
    operation = "DeleteObject";
    access = { action: "s3:DeleteObject", resource: object };
  } else {
    operation = q.has("uploads") ? "CreateMultipartUpload" : q.has("partNumber") ? "UploadPart" : "PutObject";
    access = { action: "s3:PutObject", resource: object };
  }
  return { operation, accesses: [access] };
}

function dedupe(accesses: Access[]): Access[] {
  const seen = new Set<string>();
  return accesses.filter((a) => {
    const k = `${a.action} ${a.resource}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
