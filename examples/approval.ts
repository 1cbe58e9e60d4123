/**
 * Human in the loop: fan out the work, ask someone to approve it (or not, or not in time), then
 * publish or roll back. The approval is a callback: its id is handed to whoever decides (a chat
 * message, an email link), who completes it without knowing anything else of the run. The run
 * holds no worker while it waits.
 *
 *   npx aloft run examples/approval.ts release '["eu","us","ap"]' '"1h"'
 *   # the run prints the command to approve; in another shell:
 *   npx aloft callback cb.r-….… '{"approved":true,"by":"ana"}'
 *   npx aloft callback cb.r-….… --fail "not this week"            # or refuse
 */
import { TaskEnvironment, TaskError, TaskTimeoutError, createCallback } from "aloft";
import type { Duration } from "aloft";

const env = new TaskEnvironment({ name: "approval" });

interface Decision {
  approved: boolean;
  by: string;
}

export const stage = env.task(async function stage(region: string) {
  return `staged ${region}`;
});

/** Asks for the decision: here a line on the terminal; in production a chat message or an email. */
export const askForApproval = env.task(async function askForApproval(callbackId: string, regions: string[]) {
  console.log(
    `approve the release to ${regions.join(", ")}: aloft callback ${callbackId} '{"approved":true,"by":"you"}'`,
  );
});

export const publish = env.task(async function publish(region: string) {
  return `published ${region}`;
});

export const rollBack = env.task(async function rollBack(region: string) {
  return `rolled back ${region}`;
});

export const release = env.task(async function release(regions: string[], timeout: Duration = "1h") {
  const staged = await Promise.all(regions.map((r) => stage(r)));
  const approval = createCallback<Decision>({ timeout });
  await askForApproval(approval.id, regions);
  let decision: Decision;
  try {
    decision = await approval;
  } catch (e) {
    if (e instanceof TaskTimeoutError) decision = { approved: false, by: `nobody within ${timeout}` };
    else if (e instanceof TaskError)
      decision = { approved: false, by: `refused: ${(e.cause as Error).message}` };
    else throw e;
  }
  const next = decision.approved ? publish : rollBack;
  return { staged, decision, outcome: await Promise.all(regions.map((r) => next(r))) };
});
