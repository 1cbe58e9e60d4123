/**
 * The deployed-shape harness's IAM: which (action, resource) pairs a request needs, and the verdict
 * of a role's statements as the construct writes them (dev/deployed/aws-request.ts, iam-policy.ts).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { classify } from "../dev/deployed/aws-request.ts";
import { authorize, rolePolicy, type FunctionPolicy } from "../dev/deployed/iam-policy.ts";
import type { Scope } from "../dev/deployed/intrinsics.ts";

const TABLE = "arn:aws:dynamodb:us-east-1:000000000000:table/T";
const ctx = {
  region: "us-east-1",
  account: "000000000000",
  queueArn: (u: string) => `arn:aws:sqs:us-east-1:000000000000:${u.split("/").pop()}`,
};
const auth = (service: string) => ({
  authorization: `AWS4-HMAC-SHA256 Credential=ASIA0X0001/20250101/us-east-1/${service}/aws4_request, SignedHeaders=host, Signature=x`,
});
const body = (o: unknown) => Buffer.from(JSON.stringify(o));

describe("deployed-shape IAM", () => {
  it("counts the item actions of a transaction, an index query and a batch send as AWS does", () => {
    const tx = classify(
      "POST",
      new URL("http://p/"),
      { ...auth("dynamodb"), "x-amz-target": "DynamoDB_20120810.TransactWriteItems" },
      body({ TransactItems: [{ Put: { TableName: "T" } }, { ConditionCheck: { TableName: "T" } }] }),
      ctx,
    );
    assert.deepEqual(tx?.accesses, [
      { action: "dynamodb:PutItem", resource: TABLE },
      { action: "dynamodb:ConditionCheckItem", resource: TABLE },
    ]);
    assert.equal(tx?.accessKeyId, "ASIA0X0001");
    const q = classify(
      "POST",
      new URL("http://p/"),
      { ...auth("dynamodb"), "x-amz-target": "DynamoDB_20120810.Query" },
      body({ TableName: "T", IndexName: "gsi1" }),
      ctx,
    );
    assert.deepEqual(q?.accesses, [{ action: "dynamodb:Query", resource: `${TABLE}/index/gsi1` }]);
    const send = classify(
      "POST",
      new URL("http://p/"),
      { ...auth("sqs"), "x-amz-target": "AmazonSQS.SendMessageBatch" },
      body({ QueueUrl: "http://q/000000000000/Q1" }),
      ctx,
    );
    assert.deepEqual(send?.accesses, [
      { action: "sqs:SendMessage", resource: "arn:aws:sqs:us-east-1:000000000000:Q1" },
    ]);
    const head = classify("HEAD", new URL("http://p/bucket/a/b.json"), auth("s3"), Buffer.alloc(0), ctx);
    assert.deepEqual(head?.accesses, [{ action: "s3:GetObject", resource: "arn:aws:s3:::bucket/a/b.json" }]);
  });

  it("allows what a statement grants (wildcards, Fn::Join'd index ARNs), denies the rest and honours Deny", () => {
    const scope: Scope = {
      region: "us-east-1",
      account: "000000000000",
      stackName: "S",
      resources: new Map([
        ["Table", { ref: "T", attributes: { Arn: TABLE } }],
        ["Role", { ref: "R", attributes: { Arn: "arn:aws:iam::000000000000:role/R" } }],
      ]),
    };
    const template = {
      Resources: {
        Role: { Type: "AWS::IAM::Role", Properties: {} },
        Policy: {
          Type: "AWS::IAM::Policy",
          Properties: {
            Roles: [{ Ref: "Role" }],
            PolicyDocument: {
              Statement: [
                {
                  Effect: "Allow",
                  Action: ["dynamodb:Get*", "dynamodb:Query"],
                  Resource: [
                    { "Fn::GetAtt": ["Table", "Arn"] },
                    { "Fn::Join": ["", [{ "Fn::GetAtt": ["Table", "Arn"] }, "/index/*"]] },
                  ],
                },
                { Effect: "Allow", Action: "s3:GetObject", Resource: "arn:aws:s3:::bucket/*" },
                { Effect: "Deny", Action: "s3:GetObject", Resource: "arn:aws:s3:::bucket/secret/*" },
              ],
            },
          },
        },
      },
    };
    const p: FunctionPolicy = rolePolicy(template, "Role", scope);
    assert.equal(authorize(p, "dynamodb:GetItem", TABLE).allowed, true);
    assert.equal(authorize(p, "dynamodb:Query", `${TABLE}/index/gsi1`).allowed, true);
    assert.equal(authorize(p, "dynamodb:PutItem", TABLE).allowed, false);
    assert.equal(
      authorize(p, "dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:000000000000:table/Other").allowed,
      false,
    );
    assert.equal(authorize(p, "s3:GetObject", "arn:aws:s3:::bucket/a").allowed, true);
    assert.equal(authorize(p, "s3:GetObject", "arn:aws:s3:::bucket/secret/a").allowed, false);
  });
});
