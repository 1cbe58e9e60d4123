/**
 * Human in the loop: fan out the work, wait for someone to approve it (or not, or not in time),
 * then publish or roll back. The run holds no worker while it waits.
 *
 *   npx aloft run examples/approval.ts release '["eu","us","ap"]' '"1h"'
 *   # in another shell, with the run id printed by the first:
 *   npx aloft signal <run> approve '{"approved":true,"by":"ana"}'
 */
import { TaskEnvironment, TaskTimeoutError, waitForSignal } from "aloft";
import type { Duration } from "aloft";

const env = new TaskEnvironment({ name: "approval" });

interface Decision {
  approved: boolean;
  by: string;
}

export const stage = env.task(async function stage(region: string) {
  return `staged ${region}`;
});

export const publish = env.task(async function publish(region: string) {
  return `published ${region}`;
});

export const rollBack = env.task(async function rollBack(region: string) {
  return `rolled back ${region}`;
});

export const release = env.task(async function release(regions: string[], timeout: Duration = "1h") {
  const staged = await Promise.all(regions.map((r) => stage(r)));
  let decision: Decision;
  try {
    decision = await waitForSignal<Decision>("approve", { timeout });
  } catch (e) {
    if (!(e instanceof TaskTimeoutError)) throw e;
    decision = { approved: false, by: `nobody within ${timeout}` };
  }
  const next = decision.approved ? publish : rollBack;
  return { staged, decision, outcome: await Promise.all(regions.map((r) => next(r))) };
});
