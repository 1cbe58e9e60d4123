/**
 * Loopback-only serving for the local stack. Listening on 127.0.0.1 keeps other machines out; the
 * Host check keeps out web pages that rebind their own DNS name to 127.0.0.1 (their requests would
 * otherwise be same-origin to the browser, needing no CORS permission). The same rule is written
 * in Java for DynamoDB Local (dev/java/AloftDynamoDbLocal.java).
 */

/** The one interface the emulators listen on. */
export const LOOPBACK_HOST = "127.0.0.1";

/** Whether a Host header (name, optional port) names this machine's loopback. */
export function isLoopbackHost(header: string | undefined): boolean {
  if (!header) return false;
  let host = header.toLowerCase();
  if (host.startsWith("[")) host = host.slice(1, host.indexOf("]"));
  else host = host.replace(/:\d*$/, "");
  return host === "127.0.0.1" || host === "::1" || host === "localhost" || host.endsWith(".localhost");
}
