/**
 * `aloft ui --aws` reads a large group a page at a time (issue 13): on DynamoDB Local, a run of
 * 1,200 children. A page of 50 reads a few call chunks and those 50 results, never the group;
 * pages follow cursors through every child once, in call order; a state filter finds the failed
 * child, also when the page reaches its limit of chunks and continues from its cursor; the counts
 * come from one walk, kept once the run has ended. A sleep and a signal wait in flight read
 * WAITING, with what they wait for.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startDevStack } from "../dev/stack.ts";
import type { DevStack } from "../dev/stack.ts";
import { AloftClient } from "../sdk/aws/client.ts";
import { AwsSource } from "../sdk/cli/ui/aws-source.ts";
import { CHUNK_CALLS } from "../sdk/aws/store/table.ts";
import { childrenPage } from "../sdk/aws/status.ts";
import { fanOut, waits } from "./fixtures/ui-tasks.ts";
import { sleep, within } from "./helpers/within.ts";

const CHILDREN = 1200;

describe("aloft ui --aws pages a group server-side", { timeout: 600_000 }, () => {
  let dev: DevStack;
  let source: AwsSource;
  let runId: string;
  let testDir: string;
  /** Items the source's DynamoDB reads returned, by kind: call chunks, child results, others. */
  const read = { chunks: 0, results: 0, other: 0 };

  before(async () => {
    process.env["POWERTOOLS_LOG_LEVEL"] ??= "SILENT";
    testDir = mkdtempSync(join(tmpdir(), "aloft-ui-aws-"));
    process.env["ALOFT_TEST_DIR"] = testDir; // the retried child's marker file
    dev = await startDevStack({ environments: ["ui"] });
    const runner = new AloftClient(dev.config);
    const run = await runner.run(fanOut, CHILDREN);
    runId = run.id;
    await within(run.result(), 480_000, "fanOut");
    runner.destroy();
    const client = new AloftClient(dev.config);
    const send = client.rt.doc.send.bind(client.rt.doc);
    client.rt.doc.send = (async (command: unknown) => {
      const out = (await send(command as never)) as {
        Items?: Record<string, unknown>[];
        Item?: Record<string, unknown>;
        Responses?: Record<string, Record<string, unknown>[]>;
      };
      const items = [...(out.Items ?? []), ...(out.Item ? [out.Item] : [])];
      for (const list of Object.values(out.Responses ?? {})) items.push(...list);
      for (const it of items) {
        const pk = String(it["pk"]);
        if (pk.startsWith("O#")) read.results++;
        else if (String(it["sk"]).startsWith("C#")) read.chunks++;
        else read.other++;
      }
      return out;
    }) as typeof client.rt.doc.send;
    source = new AwsSource(client);
  });
  after(async () => {
    source?.close();
    await dev?.stop();
    rmSync(testDir, { recursive: true, force: true });
  });

  const reset = () => Object.assign(read, { chunks: 0, results: 0, other: 0 });

  it("counts the group by state from one walk, kept once the run has ended", async () => {
    const groups = await source.children(runId, runId);
    const squares = groups.find((g) => g.group === "squares");
    assert.deepEqual(
      { total: squares?.total, byStatus: squares?.byStatus, inline: squares?.items },
      { total: CHILDREN, byStatus: { SUCCEEDED: CHILDREN - 1, FAILED: 1 }, inline: undefined },
    );
    assert.equal(groups.find((g) => g.group === "")?.items?.[0]?.task, "ui.flaky");
    reset();
    await source.children(runId, runId);
    await source.run(runId);
    // Only the run item is read again (its recoveries may grow after it ended).
    assert.deepEqual(read, { chunks: 0, results: 0, other: 1 }, "an ended run's walk is kept");
    // A walk the request makes reads the run item once, and the view takes it from there.
    const client = source["client"];
    const getRun = client.getRun.bind(client);
    let runReads = 0;
    client.getRun = (id: string) => (runReads++, getRun(id));
    try {
      source["walks"].delete(runId);
      assert.equal((await source.run(runId))?.run.id, runId);
      assert.equal(runReads, 1, "a new walk's run item is reused");
      await source.run(runId);
      assert.equal(runReads, 2, "a kept walk's run item is read again");
    } finally {
      client.getRun = getRun;
    }
  });

  it("pages through every child once, in call order, reading a few chunks and one page of results", async () => {
    const status = await source["client"].attach(runId).status();
    const order = status.root!.children.filter((c) => c.group === "squares").map((c) => c.id);
    assert.equal(order.length, CHILDREN);
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    do {
      reset();
      const p = await source.page(runId, runId, "squares", { limit: 50, ...(after ? { after } : {}) });
      pages++;
      // The chunk the cursor points into, and at most one Query's worth after it.
      assert.ok(read.chunks <= 6, `page ${pages} read ${read.chunks} chunks`);
      assert.ok(read.results <= 50, `page ${pages} read ${read.results} results`);
      seen.push(...p.items.map((i) => i.id));
      after = p.next;
    } while (after);
    assert.equal(pages, CHILDREN / 50);
    assert.deepEqual(seen, order);
    assert.ok(CHILDREN / CHUNK_CALLS > 6, "the group spans more chunks than a page reads");
  });

  it("filters a page by state, and opens the failed child's error by its id alone", async () => {
    const failed = await source.page(runId, runId, "squares", { status: "FAILED", limit: 50 });
    assert.equal(failed.items.length, 1);
    assert.equal(failed.next, undefined);
    const [child] = failed.items;
    assert.equal(child!.status, "FAILED");
    reset();
    const d = await source.action(runId, child!.id);
    assert.equal(d?.error?.message, "square 13 is unlucky");
    assert.equal(d?.inputs.replace(/\s/g, ""), "[13]");
    assert.ok(read.results <= 1, `the detail read ${read.results} results`);
  });

  it("continues a filtered page that reached its chunk limit from its cursor", async () => {
    const rt = source["client"].rt;
    const scanChunks = 3;
    assert.ok(CHILDREN / CHUNK_CALLS > 2 * scanChunks, "the group spans more chunks than two pages scan");
    const follow = async (status: string, limit: number) => {
      const seen: string[] = [];
      const cursors: (string | undefined)[] = [];
      let after: string | undefined;
      do {
        const p = await childrenPage(rt, runId, runId, "squares", {
          match: (n) => n.status === status,
          after,
          limit,
          now: Date.now(),
          scanChunks,
        });
        seen.push(...p.nodes.map(({ node }) => node.id));
        cursors.push((after = p.next));
      } while (after);
      return { seen, cursors };
    };
    const failed = await follow("FAILED", 50);
    assert.ok(failed.cursors[0], "the first page stops after its chunks, with a cursor");
    assert.ok(failed.cursors.length > 2, `${failed.cursors.length} pages`);
    assert.equal(failed.seen.length, 1);
    const d = await source.action(runId, failed.seen[0]!);
    assert.equal(d?.error?.message, "square 13 is unlucky");
    // Every page stops at its chunk limit, not its size: the cursors go through each chunk once.
    const status = await source["client"].attach(runId).status();
    const order = status.root!.children.filter((c) => c.group === "squares").map((c) => c.id);
    const succeeded = await follow("SUCCEEDED", CHILDREN);
    assert.ok(succeeded.cursors.length > 2, `${succeeded.cursors.length} pages`);
    assert.deepEqual(
      succeeded.seen,
      order.filter((id) => id !== failed.seen[0]),
    );
  });

  it("shows a sleep and a signal wait in flight as WAITING, with what they wait for", async () => {
    const runner = new AloftClient(dev.config);
    try {
      const run = await runner.run(waits, 3);
      let items: { task: string; status: string; waiting?: string }[] = [];
      for (let i = 0; i < 600 && items.length < 2; i++) {
        const groups = await source.children(run.id, run.id);
        items = (groups.find((g) => g.group === "")?.items ?? []).filter((c) => c.status === "WAITING");
        if (items.length < 2) await sleep(250);
      }
      assert.deepEqual(items.map((c) => [c.task, c.waiting?.replace(/\d{4}-\S+/, "<time>")]).sort(), [
        ["aloft:signal", 'signal "go"'],
        ["aloft:sleep", "timer fires at <time>"],
      ]);
      assert.equal((await source.run(run.id))?.byStatus["WAITING"], 2);
      const page = await source.page(run.id, run.id, "", { status: "WAITING", limit: 50 });
      assert.equal(page.items.length, 2);
      await source.cancel(run.id);
    } finally {
      runner.destroy();
    }
  });
});
