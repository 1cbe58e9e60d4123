/**
 * What Lambda's SQS event source hands a function: the SQSEvent built from received messages,
 * the Lambda context, and the rules by which it reads a partial batch response.
 */
import { randomUUID } from "node:crypto";
import type { Message, MessageAttributeValue } from "@aws-sdk/client-sqs";
import type { Context, SQSMessageAttribute, SQSRecord, SQSRecordAttributes } from "aws-lambda";

export interface EventSource {
  /** The queue's ARN, as Lambda puts it in every record. */
  eventSourceARN: string;
  awsRegion: string;
}

/** arn:aws:sqs:<region>:<account>:<name> → its parts. */
export function parseQueueArn(arn: string): { region: string; account: string; name: string } {
  const [, , , region = "", account = "", name = ""] = arn.split(":");
  return { region, account, name };
}

export function toSqsRecord(message: Message, source: EventSource): SQSRecord {
  const raw = message.Attributes ?? {};
  const now = String(Date.now());
  // Emulators may omit some system attributes; Lambda always sends these four.
  const attributes: SQSRecordAttributes = {
    ...(raw as Record<string, string>),
    ApproximateReceiveCount: raw.ApproximateReceiveCount ?? "1",
    SentTimestamp: raw.SentTimestamp ?? now,
    SenderId: raw.SenderId ?? parseQueueArn(source.eventSourceARN).account,
    ApproximateFirstReceiveTimestamp: raw.ApproximateFirstReceiveTimestamp ?? now,
  };
  const record: SQSRecord = {
    messageId: message.MessageId ?? "",
    receiptHandle: message.ReceiptHandle ?? "",
    body: message.Body ?? "",
    attributes,
    messageAttributes: Object.fromEntries(
      Object.entries(message.MessageAttributes ?? {}).map(([name, value]) => [
        name,
        toLambdaAttribute(value),
      ]),
    ),
    md5OfBody: message.MD5OfBody ?? "",
    eventSource: "aws:sqs",
    eventSourceARN: source.eventSourceARN,
    awsRegion: source.awsRegion,
  };
  if (message.MD5OfMessageAttributes) record.md5OfMessageAttributes = message.MD5OfMessageAttributes;
  return record;
}

function toLambdaAttribute(value: MessageAttributeValue): SQSMessageAttribute {
  const attribute: SQSMessageAttribute = {
    stringListValues: [],
    binaryListValues: [],
    dataType: value.DataType ?? "String",
  };
  if (value.StringValue !== undefined) attribute.stringValue = value.StringValue;
  // Lambda delivers binary attributes base64-encoded.
  if (value.BinaryValue !== undefined)
    attribute.binaryValue = Buffer.from(value.BinaryValue).toString("base64");
  return attribute;
}

export interface LambdaContextOptions {
  functionName: string;
  region: string;
  /** Lambda's function timeout, for getRemainingTimeInMillis(); it is not enforced. */
  timeoutSeconds?: number;
  memoryMiB?: number;
}

export function lambdaContext(options: LambdaContextOptions): Context {
  const deadline = Date.now() + (options.timeoutSeconds ?? 900) * 1000;
  const unsupported = (name: string) => () => {
    throw new Error(`context.${name}() is not supported by the local event source; return or throw instead`);
  };
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: options.functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:${options.region}:000000000000:function:${options.functionName}`,
    memoryLimitInMB: String(options.memoryMiB ?? 1024),
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${options.functionName}`,
    logStreamName: `local/[$LATEST]${randomUUID().replaceAll("-", "")}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: unsupported("done"),
    fail: unsupported("fail"),
    succeed: unsupported("succeed"),
  };
}

type BatchVerdict = { failed: Set<string> } | { wholeBatchFailed: string };

/**
 * Lambda's reading of a partial batch response (ReportBatchItemFailures): no response, a null or
 * empty batchItemFailures means every message succeeded; a response that is not valid JSON, or
 * an itemIdentifier that is empty, missing or not a message of this batch, fails the whole batch.
 */
export function readBatchResponse(response: unknown, records: SQSRecord[]): BatchVerdict {
  if (response === undefined || response === null) return { failed: new Set() };
  let parsed: unknown;
  try {
    // Lambda sees the handler's result only as serialised JSON.
    parsed = JSON.parse(JSON.stringify(response) ?? "null");
  } catch (err) {
    return { wholeBatchFailed: `response is not serialisable as JSON (${(err as Error).message})` };
  }
  if (parsed === null) return { failed: new Set() };
  if (typeof parsed !== "object" || Array.isArray(parsed)) {
    return {
      wholeBatchFailed: `response is not an object with batchItemFailures: ${JSON.stringify(parsed)}`,
    };
  }
  const failures = (parsed as { batchItemFailures?: unknown }).batchItemFailures;
  if (failures === undefined || failures === null) return { failed: new Set() };
  if (!Array.isArray(failures)) return { wholeBatchFailed: "batchItemFailures is not an array" };
  const ids = new Set(records.map((r) => r.messageId));
  const failed = new Set<string>();
  for (const failure of failures as unknown[]) {
    const id =
      typeof failure === "object" && failure !== null
        ? (failure as { itemIdentifier?: unknown }).itemIdentifier
        : undefined;
    if (typeof id !== "string" || id === "" || !ids.has(id)) {
      return { wholeBatchFailed: `invalid batchItemFailures entry ${JSON.stringify(failure)}` };
    }
    failed.add(id);
  }
  return { failed };
}
