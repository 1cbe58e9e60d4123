/**
 * `aloft signal` and `aloft resume` with durable waits, as a user runs them: a signal from another
 * process reaches a running `aloft run`; a run killed mid-sleep resumes and fires its timer late,
 * never early.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as pause } from "node:timers/promises";
import { BIN, ROOT, aloft } from "./helpers/cli.ts";

const TASKS = join(ROOT, "test/semantics/tasks-waits.ts");

/** `aloft run ...` in the background: its run id once printed, its exit, its output. */
function runInBackground(args: string[], cwd: string) {
  const p = spawn(process.execPath, [BIN, "run", "--workers", "0", ...args], {
    cwd,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => p.on("close", (code) => r(code)));
  return { p, exited, id: () => /run (r-[\w-]+)/.exec(stderr)?.[1], out: () => stdout, err: () => stderr };
}

async function statusUntil(cwd: string, id: () => string | undefined, re: RegExp): Promise<string> {
  for (let i = 0; i < 600; i++) {
    const run = id();
    if (run) {
      const s = await aloft(["status", run], { cwd });
      if (re.test(s.stdout)) return s.stdout;
    }
    await pause(100);
  }
  return assert.fail(`status never matched ${re}`);
}

describe("aloft signal and resume with durable waits", () => {
  let cwd: string;
  before(() => (cwd = mkdtempSync(join(tmpdir(), "aloft-cli-waits-"))));
  after(() => rmSync(cwd, { recursive: true, force: true }));

  it("aloft signal from another process reaches the running engine; an ended run refuses it", async () => {
    const bg = runInBackground([TASKS, "waitOnce", '"approve"'], cwd);
    await statusUntil(cwd, bg.id, /aloft:signal\s+QUEUED.*waiting: signal "approve"/);
    const sent = await aloft(["signal", bg.id()!, "approve", '{"ok":true}'], { cwd });
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stdout, /signal "approve" sent to run r-/);
    assert.equal(await bg.exited, 0, bg.err());
    assert.deepEqual(JSON.parse(bg.out()), { ok: true });
    const late = await aloft(["signal", bg.id()!, "approve", "1"], { cwd });
    assert.notEqual(late.code, 0);
    assert.match(late.stderr, /RunEndedError: run r-\S+ has ended \(SUCCEEDED\)/);
  });

  it("a run killed during a sleep resumes with aloft resume and fires late, never early", async () => {
    const bg = runInBackground([TASKS, "napper", '"3s"'], cwd);
    const shown = await statusUntil(cwd, bg.id, /waiting: timer fires at (\S+)/);
    const firesAt = Date.parse(/timer fires at (\S+)/.exec(shown)![1]!);
    bg.p.kill("SIGKILL");
    await bg.exited;
    const r = await aloft(["resume", bg.id()!], { cwd });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout), "rested");
    const s = JSON.parse((await aloft(["status", bg.id()!, "--json"], { cwd })).stdout) as {
      root: { children: { task: string; status: string; endedAt: number }[] };
    };
    const timer = s.root.children.find((c) => c.task === "aloft:sleep")!;
    assert.equal(timer.status, "SUCCEEDED");
    assert.ok(timer.endedAt >= firesAt, `fired at ${timer.endedAt}, due ${firesAt}: never early`);
  });
});
