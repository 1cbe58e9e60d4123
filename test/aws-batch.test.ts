/**
 * batchPut's check before each request (sdk/aws/store/io.ts), on a stand-in for the DynamoDB
 * client that leaves a request's items unprocessed: DynamoDB Local never does. What the check
 * guards, a replay's lease over its epoch's call chunks, is tested end to end in
 * test/aws-liveness.test.ts.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { batchPut } from "../sdk/aws/store/io.ts";
import type { Runtime } from "../sdk/aws/runtime.ts";

/** A client whose first `unprocessed` BatchWrite requests leave every item unprocessed. */
function client(unprocessed: number) {
  const sent: number[] = [];
  const rt = {
    config: { table: "t" },
    doc: {
      send: async (cmd: { input: { RequestItems: Record<string, unknown[]> } }) => {
        const req = cmd.input.RequestItems["t"]!;
        sent.push(req.length);
        return sent.length <= unprocessed ? { UnprocessedItems: { t: req } } : {};
      },
    },
  } as unknown as Runtime;
  return { rt, sent };
}

const items = (n: number) => Array.from({ length: n }, (_, i) => ({ pk: "A#x", sk: `C#${i}` }));

describe("batchPut", () => {
  it("checks before every request, the retries of unprocessed items included", async () => {
    const { rt, sent } = client(2);
    let checks = 0;
    await batchPut(rt, items(30), async () => void checks++);
    assert.deepEqual(sent, [25, 25, 25, 5]);
    assert.equal(checks, 4);
  });

  it("sends nothing more once a check throws: a retry after the lease was lost is not made", async () => {
    const { rt, sent } = client(1);
    let checks = 0;
    await assert.rejects(
      batchPut(rt, items(10), async () => {
        if (++checks > 1) throw new Error("lease lost");
      }),
      /lease lost/,
    );
    assert.deepEqual(sent, [10]);
  });
});
