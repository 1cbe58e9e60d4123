/**
 * Fault injection for the AWS tests: SDK client middleware that fails chosen calls before they
 * reach the service (a crash before the call) or after they succeeded (a crash right after it),
 * or delivers every message twice.
 */
import type { SendMessageBatchRequestEntry } from "@aws-sdk/client-sqs";

interface WithStack {
  middlewareStack: {
    add(mw: unknown, opts: { step: "initialize"; name: string; override?: boolean }): void;
    remove(name: string): boolean;
  };
}

export type Fault = "before" | "after" | undefined;

export class InjectedFault extends Error {
  override name = "InjectedFault";
}

/** Fails calls `decide` picks; returns a function that removes the fault. */
export function inject(
  client: WithStack,
  name: string,
  decide: (command: string, input: Record<string, unknown>) => Fault,
): () => void {
  client.middlewareStack.add(
    (next: (a: { input: Record<string, unknown> }) => Promise<unknown>, context: { commandName?: string }) =>
      async (args: { input: Record<string, unknown> }) => {
        const command = context.commandName ?? "?";
        const f = decide(command, args.input);
        if (f === "before") throw new InjectedFault(`injected fault before ${command}`);
        const out = await next(args);
        if (f === "after") throw new InjectedFault(`injected fault after ${command} succeeded`);
        return out;
      },
    { step: "initialize", name, override: true },
  );
  return () => void client.middlewareStack.remove(name);
}

/** Sends every message a second time (SendMessage and SendMessageBatch). */
export function duplicateSends(client: WithStack, name = "duplicate-sends"): () => void {
  client.middlewareStack.add(
    (next: (a: { input: Record<string, unknown> }) => Promise<unknown>, context: { commandName?: string }) =>
      async (args: { input: Record<string, unknown> }) => {
        const out = await next(args);
        if (context.commandName === "SendMessageBatchCommand") {
          const entries = args.input["Entries"] as SendMessageBatchRequestEntry[];
          await next({
            input: { ...args.input, Entries: entries.map((e) => ({ ...e, Id: `${e.Id}-dup` })) },
          });
        } else if (context.commandName === "SendMessageCommand") await next(args);
        return out;
      },
    { step: "initialize", name, override: true },
  );
  return () => void client.middlewareStack.remove(name);
}

/**
 * A lagging replica: eventually consistent Queries (ConsistentRead not set) of the partitions
 * `pick` names return every other item only, as a replica behind the latest writes may. Counts them.
 */
export function lagReads(
  client: WithStack,
  name: string,
  pick: (pk: string) => boolean,
  counts: { lagged: number; strong: number },
): () => void {
  client.middlewareStack.add(
    (next: (a: { input: Record<string, unknown> }) => Promise<unknown>, context: { commandName?: string }) =>
      async (args: { input: Record<string, unknown> }) => {
        const out = (await next(args)) as { output: { Items?: unknown[]; Count?: number } };
        if (context.commandName !== "QueryCommand") return out;
        const pk = (args.input["ExpressionAttributeValues"] as Record<string, unknown> | undefined)?.[":pk"];
        if (typeof pk !== "string" || !pick(pk)) return out;
        if (args.input["ConsistentRead"]) {
          counts.strong++;
          return out;
        }
        const items = out.output.Items ?? [];
        if (items.length) counts.lagged++;
        const kept = items.filter((_, i) => i % 2 === 0);
        return { ...out, output: { ...out.output, Items: kept, Count: kept.length } };
      },
    { step: "initialize", name, override: true },
  );
  return () => void client.middlewareStack.remove(name);
}

/** Fails the first call of each operation (a throttle or transient error the code must absorb). */
export function failFirstOfEach(client: WithStack, name: string, only?: RegExp): () => void {
  const seen = new Set<string>();
  return inject(client, name, (command) => {
    if (only && !only.test(command)) return undefined;
    if (seen.has(command)) return undefined;
    seen.add(command);
    return "before";
  });
}

/** Counts calls per operation (for assertions and the benchmark). */
export function countCalls(client: WithStack, counts: Map<string, number>, name = "count-calls"): () => void {
  return inject(client, name, (command) => {
    counts.set(command, (counts.get(command) ?? 0) + 1);
    return undefined;
  });
}

/** A message a handler sent, captured instead of reaching SQS. */
export interface Captured {
  queue: string;
  body: string;
  delaySeconds: number | undefined;
}

/**
 * Captures every SendMessage/SendMessageBatch instead of sending it (the test delivers the messages
 * itself, in the order and as often as it likes); a batch `fail` picks fails instead, as if its
 * sender crashed. Other SQS calls go through.
 */
export function captureSends(
  client: WithStack,
  sink: Captured[],
  name = "capture-sends",
  fail?: (c: Captured) => boolean,
): () => void {
  client.middlewareStack.add(
    (next: (a: { input: Record<string, unknown> }) => Promise<unknown>, context: { commandName?: string }) =>
      async (args: { input: Record<string, unknown> }) => {
        const queue = String(args.input["QueueUrl"]);
        if (context.commandName === "SendMessageBatchCommand") {
          const entries = args.input["Entries"] as SendMessageBatchRequestEntry[];
          const first = { queue, body: entries[0]?.MessageBody ?? "", delaySeconds: undefined };
          if (fail?.(first)) throw new InjectedFault("injected crash before SendMessageBatchCommand");
          for (const e of entries)
            sink.push({ queue, body: e.MessageBody ?? "", delaySeconds: e.DelaySeconds });
          return {
            output: {
              Successful: entries.map((e) => ({ Id: e.Id, MessageId: e.Id })),
              Failed: [],
              $metadata: {},
            },
            response: {},
          };
        }
        if (context.commandName === "SendMessageCommand") {
          const d = args.input["DelaySeconds"] as number | undefined;
          sink.push({ queue, body: String(args.input["MessageBody"]), delaySeconds: d });
          return { output: { MessageId: "captured", $metadata: {} }, response: {} };
        }
        return next(args);
      },
    { step: "initialize", name, override: true },
  );
  return () => void client.middlewareStack.remove(name);
}

/**
 * Holds each call `pick` selects until a second one arrives (or `ms` pass), then lets both go: two
 * concurrent callers are forced to interleave at that point (both read before either writes).
 */
export function pairUp(
  client: WithStack,
  name: string,
  pick: (command: string, input: Record<string, unknown>) => boolean,
  ms = 40,
): () => void {
  let waiting: (() => void) | undefined;
  client.middlewareStack.add(
    (next: (a: { input: Record<string, unknown> }) => Promise<unknown>, context: { commandName?: string }) =>
      async (args: { input: Record<string, unknown> }) => {
        if (pick(context.commandName ?? "?", args.input)) {
          if (waiting) {
            const release = waiting;
            waiting = undefined;
            release();
          } else {
            await new Promise<void>((resolve) => {
              const timer = setTimeout(() => {
                waiting = undefined;
                resolve();
              }, ms);
              waiting = () => {
                clearTimeout(timer);
                resolve();
              };
            });
          }
        }
        return next(args);
      },
    { step: "initialize", name, override: true },
  );
  return () => void client.middlewareStack.remove(name);
}

/** Counts calls `pick` selects that failed with an error named `errorName` (e.g. lost conditional writes). */
export function countFailures(
  client: WithStack,
  name: string,
  errorName: string,
  pick: (command: string, input: Record<string, unknown>) => boolean,
): { readonly count: number; undo(): void } {
  const state = { count: 0 };
  client.middlewareStack.add(
    (next: (a: { input: Record<string, unknown> }) => Promise<unknown>, context: { commandName?: string }) =>
      async (args: { input: Record<string, unknown> }) => {
        try {
          return await next(args);
        } catch (e) {
          if ((e as Error).name === errorName && pick(context.commandName ?? "?", args.input)) state.count++;
          throw e;
        }
      },
    { step: "initialize", name, override: true },
  );
  return {
    get count() {
      return state.count;
    },
    undo: () => void client.middlewareStack.remove(name),
  };
}
