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

/** A call's arguments at the initialize step: the command's input. */
interface Args {
  input: Record<string, unknown>;
}

/** The rest of the stack: sends the call (with these or other arguments) and returns its result. */
type Next = (args: Args) => Promise<unknown>;

/** Middleware as this file writes it: the call's arguments, the rest of the stack, the command's name. */
type Middleware = (args: Args, next: Next, command: string) => Promise<unknown>;

/** Adds `fn` at the initialize step under `name` (replacing one of that name); returns its undo. */
export function addMiddleware(client: WithStack, name: string, fn: Middleware): () => void {
  client.middlewareStack.add(
    (next: Next, context: { commandName?: string }) => (args: Args) =>
      fn(args, next, context.commandName ?? "?"),
    { step: "initialize", name, override: true },
  );
  return () => void client.middlewareStack.remove(name);
}

export type Fault = "before" | "after" | undefined;

export class InjectedFault extends Error {
  override name = "InjectedFault";
}

/** Removes a fault; `injected` counts the calls it failed so far. */
export interface Injected {
  (): void;
  readonly injected: number;
}

/** Fails calls `decide` picks; returns a function that removes the fault (and counts the failures). */
export function inject(
  client: WithStack,
  name: string,
  decide: (command: string, input: Record<string, unknown>) => Fault,
): Injected {
  let injected = 0;
  const undo = addMiddleware(client, name, async (args, next, command) => {
    const f = decide(command, args.input);
    if (f === "before") {
      injected++;
      throw new InjectedFault(`injected fault before ${command}`);
    }
    const out = await next(args);
    if (f === "after") {
      injected++;
      throw new InjectedFault(`injected fault after ${command} succeeded`);
    }
    return out;
  });
  return Object.defineProperty(undo, "injected", { get: () => injected }) as Injected;
}

/** Sends every message a second time (SendMessage and SendMessageBatch). */
export function duplicateSends(client: WithStack, name = "duplicate-sends"): () => void {
  return addMiddleware(client, name, async (args, next, command) => {
    const out = await next(args);
    if (command === "SendMessageBatchCommand") {
      const entries = args.input["Entries"] as SendMessageBatchRequestEntry[];
      await next({
        input: { ...args.input, Entries: entries.map((e) => ({ ...e, Id: `${e.Id}-dup` })) },
      });
    } else if (command === "SendMessageCommand") await next(args);
    return out;
  });
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
  return addMiddleware(client, name, async (args, next, command) => {
    const out = (await next(args)) as { output: { Items?: unknown[]; Count?: number } };
    if (command !== "QueryCommand") return out;
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
  });
}

/** Fails the first call of each operation (a throttle or transient error the code must absorb). */
export function failFirstOfEach(client: WithStack, name: string, only?: RegExp): Injected {
  const seen = new Set<string>();
  return inject(client, name, (command) => {
    if (only && !only.test(command)) return undefined;
    if (seen.has(command)) return undefined;
    seen.add(command);
    return "before";
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
  return addMiddleware(client, name, async (args, next, command) => {
    const queue = String(args.input["QueueUrl"]);
    if (command === "SendMessageBatchCommand") {
      const entries = args.input["Entries"] as SendMessageBatchRequestEntry[];
      const first = { queue, body: entries[0]?.MessageBody ?? "", delaySeconds: undefined };
      if (fail?.(first)) throw new InjectedFault("injected crash before SendMessageBatchCommand");
      for (const e of entries) sink.push({ queue, body: e.MessageBody ?? "", delaySeconds: e.DelaySeconds });
      return {
        output: {
          Successful: entries.map((e) => ({ Id: e.Id, MessageId: e.Id })),
          Failed: [],
          $metadata: {},
        },
        response: {},
      };
    }
    if (command === "SendMessageCommand") {
      const d = args.input["DelaySeconds"] as number | undefined;
      sink.push({ queue, body: String(args.input["MessageBody"]), delaySeconds: d });
      return { output: { MessageId: "captured", $metadata: {} }, response: {} };
    }
    return next(args);
  });
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
  return addMiddleware(client, name, async (args, next, command) => {
    if (pick(command, args.input)) {
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
  });
}

/** Counts calls `pick` selects that failed with an error named `errorName` (e.g. lost conditional writes). */
export function countFailures(
  client: WithStack,
  name: string,
  errorName: string,
  pick: (command: string, input: Record<string, unknown>) => boolean,
): { readonly count: number; undo(): void } {
  const state = { count: 0 };
  const undo = addMiddleware(client, name, async (args, next, command) => {
    try {
      return await next(args);
    } catch (e) {
      if ((e as Error).name === errorName && pick(command, args.input)) state.count++;
      throw e;
    }
  });
  return {
    get count() {
      return state.count;
    },
    undo,
  };
}
