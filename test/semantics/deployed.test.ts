/**
 * The semantic suite on the deployed shape: test/semantics/tasks.ts synthesized by `cdk synth`,
 * each function run from its bundle in sandbox processes with the template's settings, every AWS
 * request checked against its role (dev/deployed). A request IAM denies fails the suite.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { applyEnv } from "../../dev/aws-clients.ts";
import { startDeployedStack } from "../../dev/deployed/stack.ts";
import { synth } from "../../dev/deployed/synth.ts";
import { AloftClient } from "../../sdk/aws/client.ts";
import { semanticSuite } from "./suite.ts";

semanticSuite(async () => {
  const out = mkdtempSync(join(tmpdir(), "aloft-sem-synth-"));
  await synth("test/semantics/deployed-tasks.ts", "AloftSemantics", out);
  const lines: string[] = [];
  const stack = await startDeployedStack({
    cdkOut: out,
    env: { ALOFT_TEST_DIR: process.env["ALOFT_TEST_DIR"]!, POWERTOOLS_LOG_LEVEL: "WARN" },
    log: (l) => lines.push(l),
  });
  const restore = applyEnv(stack.env);
  const client = new AloftClient(stack.config);
  return {
    name: "aws-deployed",
    run: (task, ...args) => client.run(task, ...args),
    completeCallback: (id, payload) => client.completeCallback(id, payload),
    failCallback: (id, message) => client.failCallback(id, message),
    recover: (id) => client.recover(id),
    replays: async (id) => client.attach(id).replays(),
    close: async () => {
      client.destroy();
      const report = await stack.stop();
      restore();
      rmSync(out, { recursive: true, force: true });
      rmSync(stack.logDir, { recursive: true, force: true });
      assert.deepEqual(report.denials, [], `IAM denied requests:\n${report.denials.join("\n")}`);
    },
  };
});
