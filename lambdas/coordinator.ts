/**
 * PLACEHOLDER written by the CDK work (issue 4) so that `cdk synth` can bundle something; the real
 * coordinator handler replaces this file. It must keep this signature: the construct bundles
 * `export { handler } from "lambdas/coordinator.ts"` together with the user's task module.
 */
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";

export async function handler(_event: SQSEvent): Promise<SQSBatchResponse> {
  throw new Error("aloft: the coordinator handler is not implemented yet");
}
