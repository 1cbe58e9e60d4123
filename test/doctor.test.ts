/**
 * `aloft doctor` as a user runs it: on the local store (a run whose process stopped, a task module
 * that moved) and, with --aws, on the stack `aloft dev` serves (healthy; a dead-lettered message; a
 * table that does not exist).
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import { startDevStack } from "../dev/stack.ts";
import { AloftClient } from "../sdk/aws/client.ts";
import { doctorAws } from "../sdk/cli/doctor-aws.ts";
import { renderChecks } from "../sdk/cli/doctor.ts";
import "../examples/parallel-pipeline.ts";
import { Store } from "../sdk/local/store.ts";
import { ROOT, aloft, startDev, stopDev } from "./helpers/cli.ts";
import type { DevProcess } from "./helpers/cli.ts";

describe("aloft doctor", () => {
  let cwd: string;
  let dev: DevProcess | undefined;
  before(() => (cwd = mkdtempSync(join(tmpdir(), "aloft-doctor-"))));
  after(async () => {
    await stopDev(dev);
    rmSync(cwd, { recursive: true, force: true });
  });

  it("locally: names runs whose process stopped and task modules that moved, with what to do", async () => {
    const fresh = await aloft(["doctor"], { cwd });
    assert.equal(fresh.code, 0, fresh.stderr);
    assert.match(fresh.stdout, /no store at .* yet: the first aloft run creates it/);
    mkdirSync(join(cwd, ".aloft"));
    const store = new Store(join(cwd, ".aloft/aloft.db"));
    store.createRun({ id: "r-stopped-1", task: "t.root", module: join(cwd, "moved.ts"), args: "[]", now: 1 });
    store.close();
    const r = await aloft(["doctor"], { cwd });
    assert.equal(r.code, 1, r.stdout);
    assert.match(
      r.stdout,
      /warn {2}1 run\(s\) RUNNING whose process stopped: r-stopped-1\n\s+→ continue each with aloft resume <run>/,
    );
    assert.match(r.stdout, /FAIL {2}task module\(s\) of running runs no longer exist: .*moved\.ts/);
    assert.match(r.stdout, /1 problem\(s\), 1 warning\(s\)\n$/);
  });

  it("--aws: the stack aloft dev serves passes; a missing table fails, saying what to do", async () => {
    const work = mkdtempSync(join(cwd, "aws-"));
    dev = await startDev(work, [join(ROOT, "examples/parallel-pipeline.ts")]);
    const env = dev.exports;
    const healthy = await aloft(["doctor", "--aws"], { cwd: work, env });
    assert.equal(healthy.code, 0, healthy.stdout + healthy.stderr);
    assert.match(
      healthy.stdout,
      /ok {4}stack configuration from the outputs file \S+dev-outputs\.json: table /,
    );
    assert.match(healthy.stdout, /ok {4}table \S+: ACTIVE, keys and gsi1 index as Aloft needs/);
    assert.match(healthy.stdout, /ok {4}coordinator dead-letter queue \S+: empty/);
    assert.match(healthy.stdout, /ok {4}data_pipeline dead-letter queue \S+: empty/);
    assert.match(healthy.stdout, /everything checked is as Aloft needs it/);

    // The same stack's outputs, naming a table that is not there.
    const outputs = JSON.parse(readFileSync(env["ALOFT_OUTPUTS_FILE"]!, "utf8")) as Record<
      string,
      Record<string, string>
    >;
    for (const o of Object.values(outputs))
      for (const k of Object.keys(o)) if (o[k]!.endsWith("-table")) o[k] = "no-such-table";
    writeFileSync(join(work, "wrong-outputs.json"), JSON.stringify(outputs));
    const missing = await aloft(["doctor", "--aws", "--outputs", join(work, "wrong-outputs.json")], {
      cwd: work,
      env,
    });
    assert.equal(missing.code, 1, missing.stdout);
    assert.match(missing.stdout, /FAIL {2}table no-such-table does not exist\n\s+→ deploy the stack/);
  });

  it("--aws: a message left in a dead-letter queue fails the check (its consumer stopped)", async () => {
    const stack = await startDevStack({ environments: ["data_pipeline"] });
    const client = new AloftClient(stack.config);
    try {
      // Under aloft dev the dead-letter consumer drains every DLQ at once; here it is stopped.
      const [coordinatorDlq] = stack.deadLetterPollers;
      await coordinatorDlq!.stop();
      await client.rt.sqs.send(
        new SendMessageCommand({ QueueUrl: coordinatorDlq!.queueUrl, MessageBody: "{}" }),
      );
      const checks = await doctorAws(client, "the test's stack");
      const dlq = checks.find((c) => c.what.includes("coordinator's dead-letter queue"));
      assert.equal(dlq?.level, "problem", renderChecks(checks));
      assert.match(dlq!.what, /^1 message\(s\) in coordinator's dead-letter queue \S+$/);
      assert.match(dlq!.fix!, /the dead-letter consumer fails each one's action and removes it/);
      assert.equal(checks.filter((c) => c.level === "problem").length, 1, renderChecks(checks));
    } finally {
      client.destroy();
      await stack.stop();
    }
  });
});
