/**
 * The SQS emulator fauxqs, in this process, on a loopback port.
 *
 * Built with fauxqs's `buildApp` rather than `startFauxqs`, because `startFauxqs` always listens
 * on 0.0.0.0 and a dev emulator without authentication should not be reachable from the network.
 */
import { buildApp } from "fauxqs";
import { DEFAULT_LOCAL_REGION } from "./aws-clients.ts";

export interface SqsLocalOptions {
  /** Region for requests whose signature names none; signed requests use their own. */
  region?: string;
}

export interface SqsLocal {
  /** `http://127.0.0.1:<port>`. */
  endpoint: string;
  port: number;
  startupMs: number;
  /** Closes the server; pending long polls return empty. Idempotent. */
  stop(): Promise<void>;
}

export async function startSqsLocal(options: SqsLocalOptions = {}): Promise<SqsLocal> {
  const started = performance.now();
  const app = buildApp({ logger: false, defaultRegion: options.region ?? DEFAULT_LOCAL_REGION });
  await app.listen({ port: 0, host: "127.0.0.1" }); // any free port
  const address = app.server.address();
  if (address === null || typeof address !== "object") {
    await app.close();
    throw new Error("fauxqs did not report a TCP address");
  }
  let stopping: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    port: address.port,
    startupMs: Math.round(performance.now() - started),
    stop() {
      stopping ??= app.close().then(() => undefined);
      return stopping;
    },
  };
}
