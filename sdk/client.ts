/**
 * `aloft/client`: the client of a deployed stack. A subpath of its own so that `import "aloft"`
 * never loads the AWS SDK.
 * @example
 * import { AloftClient } from "aloft/client";
 * import { parallelPipeline } from "./tasks.ts";
 * const client = new AloftClient(); // reads aloft-outputs.json or the ALOFT_* variables
 * const r = await client.run(parallelPipeline, ["a", "b", "c"]);
 * console.log(await r.result());
 * client.destroy();
 */
export { AloftClient, AwsRun } from "./aws/client.ts";
export type { AloftClientConfig, AloftClientOptions, AwsRunRow } from "./aws/client.ts";
