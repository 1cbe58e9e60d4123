/**
 * The CDK app behind `cdk.json`: deploys the example tasks as the stack `Aloft`.
 *
 *   npx cdk synth                                   # offline: no credentials, no Docker
 *   npx cdk deploy --outputs-file aloft-outputs.json
 *
 * Context (`-c key=value`): `aloft:entry` (task module, default examples/cdk-tasks.ts),
 * `aloft:stackName` (default Aloft), `aloft:retain` ("true" keeps the table, bucket and logs on
 * `cdk destroy`; the example stack deletes them by default).
 */
import { App, RemovalPolicy, Stack } from "aws-cdk-lib";
import { Aloft } from "./aloft.ts";

const app = new App();
const entry = String(app.node.tryGetContext("aloft:entry") ?? "examples/cdk-tasks.ts");
const stackName = String(app.node.tryGetContext("aloft:stackName") ?? "Aloft");
const retain = String(app.node.tryGetContext("aloft:retain") ?? "false") === "true";

// Environment-agnostic (no `env`): nothing here looks anything up, so `cdk synth` needs no
// credentials, and `cdk deploy` targets the account and region of the credentials it runs with.
const stack = new Stack(app, stackName, {
  description: `Aloft: serverless fan-out orchestrator for ${entry}`,
});

// Importing the module registers its TaskEnvironments: one executor is created for each.
await Aloft.fromModule(stack, "Aloft", {
  entry,
  removalPolicy: retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
  autoDeleteObjects: !retain,
});

app.synth();
