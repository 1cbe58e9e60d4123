/**
 * The SQS and S3 emulator fauxqs, in this process, on a loopback port.
 *
 * Built with fauxqs's `buildApp` rather than `startFauxqs`, because `startFauxqs` always listens
 * on 0.0.0.0 and a dev emulator without authentication should not be reachable from the network.
 * fauxqs sends no CORS headers, so a foreign web page's preflight gets no allow-origin; requests
 * naming a non-loopback Host or Origin are refused (dev/loopback.ts).
 */
import { buildApp } from "fauxqs";
import { DEFAULT_LOCAL_REGION } from "./aws-clients.ts";
import { createFauxqsStores, FauxqsPersistence } from "./fauxqs-persistence.ts";
import type { RestoredMessages } from "./fauxqs-persistence.ts";
import { isLoopbackRequest, LOOPBACK_HOST } from "./loopback.ts";

export interface SqsLocalOptions {
  /** Region for requests whose signature names none; signed requests use their own. */
  region?: string;
  /**
   * Keep queue messages and bucket objects in this directory across restarts (snapshots: see
   * dev/fauxqs-persistence.ts for what a hard kill loses). Default: in memory only.
   */
  persistDir?: string;
  /** A port to try first (e.g. the one used before a restart); any free one if it is taken. */
  port?: number;
}

export interface SqsLocal {
  /** `http://127.0.0.1:<port>`. */
  endpoint: string;
  port: number;
  startupMs: number;
  /** Objects restored from `persistDir` at start. */
  restoredObjects: number;
  /**
   * Puts the messages saved in `persistDir` back into the queues of the same names; call once the
   * queues exist again. Without `persistDir`, restores nothing.
   */
  restoreMessages(): RestoredMessages;
  /** Saves a snapshot (when persisting), then closes the server; pending long polls return empty. Idempotent. */
  stop(): Promise<void>;
}

export async function startSqsLocal(options: SqsLocalOptions = {}): Promise<SqsLocal> {
  const started = performance.now();
  const stores = options.persistDir ? await createFauxqsStores() : undefined;
  const persistence =
    options.persistDir && stores ? new FauxqsPersistence(options.persistDir, stores) : undefined;
  const restoredObjects = persistence?.load() ?? 0;
  const app = buildApp({
    logger: false,
    defaultRegion: options.region ?? DEFAULT_LOCAL_REGION,
    ...(stores ? { stores: stores as unknown as NonNullable<Parameters<typeof buildApp>[0]>["stores"] } : {}),
  });
  app.addHook("onRequest", async (request, reply) => {
    if (!isLoopbackRequest(request.headers.host, request.headers.origin)) {
      await reply.code(403).send({ error: "aloft dev serves loopback only (Host and Origin must be local)" });
    }
  });
  await listen(app, options.port);
  const address = app.server.address();
  if (address === null || typeof address !== "object") {
    await app.close();
    throw new Error("fauxqs did not report a TCP address");
  }
  persistence?.startPeriodic();
  let stopping: Promise<void> | undefined;
  return {
    endpoint: `http://${LOOPBACK_HOST}:${address.port}`,
    port: address.port,
    startupMs: Math.round(performance.now() - started),
    restoredObjects,
    restoreMessages: () => persistence?.restoreMessages() ?? { restored: 0, dropped: {} },
    stop() {
      stopping ??= (async () => {
        persistence?.stopPeriodic();
        try {
          persistence?.save();
        } finally {
          await app.close();
        }
      })();
      return stopping;
    },
  };
}

/** On `port` if given and free, else on any free port. */
async function listen(app: ReturnType<typeof buildApp>, port: number | undefined): Promise<void> {
  if (port !== undefined) {
    try {
      await app.listen({ port, host: LOOPBACK_HOST });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE") throw err;
    }
  }
  await app.listen({ port: 0, host: LOOPBACK_HOST });
}
