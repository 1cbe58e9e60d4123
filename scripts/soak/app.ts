/**
 * The CDK app the soak synthesizes: scripts/soak/tasks.ts behind the Aloft construct with the
 * coordinator's timeout and lease shortened like the tasks' (ratios kept), so a run that loses a
 * sandbox recovers within the soak's time: `npx cdk synth --app "npx tsx scripts/soak/app.ts"`.
 */
import { App, Duration, RemovalPolicy, Stack } from "aws-cdk-lib";
import { Aloft } from "../../cdk/aloft.ts";

const app = new App();
const stack = new Stack(app, String(app.node.tryGetContext("aloft:stackName") ?? "AloftSoak"));
await Aloft.fromModule(stack, "Aloft", {
  entry: String(app.node.tryGetContext("aloft:entry") ?? "scripts/soak/tasks.ts"),
  coordinatorTimeout: Duration.seconds(10),
  coordinatorVisibilityTimeout: Duration.seconds(10),
  stallTimeout: Duration.minutes(1),
  removalPolicy: RemovalPolicy.DESTROY,
});
app.synth();
