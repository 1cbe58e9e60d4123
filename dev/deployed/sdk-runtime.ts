/**
 * The AWS SDK as the Lambda runtime provides it: a folder of its own holding only `@aws-sdk/*`
 * and the packages they depend on (copied, not linked, so nothing resolves back into the project's
 * node_modules), and a per-function folder laid out as Lambda lays it out — `task/` (the asset)
 * beside `node_modules/` (the runtime's SDK) — so the bundle finds the SDK and nothing else.
 */
import { createHash } from "node:crypto";
import {
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const PROJECT_MODULES = fileURLToPath(new URL("../../node_modules/", import.meta.url));

interface PackageJson {
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

function readPackage(dir: string): PackageJson {
  return JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as PackageJson;
}

/** Top-level package names `@aws-sdk/*` need, with the versions found (a nested copy travels with its parent). */
export function sdkClosure(modules = PROJECT_MODULES): Map<string, string> {
  const found = new Map<string, string>();
  const visit = (pkgDir: string): void => {
    const pkg = readPackage(pkgDir);
    for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) {
      // A dependency nested under its dependent is copied along with it; its own deps still count.
      const nested = join(pkgDir, "node_modules", dep);
      if (existsSync(join(nested, "package.json"))) {
        visit(nested);
        continue;
      }
      const top = join(modules, dep);
      if (found.has(dep) || !existsSync(join(top, "package.json"))) continue;
      found.set(dep, readPackage(top).version ?? "?");
      visit(top);
    }
  };
  for (const name of readdirSync(join(modules, "@aws-sdk"))) {
    const dir = join(modules, "@aws-sdk", name);
    if (!existsSync(join(dir, "package.json")) || found.has(`@aws-sdk/${name}`)) continue;
    found.set(`@aws-sdk/${name}`, readPackage(dir).version ?? "?");
    visit(dir);
  }
  return found;
}

/**
 * The runtime's `node_modules`, built once per set of package versions under the system's temp
 * folder and reused; returns its path.
 */
export function sdkRuntime(modules = PROJECT_MODULES): string {
  const closure = sdkClosure(modules);
  const digest = createHash("sha256")
    .update(JSON.stringify([...closure].sort()))
    .digest("hex")
    .slice(0, 16);
  const dir = join(tmpdir(), `aloft-lambda-runtime-${digest}`, "node_modules");
  if (existsSync(join(dir, ".complete"))) return dir;
  const tmp = `${dir}.${process.pid}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  for (const name of closure.keys()) {
    mkdirSync(dirname(join(tmp, name)), { recursive: true });
    cpSync(join(modules, name), join(tmp, name), { recursive: true, dereference: true });
  }
  cpSync(join(modules, "..", "package-lock.json"), join(tmp, ".complete"), { errorOnExist: false });
  mkdirSync(dirname(dir), { recursive: true });
  try {
    renameSync(tmp, dir);
  } catch (e) {
    // Another harness built it meanwhile: use theirs.
    rmSync(tmp, { recursive: true, force: true });
    if (!existsSync(join(dir, ".complete"))) throw e;
  }
  return dir;
}

/** Lays out `<root>/<name>/task` (a copy of the asset) beside `<root>/<name>/node_modules` (the runtime's SDK). */
export function functionRoot(root: string, name: string, asset: string, runtimeModules: string): string {
  const dir = join(root, name);
  cpSync(asset, join(dir, "task"), { recursive: true });
  symlinkSync(runtimeModules, join(dir, "node_modules"), "dir");
  return join(dir, "task");
}
