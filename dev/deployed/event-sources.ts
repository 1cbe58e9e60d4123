/**
 * The template's event sources, driven as Lambda drives them: each AWS::Lambda::EventSourceMapping
 * on an SQS queue becomes a local poller (dev/poller.ts) with its BatchSize, its
 * ScalingConfig.MaximumConcurrency and its FunctionResponseTypes, invoking the function's sandboxes;
 * each AWS::Events::Rule with a rate() schedule invokes its target functions on that schedule. Chaos
 * duplicates (a second, concurrent invocation with the same message) and delays (the message made
 * visible again a few seconds later, so it arrives after newer ones) happen here, on AWS's side.
 */
import { ChangeMessageVisibilityCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import { randomUUID } from "node:crypto";
import { SqsEventSourcePoller } from "../poller.ts";
import { ConfigurationError } from "../../sdk/errors.ts";
import type { StackArtifact } from "./assembly.ts";
import type { Chaos } from "./chaos.ts";
import { resolve, resolveString, type Scope } from "./intrinsics.ts";
import { MessageTrace, type TraceEvent } from "./message-trace.ts";
import { InvocationError, type FunctionPool } from "./sandbox-pool.ts";

export interface EventSources {
  pollers: SqsEventSourcePoller[];
  /** Each message a killed sandbox held, and the time from the kill to its next delivery. */
  recoveries: Recovery[];
  /** Where each message has been (for the soak's account of a stuck run). */
  trace: MessageTrace;
  /** What was wired, one line each. */
  described: string[];
  stop(): Promise<void>;
}

export interface Recovery {
  queue: string;
  messageId: string;
  ms: number;
}

export interface EventSourceOptions {
  stack: StackArtifact;
  scope: Scope;
  sqs: SQSClient;
  pools: Map<string, FunctionPool>;
  chaos: Chaos;
  /** Upper bound on any function's concurrent invocations (sandboxes are OS processes). */
  maxConcurrency: number;
  onError(message: string): void;
}

export async function startEventSources(o: EventSourceOptions): Promise<EventSources> {
  const pollers: SqsEventSourcePoller[] = [];
  const described: string[] = [];
  const timers: NodeJS.Timeout[] = [];
  const scheduled = new Set<Promise<unknown>>();
  const recoveries: Recovery[] = [];
  const killedAt = new Map<string, number>();
  const trace = new MessageTrace();
  const urlOfArn = new Map<string, string>();
  for (const [, phys] of o.scope.resources)
    if (phys.attributes["QueueUrl"]) urlOfArn.set(phys.attributes["Arn"]!, phys.ref);
  const poolOfName = new Map([...o.pools.values()].map((p) => [p.spec.name, p]));
  const poolOfArn = new Map([...o.pools.values()].map((p) => [p.spec.arn, p]));

  for (const [id, r] of Object.entries(o.stack.template.Resources)) {
    if (r.Type !== "AWS::Lambda::EventSourceMapping") continue;
    const p = resolve(r.Properties ?? {}, o.scope, id) as Record<string, any>;
    if (p["Enabled"] === false) continue;
    const url = urlOfArn.get(String(p["EventSourceArn"]));
    const pool = poolOfName.get(String(p["FunctionName"])) ?? poolOfArn.get(String(p["FunctionName"]));
    if (!url || !pool)
      throw new ConfigurationError(
        `${id}: only SQS event sources on the stack's own queues and functions are supported`,
      );
    const reportFailures = ((p["FunctionResponseTypes"] as string[]) ?? []).includes(
      "ReportBatchItemFailures",
    );
    const batchSize = Number(p["BatchSize"] ?? 10);
    const maxConcurrency = Math.min(
      Number(p["ScalingConfig"]?.["MaximumConcurrency"] ?? Infinity),
      pool.spec.concurrency,
      o.maxConcurrency,
    );
    const windowSeconds = Number(p["MaximumBatchingWindowInSeconds"] ?? 0);
    const queue = url.split("/").pop()!;
    const note = (recs: SQSEvent["Records"], event: TraceEvent, detail?: string) => {
      for (const r of recs) trace.note(r.messageId, queue, r.body, event, detail);
    };
    const handler = async (event: SQSEvent): Promise<SQSBatchResponse> => {
      const failed = new Set<string>();
      const records: SQSEvent["Records"] = [];
      for (const rec of event.Records) {
        note([rec], "received", `receive ${rec.attributes.ApproximateReceiveCount}`);
        const killed = killedAt.get(rec.messageId);
        if (killed !== undefined) {
          recoveries.push({ queue, messageId: rec.messageId, ms: Date.now() - killed });
          killedAt.delete(rec.messageId);
        }
        if (o.chaos.roll("delays")) {
          // Held back: visible again in 1-5 s, after messages sent later; not a failure of the function.
          await o.sqs
            .send(
              new ChangeMessageVisibilityCommand({
                QueueUrl: url,
                ReceiptHandle: rec.receiptHandle,
                VisibilityTimeout: o.chaos.between(1, 5),
              }),
            )
            .catch(() => undefined);
          failed.add(rec.messageId);
          note([rec], "delayed");
        } else records.push(rec);
      }
      if (!records.length)
        return { batchItemFailures: [...failed].map((itemIdentifier) => ({ itemIdentifier })) };
      const duplicates = records
        .filter(() => o.chaos.roll("duplicates"))
        .map((rec) => {
          note([rec], "duplicated");
          return pool
            .invoke({ Records: [rec] }, { extra: true })
            .catch((e: unknown) => o.onError(`${pool.spec.logicalId} (duplicate delivery): ${String(e)}`));
        });
      note(records, "waiting");
      const requests = { requests: 0, throttled: 0, serviceMs: 0 };
      const spent = () =>
        `${requests.requests} requests, ${requests.throttled} throttled, ${Math.round(requests.serviceMs)} ms in services`;
      try {
        const response = await pool.invoke(
          { Records: records },
          { started: (s) => note(records, "invoked", s), requests },
        );
        if (reportFailures) {
          const items = (response as SQSBatchResponse | null)?.batchItemFailures ?? [];
          for (const f of items) failed.add(f.itemIdentifier);
        }
        note(
          records.filter((r) => !failed.has(r.messageId)),
          "succeeded",
          spent(),
        );
        note(
          records.filter((r) => failed.has(r.messageId)),
          "item failed",
          spent(),
        );
      } catch (e) {
        o.onError(`${pool.spec.logicalId}: ${(e as Error).message}`);
        const killed = e instanceof InvocationError && e.kind === "killed";
        note(records, killed ? "killed" : "failed", `${(e as Error).message.split("\n")[0]}; ${spent()}`);
        for (const rec of records) failed.add(rec.messageId);
        if (e instanceof InvocationError && e.kind === "killed")
          for (const rec of records) killedAt.set(rec.messageId, Date.now());
      } finally {
        await Promise.all(duplicates);
      }
      return { batchItemFailures: [...failed].map((itemIdentifier) => ({ itemIdentifier })) };
    };
    const poller = new SqsEventSourcePoller(o.sqs, url, handler, {
      batchSize,
      maxBatchingWindowMs: windowSeconds * 1000,
      maxConcurrency: Math.max(1, maxConcurrency),
      functionName: pool.spec.name,
      onError: (e, info) => o.onError(`${pool.spec.logicalId} poller ${info.phase}: ${String(e)}`),
    });
    pollers.push(poller);
    described.push(
      `${pool.spec.logicalId} <- ${url.split("/").pop()} (batch ${batchSize}${windowSeconds ? ` gathered over ${windowSeconds} s` : ""}, concurrency ${maxConcurrency}, ${reportFailures ? "partial batch responses" : "whole batches"})`,
    );
  }

  for (const [id, r] of Object.entries(o.stack.template.Resources)) {
    if (r.Type !== "AWS::Events::Rule") continue;
    const p = r.Properties ?? {};
    const expr = typeof p["ScheduleExpression"] === "string" ? p["ScheduleExpression"] : undefined;
    if (!expr || p["State"] === "DISABLED") continue;
    const m = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expr);
    if (!m) {
      described.push(`${id}: schedule ${expr} not reproduced (only rate() is)`);
      continue;
    }
    const unit = { minute: 60_000, hour: 3_600_000, day: 86_400_000 }[m[2]!.replace(/s$/, "") as "minute"];
    const periodMs = Number(m[1]) * unit;
    const ruleArn = o.scope.resources.get(id)?.attributes["Arn"] ?? id;
    for (const t of (p["Targets"] as Array<{ Arn: unknown }>) ?? []) {
      const pool = poolOfArn.get(resolveString(t.Arn, o.scope, `${id}.Targets`));
      if (!pool) continue;
      const tick = () => {
        const event = {
          version: "0",
          id: randomUUID(),
          "detail-type": "Scheduled Event",
          source: "aws.events",
          account: o.scope.account,
          time: new Date().toISOString(),
          region: o.scope.region,
          resources: [ruleArn],
          detail: {},
        };
        const run = pool
          .invoke(event)
          .catch((e: unknown) => o.onError(`${pool.spec.logicalId} (schedule): ${String(e)}`));
        scheduled.add(run);
        void run.finally(() => scheduled.delete(run));
      };
      timers.push(setInterval(tick, periodMs));
      described.push(`${pool.spec.logicalId} <- ${expr}`);
    }
  }
  await Promise.all(pollers.map((p) => p.start()));
  return {
    pollers,
    recoveries,
    trace,
    described,
    async stop() {
      for (const t of timers) clearInterval(t);
      await Promise.all(pollers.map((p) => p.stop()));
      await Promise.all(scheduled);
    },
  };
}
