/**
 * Aloft's infrastructure: `import { Aloft } from "aloft/cdk"`.
 * @example
 * import { App, Stack } from "aws-cdk-lib";
 * import { Aloft } from "aloft/cdk";
 * const app = new App();
 * await Aloft.fromModule(new Stack(app, "Aloft"), "Aloft", { entry: "src/tasks.ts" });
 */
export { Aloft, GSI1, TTL_ATTRIBUTE } from "./aloft.ts";
export type { AloftExecutor } from "./aloft.ts";
export type { AloftProps, AloftCode, AloftLogLevel } from "./props.ts";
export { ENV, OUTPUT, DEFAULT_OUTPUTS_FILE } from "../sdk/aws/config.ts";
export type { EnvironmentSpec } from "../sdk/registry.ts";
