/** The real `aloft` command, run as a user would. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ROOT, aloft } from "./helpers/cli.ts";

const TASKS = join(ROOT, "test/fixtures/cli-tasks.ts");
const PIPELINE = join(ROOT, "examples/parallel-pipeline.ts");

describe("aloft CLI", () => {
  let cwd: string;
  before(() => {
    cwd = mkdtempSync(join(tmpdir(), "aloft-cli-"));
  });
  after(() => rmSync(cwd, { recursive: true, force: true }));

  it("run prints the result as JSON and exits 0; runs, status and result read it back", async () => {
    const r = await aloft(["run", PIPELINE, "parallelPipeline", '["a","b","c"]'], { cwd });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), [
      "Processed chunk 0: a",
      "Processed chunk 1: b",
      "Processed chunk 2: c",
    ]);
    const id = /run (r-[\w-]+)/.exec(r.stderr)?.[1];
    assert.ok(id, `run id in: ${r.stderr}`);

    const runs = await aloft(["runs"], { cwd });
    assert.match(runs.stdout, new RegExp(`${id}\\s+SUCCEEDED .*data_pipeline\\.parallelPipeline`));

    const status = await aloft(["status", id.slice(0, 8)], { cwd });
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /data_pipeline\.parallelPipeline\s+SUCCEEDED/);
    assert.equal((status.stdout.match(/data_pipeline\.processChunk\s+SUCCEEDED/g) ?? []).length, 3);

    const json = await aloft(["status", id, "--json"], { cwd });
    assert.equal(JSON.parse(json.stdout).root.children.length, 3);

    const result = await aloft(["result", id], { cwd });
    assert.deepEqual(JSON.parse(result.stdout), JSON.parse(r.stdout));
  });

  it("a failing run prints the task, the error and where, and exits 1", async () => {
    const r = await aloft(["run", TASKS, "failingParent"], { cwd });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /run failed in task cli\.failingParent/);
    assert.match(r.stderr, /cli\.explode/);
    assert.match(r.stderr, /the child went wrong/);
    assert.match(r.stderr, /where: at /);
  });

  it("bad input gets a precise error and exit code 2", async () => {
    const unknownTask = await aloft(["run", TASKS, "nope"], { cwd });
    assert.equal(unknownTask.code, 2);
    assert.match(unknownTask.stderr, /unknown task "nope"; registered: .*cli\.add/);

    const unknownModule = await aloft(["run", "no-such-file.ts", "x"], { cwd });
    assert.equal(unknownModule.code, 2);
    assert.match(unknownModule.stderr, /module no-such-file\.ts not found/);

    const badJson = await aloft(["run", TASKS, "add", "1", "{oops"], { cwd });
    assert.equal(badJson.code, 2);
    assert.match(badJson.stderr, /argument 2 is not valid JSON/);

    const unknownRun = await aloft(["status", "r-nonexistent"], { cwd });
    assert.equal(unknownRun.code, 2);
    assert.match(unknownRun.stderr, /no run r-nonexistent/);
  });

  it("--help works on every command", async () => {
    for (const cmd of [[], ["run"], ["status"], ["runs"], ["cancel"], ["resume"], ["result"]]) {
      const r = await aloft([...cmd, "--help"], { cwd });
      assert.equal(r.code, 0, `${cmd.join(" ")}: ${r.stderr}`);
      assert.match(r.stdout, /Usage: aloft/);
    }
  });

  it("cancel of a finished run says so", async () => {
    const r = await aloft(["run", TASKS, "add", "2", "3"], { cwd });
    assert.equal(r.stdout.trim(), "5");
    const id = /run (r-[\w-]+)/.exec(r.stderr)![1]!;
    const c = await aloft(["cancel", id], { cwd });
    assert.match(c.stdout, /already ended SUCCEEDED/);
  });
});
