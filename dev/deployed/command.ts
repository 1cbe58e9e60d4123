/**
 * `aloft dev --cdk-out <dir> [--stack NAME] [--chaos SPEC]`: starts the deployed shape, announces
 * it as `aloft dev` does, and at Ctrl-C prints the report; the exit code is 1 if IAM denied any
 * request (a permission the code needs and the role lacks).
 */
import { rmSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { OUTPUT } from "../../sdk/aws/config.ts";
import { announce, interrupted } from "../announce.ts";
import { parseChaos } from "./chaos.ts";
import { startDeployedStack } from "./stack.ts";

export async function devDeployed(o: {
  cdkOut: string;
  stack?: string;
  chaos?: string;
  outputs: string;
}): Promise<number> {
  const chaos = o.chaos ? parseChaos(o.chaos) : undefined;
  // Beside the outputs file, as `aloft dev`'s task log is: in the project, this session's only (the
  // last session's are replaced), and not left behind in the system's temporary folder.
  const logDir = resolve(dirname(o.outputs), "dev-function-logs");
  rmSync(logDir, { recursive: true, force: true });
  const stack = await startDeployedStack({
    cdkOut: o.cdkOut,
    logDir,
    ...(o.stack ? { stack: o.stack } : {}),
    ...(chaos ? { chaos } : {}),
  });
  announce(
    o.outputs,
    // The sandboxes' output stands for CloudWatch Logs: `aloft logs --aws` and the UI read it there.
    { ...stack.outputs, [OUTPUT.functionLogDir]: stack.logDir },
    stack.env,
    `aloft dev: stack ${stack.name} from ${o.cdkOut} as deployed (sandboxes, IAM enforced${chaos ? `, chaos ${o.chaos}` : ""}) ready\n` +
      stack.description.map((d) => `  ${d}`).join("\n") +
      `\n  function logs: ${stack.logDir}`,
  );
  await interrupted();
  process.stderr.write("aloft dev: stopping\n");
  const report = await stack.stop();
  process.stderr.write(`${report.text}\n`);
  return report.denials.length ? 1 : 0;
}
