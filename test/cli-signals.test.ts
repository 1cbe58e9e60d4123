/**
 * `aloft signal`, `aloft callback` and `aloft resume` with durable waits, as a user runs them: a
 * signal or a callback's completion from another process reaches a running `aloft run`; a run
 * killed mid-sleep resumes and fires its timer late, never early.
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
    await statusUntil(cwd, bg.id, /aloft:signal\s+WAITING.*waiting: signal "approve"/);
    const sent = await aloft(["signal", bg.id()!, "approve", '{"ok":true}'], { cwd });
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stdout, /signal "approve" sent to run r-/);
    assert.equal(await bg.exited, 0, bg.err());
    assert.deepEqual(JSON.parse(bg.out()), { ok: true });
    const late = await aloft(["signal", bg.id()!, "approve", "1"], { cwd });
    assert.notEqual(late.code, 0);
    assert.match(late.stderr, /RunEndedError: run r-\S+ has ended \(SUCCEEDED\)/);
  });

  it("examples/approval.ts publishes when approved by aloft callback, rolls back when refused or on timeout; examples/agent.ts answers offline", async () => {
    const approval = join(ROOT, "examples/approval.ts");
    /** The result a run printed after the approval request line. */
    const resultOf = (out: string): { decision: unknown; outcome: string[] } =>
      JSON.parse(out.slice(out.indexOf("\n{") + 1)) as { decision: unknown; outcome: string[] };
    /** The callback id the run printed in its approval request. */
    const idIn = async (bg: ReturnType<typeof runInBackground>): Promise<string> => {
      for (let i = 0; i < 600 && !/aloft callback (cb\.\S+)/.test(bg.out()); i++) await pause(100);
      return /aloft callback (cb\.\S+)/.exec(bg.out())?.[1] ?? assert.fail(`no callback id in ${bg.out()}`);
    };
    const bg = runInBackground([approval, "release", '["eu","us"]', '"5m"'], cwd);
    const id = await idIn(bg);
    await statusUntil(
      cwd,
      bg.id,
      /aloft:callback\s+WAITING.*waiting: callback cb\.r-\S+… since \S+, times out at/,
    );
    const sent = await aloft(["callback", id, '{"approved":true,"by":"ana"}'], { cwd });
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stdout, /^callback cb\.r-\S+\.\S{6}… completed\n$/);
    assert.equal(await bg.exited, 0, bg.err());
    assert.deepEqual(resultOf(bg.out()).outcome, ["published eu", "published us"]);
    const again = await aloft(["callback", id, "1"], { cwd });
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /CallbackCompletedError: callback cb\.\S+ was already completed/);

    const refused = runInBackground([approval, "release", '["ap"]', '"5m"'], cwd);
    const failed = await aloft(["callback", await idIn(refused), "--fail", "not this week"], { cwd });
    assert.equal(failed.code, 0, failed.stderr);
    assert.equal(await refused.exited, 0, refused.err());
    assert.deepEqual(resultOf(refused.out()).decision, { approved: false, by: "refused: not this week" });

    const timedOut = await aloft(["run", "--memory", approval, "release", '["eu"]', '"1s"'], { cwd });
    assert.equal(timedOut.code, 0, timedOut.stderr);
    assert.deepEqual(resultOf(timedOut.stdout), {
      staged: ["staged eu"],
      decision: { approved: false, by: "nobody within 1s" },
      outcome: ["rolled back eu"],
    });
    const agent = await aloft(
      [
        "run",
        "--memory",
        join(ROOT, "examples/agent.ts"),
        "agent",
        '"What is 6 * 7, and how far is the moon?"',
      ],
      { cwd },
    );
    assert.equal(agent.code, 0, agent.stderr);
    assert.deepEqual(JSON.parse(agent.stdout), {
      answer: "From the tools: 6 * 7 = 42; moon distance: about 384,400 km.",
      rounds: 2,
    });
  });

  it("a run killed during a sleep resumes with aloft resume and fires late, never early", async () => {
    // Long enough that a loaded machine's first `aloft status` still finds it waiting.
    const bg = runInBackground([TASKS, "napper", '"10s"'], cwd);
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

  it("a callback completed while its run's process is down is delivered by aloft resume", async () => {
    const approval = join(ROOT, "examples/approval.ts");
    const bg = runInBackground([approval, "release", '["eu"]', '"1h"'], cwd);
    await statusUntil(cwd, bg.id, /aloft:callback\s+WAITING/);
    for (let i = 0; i < 600 && !/aloft callback (cb\.\S+)/.test(bg.out()); i++) await pause(100);
    const id = /aloft callback (cb\.\S+)/.exec(bg.out())![1]!;
    bg.p.kill("SIGKILL");
    await bg.exited;
    const sent = await aloft(["callback", id, '{"approved":true,"by":"ana"}'], { cwd });
    assert.equal(sent.code, 0, sent.stderr);
    const r = await aloft(["resume", bg.id()!], { cwd });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).decision, { approved: true, by: "ana" });
    const unknown = await aloft(["callback", `${id.slice(0, -4)}AAAA`, "1"], { cwd });
    assert.match(unknown.stderr, /RunEndedError: run r-\S+ has ended \(SUCCEEDED\)/);
  });
});
