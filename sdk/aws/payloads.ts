/**
 * Payloads too large for a DynamoDB item or an SQS message go to S3; the item or message keeps a
 * reference `s3://<bucket>/<key>`. A serialised payload is JSON text and JSON never starts with
 * "s3:", so a reference cannot be mistaken for a value.
 */
import { createHash } from "node:crypto";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import type { S3Client } from "@aws-sdk/client-s3";
import { ConfigurationError } from "../errors.ts";

/** Largest payload kept inline in an item or message (bytes of UTF-8); larger ones are offloaded. */
export const INLINE_LIMIT = 48 * 1024;

export interface PayloadStore {
  /** Stores `body` and returns its reference. Content-addressed, so a retry writes the same key. */
  put(prefix: string, body: string): Promise<string>;
  get(ref: string): Promise<string>;
}

export const isRef = (s: string): boolean => s.startsWith("s3://");

export class S3PayloadStore implements PayloadStore {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string | undefined,
  ) {}

  async put(prefix: string, body: string): Promise<string> {
    if (!this.bucket) {
      throw new ConfigurationError(
        `a payload of ${Buffer.byteLength(body)} bytes must be offloaded to S3, but no bucket is configured ` +
          `(set ALOFT_BUCKET_NAME, or the stack output AloftBucketName)`,
      );
    }
    const key = `payloads/${prefix}/${createHash("sha256").update(body).digest("hex")}`;
    await this.s3.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: "application/json" }),
    );
    return `s3://${this.bucket}/${key}`;
  }

  async get(ref: string): Promise<string> {
    const rest = ref.slice("s3://".length);
    const slash = rest.indexOf("/");
    const out = await this.s3.send(
      new GetObjectCommand({ Bucket: rest.slice(0, slash), Key: rest.slice(slash + 1) }),
    );
    if (!out.Body) throw new Error(`payload ${ref} has no body`);
    return out.Body.transformToString("utf8");
  }
}

/** Keeps `body` inline when small, else offloads it and returns the reference. */
export async function offload(
  store: PayloadStore,
  prefix: string,
  body: string,
  limit = INLINE_LIMIT,
): Promise<string> {
  // Limits are in UTF-8 bytes, as DynamoDB and SQS count them; a UTF-16 unit is at most 3 bytes, so
  // a body of at most limit/4 units fits without encoding it to count.
  if (body.length <= limit / 4 || Buffer.byteLength(body) <= limit) return body;
  return store.put(prefix, body);
}

/** The payload behind `s` (itself when inline). */
export async function resolvePayload(store: PayloadStore, s: string): Promise<string> {
  return isRef(s) ? store.get(s) : s;
}
