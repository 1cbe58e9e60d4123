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
