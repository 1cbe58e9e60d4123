/** `aloft ui`: the server over the local store or a stack, until interrupted. */
import { resolve } from "node:path";
import { ConfigurationError } from "../../errors.ts";
import { interrupted } from "../../../dev/announce.ts";
import { startUiServer } from "./server.ts";
import type { UiServer } from "./server.ts";
import type { UiSource } from "./source.ts";

export const DEFAULT_UI_PORT = 7433;

async function source(o: { store: string; aws?: boolean; outputs?: string }): Promise<UiSource> {
  if (o.aws) {
    const { awsClient } = await import("../aws.ts");
    const { AwsSource } = await import("./aws-source.ts");
    return new AwsSource(awsClient(o));
  }
  const { LocalSource } = await import("./local-source.ts");
  return new LocalSource(resolve(o.store));
}

export async function serveUi(o: {
  store: string;
  port?: string;
  aws?: boolean;
  outputs?: string;
}): Promise<void> {
  const port = o.port === undefined ? DEFAULT_UI_PORT : Number(o.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new ConfigurationError(`--port must be a port number (0 for any free one), got ${o.port}`);
  const src = await source(o);
  let server: UiServer;
  try {
    server = await startUiServer(src, port);
  } catch (e) {
    // The default port taken (another aloft ui): any free one, unless the user asked for this one.
    if ((e as NodeJS.ErrnoException).code !== "EADDRINUSE" || o.port !== undefined) {
      src.close();
      throw e;
    }
    server = await startUiServer(src, 0);
  }
  process.stdout.write(`aloft ui: ${server.url}\n`);
  await interrupted();
  await server.close();
}
