/**
 * `aloft recover` as a user runs it (examples/repair.ts, the README's tour): a failed fan-out is
 * recovered after the fix; the new run reuses what succeeded and says so in `aloft status` and
 * `aloft runs`; a run that did not fail is refused with why.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { writeFileSync } from "node:fs";
import { ROOT, aloft, startDev, stopDev } from "./helpers/cli.ts";
import type { DevProcess } from "./helpers/cli.ts";

const EXAMPLE = join(ROOT, "examples/repair.ts");

describe("aloft recover", () => {
  let cwd: string;
  before(() => (cwd = mkdtempSync(join(tmpdir(), "aloft-cli-recover-"))));
  after(() => rmSync(cwd, { recursive: true, force: true }));

  it("recovers a failed run: prints the new run and its result, reusing the 19 children that succeeded", async () => {
    const first = await aloft(["run", "--workers", "0", EXAMPLE, "scoreAll", "20"], { cwd });
    assert.equal(first.code, 1, first.stderr);
    assert.match(first.stderr, /1 of 20 records failed: 13/);
    const src = /run (r-[\w-]+)/.exec(first.stderr)![1]!;

    const rec = await aloft(["recover", "--workers", "0", src.slice(0, 8)], { cwd, env: { BUG_FIXED: "1" } });
    assert.equal(rec.code, 0, rec.stderr);
    const id = new RegExp(`run (r-[\\w-]+) \\(repair.scoreAll\\) recovers ${src}`).exec(rec.stderr)?.[1];
    assert.ok(id, rec.stderr);
    assert.equal(JSON.parse(rec.stdout), 380);

    const status = await aloft(["status", id], { cwd });
    assert.match(status.stdout, new RegExp(`recovered from ${src}`));
    assert.match(status.stdout, /20 call\(s\)|20 succeeded/);
    assert.match(status.stdout, /19 reused/);
    assert.match((await aloft(["status", src], { cwd })).stdout, new RegExp(`recovered by ${id}`));
    assert.match((await aloft(["runs"], { cwd })).stdout, new RegExp(`${id} .*\\(recovers ${src}\\)`));

    const again = await aloft(["recover", id], { cwd });
    assert.equal(again.code, 2);
    assert.match(again.stderr, /cannot be recovered: it succeeded/);
  });
});

describe("aloft recover --aws under aloft dev", () => {
  let cwd: string;
  let dev: DevProcess | undefined;
  before(() => (cwd = mkdtempSync(join(tmpdir(), "aloft-cli-recover-aws-"))));
  after(async () => {
    await stopDev(dev);
    rmSync(cwd, { recursive: true, force: true });
  });

  it("recovers a failed run of the AWS handlers; only the failed path runs again", async () => {
    const tasks = join(ROOT, "test/semantics/tasks-recover.ts");
    const env = { ALOFT_TEST_DIR: cwd, POWERTOOLS_LOG_LEVEL: "SILENT" };
    dev = await startDev(cwd, [tasks], env);
    const exports = dev.exports;
    writeFileSync(join(cwd, "fail-k-4.flag"), "");
    const first = await aloft(["run", "--aws", tasks, "tree", '"k"'], { cwd, env: { ...exports, ...env } });
    assert.equal(first.code, 1, first.stderr);
    assert.match(first.stderr, /1 branch\(es\) failed/);
    const src = /run (r-[\w-]+)/.exec(first.stderr)![1]!;
    rmSync(join(cwd, "fail-k-4.flag"));
    const rec = await aloft(["recover", "--aws", src], { cwd, env: { ...exports, ...env } });
    assert.equal(rec.code, 0, rec.stderr);
    assert.deepEqual(JSON.parse(rec.stdout), [30, 120, 210]);
    const id = new RegExp(`run (r-[\\w-]+) recovers ${src}`).exec(rec.stderr)?.[1];
    assert.ok(id, rec.stderr);
    const status = await aloft(["status", "--aws", id], { cwd, env: exports });
    assert.match(status.stdout, new RegExp(`recovered from ${src}`));
    assert.match(status.stdout, /reused from/);
    const refused = await aloft(["recover", "--aws", id], { cwd, env: exports });
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /cannot be recovered: it succeeded/);
  });
});
