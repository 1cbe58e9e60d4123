/**
 * `group(name, body)`: child calls made inside `body` are shown together in the status tree and UI.
 * The group is part of each call's identity, so it must be deterministic too.
 */
import { currentScope, scopeStorage } from "./core/state.ts";

export function groupPath(parent: string, name: string): string {
  return parent ? `${parent}/${name}` : name;
}

/**
 * @example
 * const cleaned = await group("clean", () => Promise.all(files.map((f) => clean(f))));
 */
export function group<T>(name: string, body: () => T): T {
  const scope = currentScope();
  if (!scope) return body();
  return scopeStorage.run({ ...scope, group: groupPath(scope.group, name) }, body);
}
