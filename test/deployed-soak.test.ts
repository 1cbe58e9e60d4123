/**
 * The deployed shape under chaos, end to end: a short soak of the soak stack (scripts/soak/app.ts,
 * synthesized once) with kills, throttles, duplicates and delays from a fixed seed, its invariants
 * checked from outside; and `aloft dev --cdk-out` on a copy of that template missing one grant,
 * where the function's request must come back AccessDenied, be printed as `IAM denied: ...`, and
 * make the process exit non-zero. Nothing here is timed: the soak's bound is the liveness bound read
 * from the template (longest work-queue visibility + 3 leases + 30 s), at the stack's own ratios.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { synth } from "../dev/deployed/synth.ts";
import { AloftClient } from "../sdk/aws/client.ts";
import { soak } from "../scripts/soak/run.ts";
import { leaf } from "../scripts/soak/tasks.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

describe("the deployed shape under chaos", { timeout: 900_000 }, () => {
  let out: string;

  before(
    async () => {
      out = mkdtempSync(join(tmpdir(), "aloft-soak-test-"));
      await synth("scripts/soak/tasks.ts", "AloftSoak", out, "npx tsx scripts/soak/app.ts");
    },
    { timeout: 600_000 },
  );
  after(() => rmSync(out, { recursive: true, force: true }));

  test("a short soak with every fault keeps every invariant", async () => {
    const lines: string[] = [];
    const r = await soak({
      cdkOut: out,
      seconds: 20,
      // At least this many runs however slow the machine, so every kind of fault is drawn.
      minRuns: 10,
      // ...and until a killed message was delivered again (asserted below), for at most 80 s.
      minRecoveries: 1,
      inFlight: 3,
      chaos: { kill: 0.05, throttle: 0.05, duplicate: 0.1, delay: 0.1, seed: 11 },
      log: (l) => lines.push(l),
    });
    const why = `${r.summary}\n${r.problems.join("\n")}`;
    assert.ok(r.runs >= 10, why);
    const c = r.report.chaos;
    assert.ok(
      c.kills > 0 && c.throttles > 0 && c.duplicates > 0 && c.delays > 0,
      `not every fault drawn\n${why}`,
    );
    assert.deepEqual(
      {
        stuck: r.stuck,
        lost: r.lost,
        duplicated: r.duplicated,
        overConcurrency: r.overConcurrency,
        early: r.early,
        denials: r.denials,
      },
      { stuck: 0, lost: 0, duplicated: 0, overConcurrency: 0, early: 0, denials: 0 },
      why,
    );
    // A killed message is delivered again: its recovery was measured.
    assert.ok(r.recoveriesMs.length > 0, why);
  });

  test("a template missing a grant: AccessDenied in the function, `IAM denied` printed, exit 1", async () => {
    const denied = mkdtempSync(join(tmpdir(), "aloft-soak-denied-"));
    try {
      cpSync(out, denied, { recursive: true });
      const file = join(denied, "AloftSoak.template.json");
      const template = JSON.parse(readFileSync(file, "utf8")) as {
        Resources: Record<string, { Type: string; Properties: any }>;
      };
      // The coordinator may send to its own queue only: starting a run sends the root's exec.
      const [policyId, policy] = Object.entries(template.Resources).find(
        ([id, r]) => r.Type === "AWS::IAM::Policy" && id.startsWith("AloftCoordinatorRole"),
      )!;
      const send = (policy.Properties.PolicyDocument.Statement as any[]).find(
        (s) => s.Action === "sqs:SendMessage",
      );
      assert.ok(send, `${policyId} grants sqs:SendMessage`);
      send.Resource = send.Resource.filter((r: any) =>
        r["Fn::GetAtt"]?.[0]?.startsWith("AloftCoordinatorQueue"),
      );
      writeFileSync(file, JSON.stringify(template));

      const child = spawn(
        process.execPath,
        ["bin/aloft.js", "dev", "--cdk-out", denied, "--outputs", join(denied, "outputs.json")],
        { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
      );
      let stderr = "";
      const seen = (text: string) =>
        new Promise<void>((ok, fail) => {
          const check = () => (stderr.includes(text) ? ok() : undefined);
          child.stderr!.on("data", check);
          child.once("exit", (code) =>
            fail(new Error(`aloft dev exited (${code}) before "${text}":\n${stderr}`)),
          );
          check();
        });
      child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
      child.stdout!.resume();
      const exited = new Promise<number | null>((ok) => child.once("exit", (code) => ok(code)));
      try {
        await seen("Ctrl-C stops it.");
        const env = Object.fromEntries(
          [...stderr.matchAll(/^ {2}export (\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!] as const),
        );
        // As `aloft run --aws` in another shell would, from the printed variables.
        const saved = { ...process.env };
        Object.assign(process.env, env);
        const client = new AloftClient();
        try {
          const run = await client.run(leaf, 1);
          // With the grant the run would end: that must not happen before the denial is printed.
          const ended = run.result().then(
            (v) => `the run ended (${JSON.stringify(v)}) and no request was denied`,
            (e: unknown) => `the run failed (${String(e)}) and no request was denied`,
          );
          const verdict = await Promise.race([
            seen("IAM denied: AloftCoordinator").then(() => undefined),
            ended,
          ]);
          assert.equal(verdict, undefined, `${verdict}\n${stderr}`);
        } finally {
          client.destroy();
          process.env = saved;
        }
        // The SDK in the sandbox got the service's AccessDenied, as on AWS, and the handler logged
        // it (its message is then retried): the log is written just after the proxy's denial.
        const logDir = /function logs: (\S+)/.exec(stderr)![1]!;
        const log = join(
          logDir,
          readdirSync(logDir).find((f) => f.startsWith("AloftCoordinatorFunction"))!,
        );
        while (!/"error":"AccessDenied: [^"]*sqs:SendMessage/.test(readFileSync(log, "utf8")))
          await new Promise((r) => setTimeout(r, 200));
      } finally {
        child.kill("SIGINT");
      }
      const code = await exited;
      assert.equal(code, 1, stderr);
      assert.match(
        stderr,
        /^IAM denied: AloftCoordinatorFunction\w+ sqs:SendMessage arn:aws:sqs:[^ ]+:AloftSoak-AloftExecutorsoakQueue/m,
      );
    } finally {
      rmSync(denied, { recursive: true, force: true });
    }
  });
});
