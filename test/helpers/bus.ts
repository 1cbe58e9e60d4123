/**
 * A simulated SQS over the real handlers, on a fake clock: the local stack (DynamoDB Local, S3 on
 * fauxqs) with its pollers stopped, every SendMessage/SendMessageBatch of the handlers and of the
 * client captured into in-memory queues, and the test choosing what is delivered to which handler,
 * when, how often, and whether the invocation crashes at its k-th AWS call.
 *
 * SQS as modelled: a message keeps its id across redeliveries; a receive makes it invisible for the
 * visibility timeout and counts the receive (ApproximateReceiveCount); an acknowledged message is
 * deleted; a failed one (batchItemFailures, or every message of an invocation that throws or
 * crashes) comes back when its visibility timeout expires; a message received `maxReceiveCount`
 * times without being acknowledged goes to the dead-letter list on its next receive. DelaySeconds
 * delays first visibility. Time is `bus.now` (milliseconds), the handlers' `runtime().now`, and
 * only moves when the test advances it (`advance`, or `tick` for a slow body).
 *
 * Lanes: `bus.lane()` is another bus over the same stack, with its own queues, clock and faults, so
 * independent schedules run side by side (DynamoDB Local is latency-bound). Handler invocations and
 * client calls made through a lane (`deliver`, `within`) see its clock and send to its queues.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { SendMessageBatchRequestEntry } from "@aws-sdk/client-sqs";
import type { SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { handler as coordinator } from "../../lambdas/coordinator.ts";
import { startDevStack } from "../../dev/stack.ts";
import type { DevStack } from "../../dev/stack.ts";
import { handler as executor } from "../../lambdas/executor.ts";
import { runtime } from "../../sdk/aws/runtime.ts";
import { AloftClient } from "../../sdk/aws/client.ts";
import { addMiddleware, InjectedFault } from "./aws-faults.ts";
import type { Fault } from "./aws-faults.ts";

export interface BusMessage {
  /** SQS message id: kept across redeliveries; a duplicate copy gets a new one. */
  id: string;
  queue: string;
  body: string;
  /** Receives so far. */
  receives: number;
  /** Bus time (ms) from which it may be received. */
  visibleAt: number;
  /** Last error of a failed delivery (for dead letters). */
  lastError?: string;
}

/** An AWS call: its command's name and input. */
export interface Call {
  command: string;
  input: Record<string, unknown>;
}

/** A crash of an invocation at its k-th AWS call (1-based) of the kinds `on` selects. */
export interface Crash {
  k: number;
  at: Exclude<Fault, undefined>;
  /** Which calls count: any, SQS sends, or DynamoDB writes. */
  on: "any" | "send" | "write";
  /** Calls at which this crash must not fire (it is then called off): known-broken spots. */
  spare?: (call: Call, at: "before" | "after", prior: readonly Call[]) => boolean;
}

export interface DeliverOptions {
  /** The same messages to this many invocations at once (two coordinators on one batch); default 1. */
  copies?: number;
  /** Crash the invocation (all of them, with copies) at this call: every later call fails too. */
  crash?: Crash;
  /**
   * With copies, only the first crashes; the others finish and acknowledge the messages (a
   * duplicate delivery whose twin died: its acknowledgement deletes what the dead one held).
   */
  crashOne?: boolean;
  /**
   * With crashOne: the others finish (and acknowledge) before the crashing one starts, so what it
   * does before its crash follows what they did (a twin slower than its copy).
   */
  othersFirst?: boolean;
  /**
   * Just before the invocation's k-th AWS call (any kind), run `then` (another delivery, a cancel)
   * and only then make the call: something else happening in the middle of this invocation.
   */
  pause?: { k: number; then: () => Promise<void> };
}

export interface Delivery {
  acked: string[];
  failed: string[];
  crashed: boolean;
  dead: BusMessage[];
}

export interface BusOptions {
  /** Seconds a received message stays invisible; default 300 (many resume latencies). */
  visibilityTimeoutSeconds?: number;
  /** Receives before dead-lettering; default 5 (the CDK construct's default). */
  maxReceiveCount?: number;
}

type Handler = (e: SQSEvent) => Promise<SQSBatchResponse>;

const WRITES = /^(Put|Update|Delete|BatchWrite|TransactWrite)(Item)?Command$/;

/** The faults of one invocation (shared by the copies of a delivery). */
interface Invocation {
  crash: (Crash & { seen: number; fired: boolean }) | undefined;
  pause: DeliverOptions["pause"];
  calls: number;
  /** The calls made so far (before the crash, if any). */
  prior: Call[];
}

/** The lane whose invocation or client call is running, and that invocation. */
const lanes = new AsyncLocalStorage<{ bus: Bus; inv?: Invocation }>();

/** The bus (lane) of the running invocation, if any: for a task body that takes simulated time. */
export const currentBus = (): Bus | undefined => lanes.getStore()?.bus;

export class Bus {
  now = Date.now();
  readonly visibilityMs: number;
  readonly maxReceiveCount: number;
  readonly queues = new Map<string, BusMessage[]>();
  readonly dlq: BusMessage[] = [];
  /** Every message ever sent, in order (bodies), for assertions over what was dispatched. */
  readonly log: { queue: string; body: string; at: number }[] = [];
  readonly client: AloftClient;
  /** Observers of successful AWS calls (command name, input), e.g. to count outcome writes. */
  readonly observers: ((command: string, input: Record<string, unknown>) => void)[] = [];
  /** Observers of every message sent (by a handler, the client or `send`), as it is sent. */
  readonly onSend: ((m: BusMessage) => void)[] = [];
  private seq = 0;
  private readonly undo: (() => void)[] = [];

  private constructor(
    readonly dev: DevStack,
    private readonly opts: BusOptions,
    client?: AloftClient,
  ) {
    this.visibilityMs = (opts.visibilityTimeoutSeconds ?? 300) * 1000;
    this.maxReceiveCount = opts.maxReceiveCount ?? 5;
    for (const q of [dev.config.coordinatorQueue, ...Object.values(dev.config.executorQueues)])
      this.queues.set(q, []);
    if (client) {
      this.client = client;
      return;
    }
    // The first bus installs the hooks; each call goes to the lane it runs in (else this one).
    this.client = new AloftClient(dev.config);
    const rt = runtime();
    const lane = () => lanes.getStore()?.bus ?? this;
    rt.now = () => lane().now;
    this.client.rt.now = () => lane().now;
    for (const sqs of [rt.sqs, this.client.rt.sqs])
      this.undo.push(addMiddleware(sqs, "bus-sqs", (a, n, c) => lane().onSqs(a.input, () => n(a), c)));
    this.undo.push(addMiddleware(rt.ddb, "bus-ddb", (a, n, c) => lane().onDdb(a.input, () => n(a), c, true)));
    // The client's own writes (a cancel) are observed, never crashed.
    this.undo.push(
      addMiddleware(this.client.rt.ddb, "bus-ddb", (a, n, c) => lane().onDdb(a.input, () => n(a), c, false)),
    );
  }

  /** Another bus over the same stack and client, with its own queues, clock and faults. */
  lane(): Bus {
    return new Bus(this.dev, this.opts, this.client);
  }

  /** Runs `fn` (client calls: run, cancel, status) on this lane's clock and queues. */
  within<T>(fn: () => Promise<T>): Promise<T> {
    return lanes.run({ bus: this }, fn);
  }

  /** Starts the local stack (import the task modules first) with its pollers stopped. */
  static async start(opts: BusOptions = {}): Promise<Bus> {
    process.env["POWERTOOLS_LOG_LEVEL"] ??= "SILENT";
    const dev = await startDevStack({ maxReceiveCount: opts.maxReceiveCount ?? 5 });
    await Promise.all(dev.pollers.map((p) => p.stop()));
    return new Bus(dev, opts);
  }

  /** Stops the stack (call it on the first bus; lanes share it). */
  async stop(): Promise<void> {
    this.undo.forEach((u) => u());
    this.client.destroy();
    await this.dev.stop();
  }

  get coordinatorQueue(): string {
    return this.dev.config.coordinatorQueue;
  }

  /** Messages of `queue` (or all queues) visible now, oldest first. */
  visible(queue?: string): BusMessage[] {
    const qs = queue ? [queue] : [...this.queues.keys()];
    return qs.flatMap((q) => this.queues.get(q)!.filter((m) => m.visibleAt <= this.now));
  }

  /** Every message held (visible or not). */
  all(): BusMessage[] {
    return [...this.queues.values()].flat();
  }

  /** Sends a message as SQS would (what the handlers' captured sends do). */
  send(queue: string, body: string, delaySeconds = 0): BusMessage {
    const q = this.queues.get(queue);
    if (!q) throw new Error(`bus: unknown queue ${queue}`);
    const m: BusMessage = {
      id: `b${this.seq++}`,
      queue,
      body,
      receives: 0,
      visibleAt: this.now + delaySeconds * 1000,
    };
    q.push(m);
    this.log.push({ queue, body, at: this.now });
    for (const o of this.onSend) o(m);
    return m;
  }

  /** A second copy of a message with a new id (a standard queue's duplicate delivery). */
  duplicate(m: BusMessage): BusMessage {
    const copy = { ...m, id: `b${this.seq++}`, receives: 0 };
    this.queues.get(m.queue)!.push(copy);
    return copy;
  }

  /** Moves the clock forward by `ms` (a slow body, or waiting). */
  tick(ms: number): void {
    this.now += ms;
  }

  /** Moves the clock to the next time a message becomes visible; false if nothing is held. */
  advance(): boolean {
    const next = Math.min(...this.all().map((m) => m.visibleAt));
    if (!Number.isFinite(next)) return false;
    this.now = Math.max(this.now, next);
    return true;
  }

  /**
   * Receives `msgs` (visible messages of one queue) and hands them to that queue's handler, as one
   * batch (or `copies` batches at once); deletes what was acknowledged, and lets the rest come
   * back after the visibility timeout. Messages received too often go to the dead-letter list.
   */
  async deliver(msgs: readonly BusMessage[], opts: DeliverOptions = {}): Promise<Delivery> {
    const queue = msgs[0]?.queue;
    const held = queue === undefined ? [] : this.queues.get(queue)!;
    const dead: BusMessage[] = [];
    const batch: BusMessage[] = [];
    for (const m of msgs) {
      if (m.queue !== queue || !held.includes(m) || m.visibleAt > this.now)
        throw new Error(`bus: message ${m.id} is not visible on ${queue}`);
      if (m.receives >= this.maxReceiveCount) {
        held.splice(held.indexOf(m), 1);
        this.dlq.push(m);
        dead.push(m);
        continue;
      }
      m.receives++;
      m.visibleAt = this.now + this.visibilityMs;
      batch.push(m);
    }
    if (!batch.length) return { acked: [], failed: [], crashed: false, dead };
    const handler: Handler = queue === this.coordinatorQueue ? coordinator : executor;
    const event = {
      Records: batch.map(
        (m) =>
          ({
            messageId: m.id,
            body: m.body,
            attributes: { ApproximateReceiveCount: String(m.receives) },
          }) as unknown as SQSRecord,
      ),
    } as SQSEvent;
    const invocation = (crash: Crash | undefined, pause: DeliverOptions["pause"]): Invocation => ({
      crash: crash ? { ...crash, seen: 0, fired: false } : undefined,
      pause,
      calls: 0,
      prior: [],
    });
    const shared = invocation(opts.crash, opts.pause);
    const invs = Array.from({ length: opts.copies ?? 1 }, (_, i) =>
      opts.crashOne && i > 0 ? invocation(undefined, undefined) : shared,
    );
    const invoke = (inv: Invocation) =>
      lanes.run({ bus: this, inv }, () => handler(event).catch((e: unknown) => ({ thrown: String(e) })));
    let outs: Awaited<ReturnType<typeof invoke>>[];
    if (opts.crashOne && opts.othersFirst) {
      const others = await Promise.all(invs.slice(1).map(invoke));
      outs = [await invoke(invs[0]!), ...others];
    } else outs = await Promise.all(invs.map(invoke));
    const crashed = shared.crash?.fired ?? false;
    const acked = new Set<string>();
    const errors = new Map<string, string>();
    for (const [i, out] of outs.entries()) {
      if (invs[i]!.crash?.fired || "thrown" in out) continue;
      const failed = new Set((out.batchItemFailures ?? []).map((f) => f.itemIdentifier));
      for (const m of batch) if (!failed.has(m.id)) acked.add(m.id);
      for (const id of failed) errors.set(id, "reported as a batch item failure");
    }
    for (const m of batch) {
      // Deleting a message another delivery already deleted changes nothing (as on SQS): an
      // overlapping delivery of it (one made in the middle of this one) may have acknowledged it.
      if (acked.has(m.id) && held.includes(m)) held.splice(held.indexOf(m), 1);
      else m.lastError = crashed ? "the invocation crashed" : (errors.get(m.id) ?? "the handler threw");
    }
    return {
      acked: [...acked],
      failed: batch.filter((m) => !acked.has(m.id)).map((m) => m.id),
      crashed,
      dead,
    };
  }

  /**
   * Delivers everything, fairly and without faults (each queue's visible messages in tens, oldest
   * first), advancing the clock when nothing is visible, until no message is held or `until` holds
   * (checked between deliveries). Returns the deliveries made; throws after `maxSteps`.
   */
  async drain(until: () => boolean | Promise<boolean> = () => false, maxSteps = 10_000): Promise<number> {
    for (let steps = 0; ; steps++) {
      if (await until()) return steps;
      if (steps >= maxSteps) throw new Error(`bus: not drained after ${maxSteps} deliveries`);
      const q = [...this.queues.keys()].find((k) => this.visible(k).length);
      if (q) await this.deliver(this.visible(q).slice(0, 10));
      else if (!this.advance()) return steps;
    }
  }

  /**
   * Before an AWS call of the running invocation: runs its pause if this is the k-th call, and
   * says whether its crash fires here (after the crash, every call fails: the Lambda is dead).
   */
  private async crashAt(
    kind: "send" | "write" | "read",
    command: string,
    input: Record<string, unknown>,
  ): Promise<Fault> {
    const inv = lanes.getStore()?.inv;
    if (!inv) return undefined;
    const p = inv.pause;
    if (p && ++inv.calls === p.k) {
      inv.pause = undefined;
      // Outside this invocation (its own calls must not count or crash here).
      await lanes.run({ bus: this }, p.then);
    }
    const call = { command, input };
    const prior = inv.prior.slice();
    inv.prior.push(call);
    const c = inv.crash;
    if (!c) return undefined;
    if (c.fired) return "before";
    if (c.on !== "any" && c.on !== kind) return undefined;
    if (++c.seen !== c.k) return undefined;
    if (c.spare?.(call, c.at, prior)) {
      inv.crash = undefined;
      return undefined;
    }
    c.fired = true;
    return c.at;
  }

  private async onSqs(
    input: Record<string, unknown>,
    next: () => Promise<unknown>,
    command: string,
  ): Promise<unknown> {
    const queue = String(input["QueueUrl"]);
    let entries: { body: string; delay: number }[];
    if (command === "SendMessageBatchCommand")
      entries = (input["Entries"] as SendMessageBatchRequestEntry[]).map((e) => ({
        body: e.MessageBody ?? "",
        delay: e.DelaySeconds ?? 0,
      }));
    else if (command === "SendMessageCommand")
      entries = [{ body: String(input["MessageBody"]), delay: Number(input["DelaySeconds"] ?? 0) }];
    else return next();
    const fault = await this.crashAt("send", command, input);
    if (fault === "before") throw new InjectedFault(`injected crash before ${command}`);
    const ids = entries.map((e) => this.send(queue, e.body, e.delay).id);
    if (fault === "after") throw new InjectedFault(`injected crash after ${command}`);
    const output =
      command === "SendMessageCommand"
        ? { MessageId: ids[0], $metadata: {} }
        : {
            Successful: (input["Entries"] as SendMessageBatchRequestEntry[]).map((e, i) => ({
              Id: e.Id,
              MessageId: ids[i],
            })),
            Failed: [],
            $metadata: {},
          };
    return { output, response: {} };
  }

  private async onDdb(
    input: Record<string, unknown>,
    next: () => Promise<unknown>,
    command: string,
    crashable: boolean,
  ): Promise<unknown> {
    const fault = crashable
      ? await this.crashAt(WRITES.test(command) ? "write" : "read", command, input)
      : undefined;
    if (fault === "before") throw new InjectedFault(`injected crash before ${command}`);
    const out = await next();
    for (const o of this.observers) o(command, input);
    if (fault === "after") throw new InjectedFault(`injected crash after ${command}`);
    return out;
  }
}
