/**
 * `aloft callback --aws` as a user runs it against the AWS handlers (`aloft dev`): the approval
 * example hands its callback id out in a log line, `aloft logs --aws` shows it, `aloft callback
 * --aws` completes it, and the run publishes; a second completion is refused.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as pause } from "node:timers/promises";
import { BIN, ROOT, aloft, startDev, stopDev } from "./helpers/cli.ts";
import type { DevProcess } from "./helpers/cli.ts";

describe("aloft callback --aws under aloft dev", () => {
  let cwd: string;
  let dev: DevProcess | undefined;
  before(() => (cwd = mkdtempSync(join(tmpdir(), "aloft-cli-callback-aws-"))));
  after(async () => {
    await stopDev(dev);
    rmSync(cwd, { recursive: true, force: true });
  });

  it("completes the approval example's callback on the AWS handlers; a second completion is refused", async () => {
    const approval = join(ROOT, "examples/approval.ts");
    dev = await startDev(cwd, [approval]);
    const env = dev.exports;
    const run = spawn(process.execPath, [BIN, "run", "--aws", approval, "release", '["eu"]', '"5m"'], {
      cwd,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    run.stdout.on("data", (d: Buffer) => (out += d.toString()));
    run.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => run.on("close", (code) => r(code)));
    let id: string | undefined;
    for (let i = 0; i < 600 && !id; i++) {
      const runId = /run (r-[\w-]+)/.exec(err)?.[1];
      if (runId) {
        const logs = await aloft(["logs", runId, "--aws"], { cwd, env });
        id = /aloft callback (cb\.\S+)/.exec(logs.stdout)?.[1];
      }
      if (!id) await pause(200);
    }
    assert.ok(id, `no callback id in the run's logs; run said: ${err}`);
    const sent = await aloft(["callback", id, '{"approved":true,"by":"ana"}', "--aws"], { cwd, env });
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stdout, /completed/);
    assert.equal(await exited, 0, err);
    assert.deepEqual((JSON.parse(out) as { outcome: string[] }).outcome, ["published eu"]);
    const again = await aloft(["callback", id, "1", "--aws"], { cwd, env });
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /CallbackCompletedError: callback cb\.\S+ was already completed/);
  });
});
