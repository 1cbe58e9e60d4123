/**
 * Task bodies' console output, per action and attempt (issue 13):
 * - embedded: `aloft run` then `aloft logs` (bodies on worker threads and on the engine's thread),
 *   a parent's replays kept once, attempts apart, one action's lines, the bound, `--follow`;
 * - AWS: the executor's structured Powertools line and how `aloft logs --aws` reads it back;
 *   CloudWatch Logs only through a fake endpoint (no local CloudWatch exists here), so that test
 *   checks the request Aloft makes and its paging, not CloudWatch's filter semantics;
 * - `aloft dev`: the handlers' lines in the dev stack's file, read by `aloft logs --aws`;
 * - `aloft dev --cdk-out` (the deployed shape): the executor sandboxes' Powertools lines in their
 *   output files, read by `aloft logs --aws` and shown by `aloft ui --aws`.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Logger } from "@aws-lambda-powertools/logger";
import { ROOT, BIN, aloft, startDev, stopDev } from "./helpers/cli.ts";
import type { DevProcess } from "./helpers/cli.ts";
import { synth } from "../dev/deployed/synth.ts";
import { replayLogged } from "../lambdas/exec/task-logs.ts";
import { dedupeTaskLogs, parseTaskLog } from "../sdk/aws/task-log.ts";
import { readCloudWatchTaskLogs } from "../sdk/aws/cloudwatch-logs.ts";
import { emptyHistory } from "../sdk/core/history.ts";
import { serializeArgs } from "../sdk/core/calls.ts";
import { findTask } from "../sdk/registry.ts";
import type { Runtime } from "../sdk/aws/runtime.ts";
import type { ExecMessage } from "../sdk/aws/messages.ts";
import { LOG_LINES_PER_ATTEMPT } from "../sdk/log-capture.ts";
import "./fixtures/ui-tasks.ts";

const TASKS = join(ROOT, "test/fixtures/ui-tasks.ts");

interface StatusNode {
  id: string;
  task: string;
  attempts: number;
  children: StatusNode[];
}

function runIdOf(stderr: string): string {
  const id = /run (r-[\w-]+)/.exec(stderr)?.[1];
  assert.ok(id, `run id in: ${stderr}`);
  return id;
}

describe("aloft logs, embedded", () => {
  let cwd: string;
  let env: Record<string, string>;
  before(() => {
    cwd = mkdtempSync(join(tmpdir(), "aloft-logs-"));
    env = { ALOFT_TEST_DIR: cwd };
  });
  after(() => rmSync(cwd, { recursive: true, force: true }));

  it("keeps each action's lines once, attempts apart, from worker threads and the engine's thread", async () => {
    const r = await aloft(["run", TASKS, "fanOut", "30"], { cwd, env });
    assert.equal(r.code, 0, r.stderr);
    const id = runIdOf(r.stderr);
    const logs = await aloft(["logs", id], { cwd });
    assert.equal(logs.code, 0, logs.stderr);
    const lines = logs.stdout.trim().split("\n");
    // The parent printed this in each of its replays; it is kept once.
    assert.equal(lines.filter((l) => l.includes("fanning out over 30 items")).length, 1);
    assert.equal(lines.filter((l) => /ui\.square \S+ {2}log {4}squaring \d+$/.test(l)).length, 30);
    assert.match(logs.stdout, /ui\.square \S+ {2}error {2}about to fail on 13/);
    assert.match(logs.stdout, /ui\.flaky \S+ {2}warn {3}first attempt: failing on purpose/);
    assert.match(logs.stdout, /ui\.flaky \S+ #2 {2}info {3}second attempt: fine/);
    assert.match(lines.at(-1)!, /ui\.fanOut .*done: 29 squares, 1 failed, flaky recovered/);
    assert.equal(lines.length, 1 + 30 + 1 + 2 + 1);

    // One action's lines, by a prefix of its id.
    const status = JSON.parse((await aloft(["status", id, "--json"], { cwd })).stdout) as {
      root: StatusNode;
    };
    const flaky = status.root.children.find((c) => c.task === "ui.flaky")!;
    assert.equal(flaky.attempts, 2);
    const only = await aloft(["logs", id, flaky.id.slice(0, 10)], { cwd });
    // An id may begin with "-" (base64url): it is still the action, not an option.
    const dashed = await aloft(["logs", id, "-xK68SlIPf"], { cwd });
    assert.match(dashed.stderr, /-xK68SlIPf/);
    assert.doesNotMatch(dashed.stderr, /unknown option/);
    assert.equal(only.code, 0, only.stderr);
    assert.deepEqual(
      only.stdout
        .trim()
        .split("\n")
        .map((l) => l.replace(/^\S+ {2}/, "")),
      [
        `ui.flaky ${flaky.id.slice(0, 8)}  warn   first attempt: failing on purpose`,
        `ui.flaky ${flaky.id.slice(0, 8)} #2  info   second attempt: fine`,
      ],
    );
  });

  it("keeps at most the bound of lines per attempt, and says how many it dropped", async () => {
    const r = await aloft(["run", TASKS, "chatty", "1500"], { cwd, env });
    assert.equal(r.code, 0, r.stderr);
    const id = runIdOf(r.stderr);
    const lines = (await aloft(["logs", id], { cwd })).stdout.trim().split("\n");
    assert.equal(lines.length, LOG_LINES_PER_ATTEMPT + 1);
    assert.match(lines[LOG_LINES_PER_ATTEMPT - 1]!, /line 999$/);
    assert.match(lines.at(-1)!, /warn {3}\[aloft\] 500 more line\(s\) not kept: at most 1000 lines/);
  });

  it("--follow prints lines as they come and returns when the run ends", async () => {
    const run = spawn(process.execPath, [BIN, "run", TASKS, "gatedFanOut", "2", "--json"], {
      cwd,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const runExit = new Promise((r) => run.once("exit", r));
    let runErr = "";
    run.stderr.on("data", (d: Buffer) => (runErr += d.toString()));
    // The run's id, from the store (its "run <id>" line is not printed with --json).
    let id: string | undefined;
    while (!id) {
      const runs = await aloft(["runs", "-n", "1"], { cwd });
      id = /^(r-\S+)\s+RUNNING\s.*ui\.gatedFanOut/.exec(runs.stdout)?.[1];
      if (!id) await new Promise((r) => setTimeout(r, 200));
    }
    const follow = spawn(process.execPath, [BIN, "logs", id, "--follow"], {
      cwd,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    const followExit = new Promise<number | null>((r) => follow.once("exit", r));
    await new Promise<void>((resolve) => {
      follow.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("gated 0 waiting") && out.includes("gated 1 waiting")) resolve();
      });
    });
    // Both lines printed while the run is still waiting: open the gate; follow returns at the end.
    writeFileSync(join(cwd, "gate"), "");
    assert.equal(await followExit, 0);
    await runExit;
    assert.equal(run.exitCode, 0, runErr);
  });
});

describe("task logs on AWS", () => {
  it("the executor logs each line as a structured Powertools line; the reader keeps each line once", async () => {
    const printed: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    const rt = {
      now: () => 1_700_000_000_000,
      log: new Logger({ serviceName: "aloft", logLevel: "INFO" }),
    } as unknown as Runtime;
    const m = { run: "r-1", id: "a-1", task: "ui.flaky", attempt: 3 } as ExecMessage;
    const def = findTask("ui.chatty")!;
    process.stdout.write = ((chunk: string | Uint8Array) => {
      printed.push(String(chunk));
      return true;
    }) as typeof process.stdout.write;
    try {
      // Twice, as a replay prints again what the replay before it printed.
      for (let i = 0; i < 2; i++) {
        const d = await replayLogged(rt, m, {
          task: def,
          args: serializeArgs(def.name, [2]),
          actionId: m.id,
          history: emptyHistory(),
        });
        assert.equal(d.kind, "completed");
      }
    } finally {
      process.stdout.write = write;
    }
    const records = printed.map((l) => parseTaskLog(l)).filter((r) => r !== undefined);
    assert.equal(records.length, 4);
    const json = JSON.parse(printed[0]!) as Record<string, unknown>;
    assert.equal(json["level"], "INFO");
    assert.equal(json["service"], "aloft");
    assert.deepEqual(
      dedupeTaskLogs(records).map((r) => [r.run, r.action, r.task, r.attempt, r.seq, r.level, r.message]),
      [
        ["r-1", "a-1", "ui.flaky", 3, 0, "info", "line 0"],
        ["r-1", "a-1", "ui.flaky", 3, 1, "info", "line 1"],
      ],
    );
  });

  it("reads CloudWatch Logs with FilterLogEvents by run id, every page, every log group (a fake endpoint)", async () => {
    const requests: { target: string; body: Record<string, unknown> }[] = [];
    const line = (seq: number, group: string) =>
      JSON.stringify({
        level: "INFO",
        message: `from ${group} ${seq}`,
        timestamp: new Date(1_700_000_000_000 + seq).toISOString(),
        service: "aloft",
        source: "task",
        run: "r-9",
        action: `a-${group}`,
        task: "t.x",
        attempt: 1,
        seq,
      });
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("end", () => {
        const b = JSON.parse(body) as Record<string, unknown>;
        requests.push({ target: String(req.headers["x-amz-target"]), body: b });
        const group = String(b["logGroupName"]);
        const page = b["nextToken"] ? 2 : 1;
        const events = [{ message: line(page, group), timestamp: 1_700_000_000_000 + page }];
        res.setHeader("content-type", "application/x-amz-json-1.1");
        res.end(JSON.stringify({ events, ...(page === 1 ? { nextToken: `${group}-2` } : {}) }));
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const saved = { ...process.env };
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_CLOUDWATCH_LOGS: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      AWS_ACCESS_KEY_ID: "test",
      AWS_SECRET_ACCESS_KEY: "test",
      AWS_REGION: "us-east-1",
    });
    try {
      const records = await readCloudWatchTaskLogs({ logGroups: ["g1", "g2"], run: "r-9", startTime: 5 });
      assert.deepEqual(
        records.map((r) => r.message),
        ["from g1 1", "from g1 2", "from g2 1", "from g2 2"],
      );
      assert.equal(requests.length, 4);
      assert.ok(requests.every((r) => r.target === "Logs_20140328.FilterLogEvents"));
      assert.deepEqual(requests[1]!.body, {
        logGroupName: "g1",
        filterPattern: '{ ($.source = "task") && ($.run = "r-9") }',
        startTime: 5,
        nextToken: "g1-2",
      });
    } finally {
      process.env = saved;
      server.close();
    }
  });
});

type Child = ReturnType<typeof spawn>;

/** Starts `aloft ui --aws` against the stack `env` names; resolves with it and its address. */
async function startAwsUi(cwd: string, env: Record<string, string>): Promise<{ child: Child; url: string }> {
  const child = spawn(process.execPath, [BIN, "ui", "--aws", "--port", "0"], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let text = "";
  const url = await new Promise<string>((resolve, reject) => {
    const seen = (d: Buffer) => {
      text += d.toString();
      const m = /aloft ui: (http:\S+)\n/.exec(text);
      if (m) resolve(m[1]!);
    };
    child.stdout!.on("data", seen);
    child.stderr!.on("data", seen);
    child.once("exit", (code) => reject(new Error(`aloft ui exited (${String(code)}):\n${text}`)));
  });
  return { child, url };
}

async function stop(child: Child | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

/** `aloft logs <run> --aws` of a `fanOut 5` run: every body's lines once, attempts apart. */
async function checkFanOutLogs(id: string, cwd: string, env: Record<string, string>): Promise<void> {
  const logs = await aloft(["logs", id, "--aws"], { cwd, env });
  assert.equal(logs.code, 0, logs.stderr);
  const lines = logs.stdout.trim().split("\n");
  assert.equal(lines.filter((l) => l.includes("fanning out over 5 items")).length, 1);
  assert.equal(lines.filter((l) => /ui\.square \S+ {2}info {3}squaring \d$/.test(l)).length, 5);
  assert.match(logs.stdout, /ui\.flaky \S+ {2}warn {3}first attempt: failing on purpose/);
  assert.match(logs.stdout, /ui\.flaky \S+ #2 {2}info {3}second attempt: fine/);
}

describe("aloft logs --aws under aloft dev", () => {
  let cwd: string;
  let dev: DevProcess | undefined;
  before(() => {
    cwd = mkdtempSync(join(tmpdir(), "aloft-logs-dev-"));
  });
  after(async () => {
    await stopDev(dev);
    rmSync(cwd, { recursive: true, force: true });
  });

  it("the handlers' task lines go to the dev stack's file, which aloft logs --aws reads", async () => {
    const env = { ALOFT_TEST_DIR: cwd, POWERTOOLS_LOG_LEVEL: "SILENT" };
    dev = await startDev(cwd, [TASKS], env);
    const { exports } = dev;
    const r = await aloft(["run", "--aws", TASKS, "fanOut", "5"], { cwd, env: { ...exports, ...env } });
    assert.equal(r.code, 0, r.stderr);
    await checkFanOutLogs(runIdOf(r.stderr), cwd, exports);
  });
});

describe("aloft logs --aws and aloft ui --aws under aloft dev --cdk-out", { timeout: 900_000 }, () => {
  let cwd: string;
  let out: string;
  let dev: DevProcess | undefined;
  let ui: Child | undefined;
  before(
    async () => {
      cwd = mkdtempSync(join(tmpdir(), "aloft-logs-deployed-"));
      out = join(cwd, "cdk.out");
      await synth("test/fixtures/ui-tasks.ts", "AloftUiLogs", out);
    },
    { timeout: 600_000 },
  );
  after(async () => {
    await stop(ui);
    await stopDev(dev);
    rmSync(cwd, { recursive: true, force: true });
  });

  it("reads the executor sandboxes' Powertools lines from their output files", async () => {
    dev = await startDev(cwd, ["--cdk-out", out]);
    const { exports } = dev;
    const r = await aloft(["run", "--aws", TASKS, "fanOut", "5"], { cwd, env: exports });
    assert.equal(r.code, 0, r.stderr);
    const id = runIdOf(r.stderr);
    await checkFanOutLogs(id, cwd, exports);

    // The UI shows the same lines per action: the retried child's two attempts.
    const u = await startAwsUi(cwd, exports);
    ui = u.child;
    const base = u.url;
    const get = async <T>(path: string): Promise<T> => {
      const res = await fetch(`${base}${path}`);
      assert.equal(res.status, 200, path);
      return (await res.json()) as T;
    };
    const run = `/api/runs/${encodeURIComponent(id)}`;
    const { groups } = await get<{ groups: { group: string; items?: { id: string; task: string }[] }[] }>(
      `${run}/children?parent=${encodeURIComponent(id)}`,
    );
    const flaky = groups.flatMap((g) => g.items ?? []).find((c) => c.task === "ui.flaky");
    assert.ok(flaky, JSON.stringify(groups));
    const detail = await get<{ logs: { attempt: number; level: string; text: string }[] }>(
      `${run}/actions/${encodeURIComponent(flaky.id)}`,
    );
    assert.deepEqual(
      detail.logs.map((l) => [l.attempt, l.level, l.text]),
      [
        [1, "warn", "first attempt: failing on purpose"],
        [2, "info", "second attempt: fine"],
      ],
    );
  });
});
