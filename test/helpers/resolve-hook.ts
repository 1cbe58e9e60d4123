/**
 * A module resolve hook (for `module.register`) that posts each resolved URL to the port it is
 * given as `data.port`: what a process imports, seen from inside it (test/package.test.ts,
 * test/cli-imports.test.ts).
 */
export const RESOLVE_HOOK = `let port;
export function initialize(data) { port = data.port; }
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  port.postMessage(r.url);
  return r;
}
`;
