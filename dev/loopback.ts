/**
 * Loopback-only serving for the local stack. Listening on 127.0.0.1 keeps other machines out. Web
 * pages in a browser here are kept out by two header checks, written again in Java for DynamoDB
 * Local (dev/java/AloftDynamoDbLocal.java):
 * - Host must name loopback: a page that rebinds its own DNS name to 127.0.0.1 sends its own name
 *   (its requests would otherwise be same-origin to the browser, needing no CORS permission);
 * - Origin, when present, must be a loopback origin: browsers send it with every cross-origin
 *   request, including the "simple" ones no preflight guards (a form POST of text/plain), while
 *   the AWS SDKs never send it.
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

/** Whether a request with these headers may be served: see the file comment. */
export function isLoopbackRequest(host: string | undefined, origin: string | undefined): boolean {
  if (!isLoopbackHost(host)) return false;
  if (origin === undefined) return true;
  try {
    return isLoopbackHost(new URL(origin).host);
  } catch {
    return false; // "null" (sandboxed frames, file: pages) and anything unparsable
  }
}
