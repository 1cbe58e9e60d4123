/**
 * SQS simulated on a fake clock around the real handlers (which still use DynamoDB Local and the
 * S3 emulator): every message the handlers and the client send is captured, held with its id,
 * receive count and visible-at time, and delivered by the test to the coordinator or executor
 * handler as Lambda's event source would. Time is the simulation's: a failed or crashed delivery
 * comes back a whole visibility timeout later (minutes, as on AWS), which costs no wall time, so
 * redeliveries never race ahead of resumes the way shrunk real timeouts make them.
 */
import type { SQSEvent } from "aws-lambda";
import type { DevStack } from "../../dev/stack.ts";
import { handler as coordinator } from "../../lambdas/coordinator.ts";
import { handler as executor } from "../../lambdas/executor.ts";
import { runtime } from "../../sdk/aws/runtime.ts";
import type { AloftClient } from "../../sdk/aws/client.ts";
import { addMiddleware, captureSends } from "./aws-faults.ts";
import type { Captured } from "./aws-faults.ts";

export interface SimMessage {
  queue: string;
  id: string;
  body: string;
  /** Deliveries so far. */
  receives: number;
  visibleAt: number;
}

export interface SimOptions {
  /** Visibility timeout of every queue, in simulated ms; default 300 s (5 minutes). */
  visibilityMs?: number;
  /** Deliveries before a message is dead-lettered; default 5. */
  maxReceiveCount?: number;
}

/** What one invocation got and did. */
export interface Invocation {
  queue: string;
  messages: SimMessage[];
  failed: string[];
  /** Messages captured while it ran. */
  sent: Captured[];
  /** DynamoDB requests the handler made. */
  dynamoCalls: number;
}

export class SimQueues {
  clock: number;
  readonly messages: SimMessage[] = [];
  readonly dead: SimMessage[] = [];
  readonly log: Invocation[] = [];
  private readonly visibilityMs: number;
  private readonly maxReceiveCount: number;
  private readonly sink: Captured[] = [];
  private next = 0;
  private dynamoCalls = 0;
  private readonly undo: (() => void)[] = [];
  /** A send this picks fails instead (its sender crashes at that request). */
  crashSend: ((c: Captured) => boolean) | undefined;

  constructor(
    private readonly dev: DevStack,
    client: AloftClient,
    options: SimOptions = {},
  ) {
    this.visibilityMs = options.visibilityMs ?? 300_000;
    this.maxReceiveCount = options.maxReceiveCount ?? 5;
    this.clock = Date.now();
    const rt = runtime();
    const now = rt.now;
    rt.now = () => this.clock;
    this.undo.push(
      () => void (rt.now = now),
      captureSends(rt.sqs, this.sink, "sim-capture", (c) => this.crashSend?.(c) ?? false),
      captureSends(client.rt.sqs, this.sink, "sim-capture-client"),
      addMiddleware(rt.ddb, "sim-count-dynamo", (args, next) => {
        this.dynamoCalls++;
        return next(args);
      }),
    );
  }

  /** Stops capturing and gives the handlers real time back. */
  close(): void {
    for (const u of this.undo.splice(0).reverse()) u();
  }

  /** Moves captured sends onto the simulated queues. */
  private collect(): Captured[] {
    const got = this.sink.splice(0);
    for (const c of got)
      this.messages.push({
        queue: c.queue,
        id: `sim-${this.next++}`,
        body: c.body,
        receives: 0,
        visibleAt: this.clock + (c.delaySeconds ?? 0) * 1000,
      });
    return got;
  }

  /** Messages visible now (in the order they became visible), optionally of one queue or matching. */
  visible(pick?: (m: SimMessage) => boolean): SimMessage[] {
    this.collect();
    return this.messages
      .filter((m) => m.visibleAt <= this.clock && (!pick || pick(m)))
      .sort((a, b) => a.visibleAt - b.visibleAt);
  }

  isCoordinator = (m: Pick<SimMessage, "queue">): boolean => m.queue === this.dev.config.coordinatorQueue;

  /** Puts a message on a queue, as another sender would. */
  send(queue: string, body: string): SimMessage {
    const m = { queue, id: `sim-${this.next++}`, body, receives: 0, visibleAt: this.clock };
    this.messages.push(m);
    return m;
  }

  /**
   * Delivers `msgs` in one invocation of their queue's handler (a batch of one queue). Acknowledged
   * messages leave; failed ones (batchItemFailures, or all when the handler throws) come back one
   * visibility timeout later, or dead-letter.
   */
  async deliver(msgs: SimMessage[]): Promise<Invocation> {
    if (!msgs.length) throw new Error("deliver: no messages");
    const queue = msgs[0]!.queue;
    const records = msgs.map((m) => ({
      messageId: m.id,
      body: m.body,
      attributes: { ApproximateReceiveCount: String(m.receives + 1) },
    }));
    for (const m of msgs) m.receives++;
    const handler = this.isCoordinator({ queue }) ? coordinator : executor;
    const calls = this.dynamoCalls;
    let failed: Set<string>;
    try {
      const out = await handler({ Records: records } as unknown as SQSEvent);
      failed = new Set(out.batchItemFailures.map((f) => f.itemIdentifier));
    } catch {
      failed = new Set(msgs.map((m) => m.id));
    }
    const sent = this.collect();
    for (const m of msgs) {
      const at = this.messages.indexOf(m);
      if (!failed.has(m.id)) {
        if (at >= 0) this.messages.splice(at, 1);
        continue;
      }
      if (m.receives >= this.maxReceiveCount) {
        if (at >= 0) this.messages.splice(at, 1);
        this.dead.push(m);
      } else m.visibleAt = this.clock + this.visibilityMs;
    }
    const inv = { queue, messages: msgs, failed: [...failed], sent, dynamoCalls: this.dynamoCalls - calls };
    this.log.push(inv);
    return inv;
  }

  /**
   * Delivers what is visible, a batch of up to 10 of one queue at a time, advancing the clock to
   * the next visible message when none is, until `done` says so or nothing is left (but what
   * `hold` keeps back). Returns whether `done` held (false: the queues drained first).
   */
  async run(
    done: () => Promise<boolean>,
    options: { hold?: (m: SimMessage) => boolean; maxBatches?: number } = {},
  ): Promise<boolean> {
    const free = (m: SimMessage) => !options.hold?.(m);
    const maxBatches = options.maxBatches ?? 5_000;
    for (let i = 0; i < maxBatches; i++) {
      if (await done()) return true;
      let now = this.visible(free);
      if (!now.length) {
        const later = this.messages.filter(free);
        if (!later.length) return done();
        this.clock = Math.max(this.clock, Math.min(...later.map((m) => m.visibleAt)));
        now = this.visible(free);
      }
      const queue = now[0]!.queue;
      await this.deliver(now.filter((m) => m.queue === queue).slice(0, 10));
    }
    throw new Error(`still running after ${maxBatches} batches`);
  }
}
