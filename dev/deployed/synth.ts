/**
 * `cdk synth` of a task module into a folder of its own, offline (no credentials, no Docker), as
 * scripts/cdk-synth-check.sh runs it: what the soak and the deployed-shape tests start from.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** `app`: a CDK app command other than cdk.json's (the soak's). */
export async function synth(entry: string, stackName: string, outDir: string, app?: string): Promise<void> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CDK_DISABLE_CLI_TELEMETRY: "true",
    CDK_DISABLE_VERSION_CHECK: "1",
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
    AWS_CONFIG_FILE: "/dev/null",
    CDK_DOCKER: "/bin/false",
  };
  for (const k of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"])
    delete env[k];
  const args = [
    "cdk",
    "synth",
    "--quiet",
    "-c",
    `aloft:entry=${entry}`,
    "-c",
    `aloft:stackName=${stackName}`,
    "--output",
    outDir,
    ...(app ? ["--app", app] : []),
  ];
  await promisify(execFile)("npx", args, { cwd: ROOT, env, maxBuffer: 16 << 20 });
}
