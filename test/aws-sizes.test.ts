/**
 * Item and message sizes counted in UTF-8 bytes, as DynamoDB and SQS count them (issue 8, scenario
 * 9), and upgrades with runs in flight (scenario 11): an action of a removed task fails clearly.
 * The real handlers on DynamoDB Local + fauxqs, and each size guard at its boundary.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { SendMessageBatchRequestEntry } from "@aws-sdk/client-sqs";
import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import { startDevStack } from "../dev/stack.ts";
import type { DevStack } from "../dev/stack.ts";
import { INLINE_LIMIT, offload } from "../sdk/aws/payloads.ts";
import type { PayloadStore } from "../sdk/aws/payloads.ts";
import { runtime } from "../sdk/aws/runtime.ts";
import { SQS_BATCH_BYTES, batchesOf } from "../sdk/aws/transport/send.ts";
import {
  CALL_ARGS_INLINE,
  CHUNK_BYTES,
  decodeChunk,
  encodeChunk,
  inlineBytes,
  writeCalls,
} from "../sdk/aws/store/history.ts";
import { actionPk } from "../sdk/aws/store/table.ts";
import { fitsHosted } from "../sdk/aws/store/windows.ts";
import { CALL_NAMES_BYTES, callIdentity } from "../sdk/core/calls.ts";
import { emptyHistory } from "../sdk/core/history.ts";
import type { CallRecord } from "../sdk/core/history.ts";
import { replay } from "../sdk/core/replay.ts";
import { AloftClient } from "../sdk/aws/client.ts";
import { digest, serialize } from "../sdk/serde.ts";
import * as t from "./fixtures/size-tasks.ts";
import { addMiddleware } from "./helpers/aws-faults.ts";
import { itemBytes } from "./helpers/item-size.ts";
import { TERMINAL, flatten } from "./helpers/status.ts";
import { within } from "./helpers/within.ts";

/** DynamoDB's item size limit, in bytes. */
const ITEM_LIMIT = 400 * 1024;

const cjk = (n: number) => "中".repeat(n);
/** Exactly `bytes` bytes of UTF-8: 3-byte CJK characters (or 4-byte emoji), padded with ASCII. */
const wide = (bytes: number, ch = "中") => {
  const w = Buffer.byteLength(ch);
  return ch.repeat(Math.floor(bytes / w)) + "a".repeat(bytes % w);
};

function call(parent: string, i: number, args: string, over: Partial<CallRecord> = {}): CallRecord {
  const task = over.task ?? "sizes.measure";
  const group = over.group ?? "";
  const d = digest(args);
  return {
    v: 1,
    id: callIdentity(parent, task, group, d, i),
    parent,
    task,
    group,
    digest: d,
    n: i,
    args,
    idv: 1,
    ...over,
  };
}

describe("sizes in bytes: the guards at their boundaries", () => {
  it("call arguments stay inline up to CALL_ARGS_INLINE bytes as the chunk stores them", () => {
    // `["中…"]`: 4 bytes of brackets and escaped quotes (`[\"…\"]` inside the chunk's JSON), 3 per character.
    const at = `["${wide(CALL_ARGS_INLINE - 8)}"]`;
    assert.equal(inlineBytes(at), CALL_ARGS_INLINE);
    assert.ok(at.length < CALL_ARGS_INLINE / 2, "a unit count would see a third of it");
    assert.equal(inlineBytes(`["${wide(CALL_ARGS_INLINE - 7)}"]`), CALL_ARGS_INLINE + 1);
    // Quotes inside a string argument are escaped twice: 4 bytes each in the chunk.
    assert.equal(inlineBytes(JSON.stringify(['"'])), 2 + 8 + 2);
  });

  it("a chunk of 100 calls at the inline limit is under 400 KB; longer names are refused clearly", () => {
    const parent = "r-sizes/chunk";
    // Incompressible text at the limit: each row 3,000 bytes of arguments.
    const units = Math.floor((CALL_ARGS_INLINE - 8) / 3);
    const calls = Array.from({ length: 100 }, (_, i) =>
      call(parent, i, JSON.stringify([t.wideText(i, units)])),
    );
    for (const c of calls) assert.ok(inlineBytes(c.args) <= CALL_ARGS_INLINE + 4 * 2);
    const item = {
      pk: actionPk(parent),
      sk: "C#000001#00000",
      z: encodeChunk(parent, calls),
      expiresAt: 1e10,
    };
    assert.ok(itemBytes(item) <= ITEM_LIMIT, `chunk item ${itemBytes(item)} bytes`);
    assert.deepEqual(decodeChunk(item), calls);
    const long = calls.map((c, i) => call(parent, i, c.args, { group: t.wideText(1000 + i, 1500) }));
    assert.throws(() => encodeChunk(parent, long), {
      name: "ConfigurationError",
      message: new RegExp(`do not fit in a history item \\(\\d+ bytes compressed, at most ${CHUNK_BYTES}\\)`),
    });
  });

  it("a task name and group path over CALL_NAMES_BYTES fail the parent clearly, on every backend", async () => {
    // `"sizes.quick"` is 13 bytes and the group's quotes 2: the rest of the budget in CJK (and ASCII).
    const fits = wide(CALL_NAMES_BYTES - 15);
    const ok = await replay({
      task: t.inGroup.def,
      args: serialize([fits]),
      actionId: "r",
      history: emptyHistory(),
    });
    assert.equal(ok.kind, "suspended");
    assert.equal(ok.calls[0]!.group, fits);
    const over = await replay({
      task: t.inGroup.def,
      args: serialize([`${fits}a`]),
      actionId: "r",
      history: emptyHistory(),
    });
    assert.equal(over.kind, "failed");
    assert.equal(over.kind === "failed" && over.error.name, "ConfigurationError");
    assert.match(
      over.kind === "failed" ? over.error.message : "",
      new RegExp(`take ${CALL_NAMES_BYTES + 1} bytes; at most ${CALL_NAMES_BYTES} fit`),
    );
  });

  it("payloads (results, run arguments, cache values, traces) offload past their limit in bytes", async () => {
    const put: string[] = [];
    const store: PayloadStore = {
      put: async (_p, body) => (put.push(body), "s3://b/k"),
      get: async () => "",
    };
    const at = `"${wide(INLINE_LIMIT - 2)}"`;
    assert.equal(Buffer.byteLength(at), INLINE_LIMIT);
    assert.equal(await offload(store, "p", at), at);
    assert.equal(await offload(store, "p", `${at} `), "s3://b/k");
    const emoji = `"${wide(INLINE_LIMIT - 2, "😀")}"`;
    assert.equal(Buffer.byteLength(emoji), INLINE_LIMIT);
    assert.equal(await offload(store, "p", emoji), emoji);
    assert.equal(await offload(store, "p", `${emoji} `), "s3://b/k");
    assert.equal(put.length, 2);
  });

  it("SQS batches are bounded by bytes of UTF-8, not by ten entries or UTF-16 units", () => {
    // Ten messages of 60 KB (20,000 CJK characters each): four to a request at most.
    const big = Array.from({ length: 10 }, (_, i) => ({ body: `{"i":${i},"s":"${cjk(20_000)}"}` }));
    const batches = batchesOf(big);
    for (const b of batches) {
      assert.ok(b.length <= 10);
      const bytes = b.reduce((s, m) => s + Buffer.byteLength(m.body), 0);
      assert.ok(bytes <= SQS_BATCH_BYTES, `a batch of ${bytes} bytes`);
    }
    assert.deepEqual(batches.flat(), big, "every message once, in order");
    // At the boundary: two bodies filling SQS_BATCH_BYTES exactly share a request; one byte more does not.
    const a = { body: wide(SQS_BATCH_BYTES / 2) };
    assert.equal(batchesOf([a, a]).length, 1);
    assert.equal(batchesOf([a, { body: `${a.body}a` }]).length, 2);
    assert.equal(batchesOf(Array.from({ length: 11 }, () => ({ body: "{}" }))).length, 2);
    assert.throws(() => batchesOf([{ body: wide(SQS_BATCH_BYTES + 1) }]), /over the 262144 bytes/);
  });

  it("a hosted window's size counts its key in bytes", () => {
    const ascii = "k".repeat(60);
    const cjkKey = cjk(20); // the same 60 bytes
    for (const size of [100, 1_000, 100_000])
      for (let limit = 1; limit <= 64; limit++)
        assert.equal(
          fitsHosted(limit, size, cjkKey),
          fitsHosted(limit, size, ascii),
          `limit ${limit} of ${size}`,
        );
  });
});

describe("AWS handlers: wide arguments and removed tasks", { timeout: 170_000 }, () => {
  let dev: DevStack;
  let client: AloftClient;

  before(async () => {
    process.env["POWERTOOLS_LOG_LEVEL"] ??= "SILENT";
    dev = await startDevStack({ visibilityTimeoutSeconds: 5, maxReceiveCount: 3 });
    client = new AloftClient(dev.config);
  });
  after(async () => {
    client.destroy();
    await dev.stop();
  });

  it("a parent making 100 calls of ≈3,000 CJK characters and emoji each completes", async () => {
    // 2,990 UTF-16 units of text: arguments under 3,000 units (what the guard used to count) but
    // ≈9 KB of UTF-8 each, ≈640 KB deflated per chunk of 100.
    const units = 2_990;
    const r = await client.run(t.wideCalls, 100, units);
    const expected = Array.from(
      { length: 100 },
      (_, i) => i + Buffer.byteLength(t.wideText(i, units)),
    ).reduce((a, b) => a + b);
    assert.equal(await within(r.result(), 90_000, "wide calls"), expected);
    const s = await r.status();
    const nodes = flatten(s.root);
    assert.equal(nodes.length, 101);
    for (const n of nodes) assert.equal(n.status, "SUCCEEDED");
    // Every item of the parent's partition is under the limit by AWS's rules (the oracle).
    const items = await runtime().doc.send(
      new QueryCommand({
        TableName: dev.config.table,
        KeyConditionExpression: "pk = :pk",
        ExpressionAttributeValues: { ":pk": actionPk(s.root!.id) },
      }),
    );
    assert.ok(items.Items?.some((i) => String(i["sk"]).startsWith("C#")));
    for (const it of items.Items ?? [])
      assert.ok(itemBytes(it) < ITEM_LIMIT, `${String(it["sk"])}: ${itemBytes(it)}`);
  });

  it("writeCalls offloads arguments over the limit in bytes and keeps those at it inline", async () => {
    const parent = `r-sizes-${Date.now()}`;
    const at = `["${wide(CALL_ARGS_INLINE - 8)}"]`;
    const over = `["${wide(CALL_ARGS_INLINE - 7)}"]`;
    const stored = await writeCalls(
      runtime(),
      parent,
      parent,
      1,
      [call(parent, 0, at), call(parent, 1, over)],
      1e10,
    );
    assert.equal(stored[0]!.args, at);
    assert.match(stored[1]!.args, /^s3:\/\//);
  });

  /** Rewrites exec messages for `from` (resumes only, with `resumes`) to name `to`, a task no longer registered. */
  function renameInFlight(from: string, to: string, resumes = false): () => void {
    return addMiddleware(runtime().sqs, `rename-${from}`, async (args, next, command) => {
      if (command === "SendMessageBatchCommand") {
        const entries = args.input["Entries"] as SendMessageBatchRequestEntry[];
        args.input["Entries"] = entries.map((e) => {
          const m = JSON.parse(e.MessageBody!) as { k: string; task?: string; epoch?: number };
          if (m.k !== "exec" || m.task !== from || (resumes && !m.epoch)) return e;
          return { ...e, MessageBody: JSON.stringify({ ...m, task: to }) };
        });
      }
      return next(args);
    });
  }

  it("a child whose task was removed while its exec was in flight fails, saying so", async () => {
    const undo = renameInFlight(t.victim.taskName, "sizes_retired.victim");
    try {
      const r = await client.run(t.callsVictim);
      const out = String(await within(r.result(), 60_000, "removed child"));
      assert.match(
        out,
        /^TaskError: .*task "sizes_retired\.victim" is not registered in this deployment: it \(or its TaskEnvironment\) was removed or renamed while this run was in flight/,
      );
      assert.match(out, /Keep a task and its TaskEnvironment deployed until no run in flight uses them/);
    } finally {
      undo();
    }
  });

  it("a suspended parent whose task was removed fails at its resume and cancels its running children", async () => {
    const undo = renameInFlight(t.removedParent.taskName, "sizes_retired.parent", true);
    try {
      const r = await client.run(t.removedParent, 8_000);
      await assert.rejects(within(r.result(), 60_000, "removed parent"), (e: Error) => {
        assert.match(e.message, /task "sizes_retired\.parent" is not registered in this deployment/);
        return true;
      });
      // The slow child is cancelled by its parent's end, not left running to finish on its own.
      let s = await r.status();
      for (let i = 0; i < 40 && flatten(s.root).some((n) => !TERMINAL.has(n.status)); i++) {
        await new Promise((res) => setTimeout(res, 250));
        s = await r.status();
      }
      assert.equal(s.state, "FAILED");
      const byTask = new Map(flatten(s.root).map((n) => [n.task, n.status]));
      assert.equal(byTask.get(t.quick.taskName), "SUCCEEDED");
      assert.equal(byTask.get(t.slow.taskName), "CANCELLED");
    } finally {
      undo();
    }
  });
});
