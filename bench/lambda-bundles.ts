/**
 * The Lambda bundles of a synthesized Aloft stack, as the construct built them (cdk.out assets):
 * which function runs which bundle and export, what went into each bundle (its source map's
 * sources), and loading one as Lambda does, in a fresh process, from a directory where only the
 * AWS SDK (the nodejs22.x runtime's own) can be resolved beside it. Used by bench/bundles.ts and
 * test/package.test.ts.
 */
import { execFileSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface LambdaBundle {
  /** The function's logical id in the template. */
  function: string;
  /** The asset directory (cdk.out/asset.<hash>). */
  dir: string;
  /** The export the function's handler names (`index.<export>`). */
  export: string;
  /** index.mjs in bytes. */
  bytes: number;
  /** The source files bundled in, as the source map lists them. */
  sources: string[];
}

interface Template {
  Resources: Record<string, { Type: string; Properties?: { Handler?: string; Code?: { S3Key?: unknown } } }>;
}

/** Every Node.js function of the stacks in `cdkOut` whose code is a bundled asset. */
export function lambdaBundles(cdkOut: string): LambdaBundle[] {
  const out: LambdaBundle[] = [];
  for (const file of readdirSync(cdkOut).filter((f) => f.endsWith(".template.json"))) {
    const t = JSON.parse(readFileSync(join(cdkOut, file), "utf8")) as Template;
    for (const [id, r] of Object.entries(t.Resources)) {
      // A bundled asset's S3 key is `<hash>.zip`, staged in cdk.out as `asset.<hash>`.
      const key = r.Properties?.Code?.S3Key;
      const handler = r.Properties?.Handler;
      if (r.Type !== "AWS::Lambda::Function" || typeof key !== "string" || !handler?.startsWith("index."))
        continue;
      const dir = join(cdkOut, `asset.${key.replace(/\.zip$/, "")}`);
      const bundle = join(dir, "index.mjs");
      if (!existsSync(bundle)) continue;
      const map = join(dir, "index.mjs.map");
      const sources = existsSync(map)
        ? (JSON.parse(readFileSync(map, "utf8")) as { sources: string[] }).sources
        : [];
      out.push({
        function: id,
        dir,
        export: handler.slice("index.".length),
        bytes: statSync(bundle).size,
        sources,
      });
    }
  }
  return out;
}

/**
 * A directory for loading bundles as on Lambda: `node_modules` holds only links to the `@aws-sdk`
 * packages of `nodeModules` (their own dependencies resolve from where those packages really are).
 */
export function lambdaLikeRoot(nodeModules: string): string {
  const root = mkdtempSync(join(tmpdir(), "aloft-lambda-"));
  mkdirSync(join(root, "node_modules", "@aws-sdk"), { recursive: true });
  for (const name of readdirSync(join(nodeModules, "@aws-sdk"))) {
    symlinkSync(join(nodeModules, "@aws-sdk", name), join(root, "node_modules", "@aws-sdk", name), "dir");
  }
  return root;
}

/** What a handler's cold start reads: a stack's configuration (never contacted while loading). */
const LAMBDA_ENV = {
  AWS_REGION: "us-east-1",
  AWS_ACCESS_KEY_ID: "x",
  AWS_SECRET_ACCESS_KEY: "x",
  AWS_LAMBDA_FUNCTION_NAME: "bench",
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
};

const LOAD = `
const t = performance.now();
const m = await import(process.argv[1]);
const ms = performance.now() - t;
if (typeof m[process.argv[2]] !== "function") throw new Error("the bundle exports no function " + process.argv[2]);
process.stdout.write(JSON.stringify({ ms }));
`;

/**
 * Copies the bundle into `root` and imports it `times` times, each in a fresh Node process; returns
 * the import times in ms. Throws (with the process's stderr) if the bundle does not load or lacks
 * its handler export.
 */
export function loadTimes(b: LambdaBundle, root: string, times: number): number[] {
  const dir = join(root, `fn-${b.function}`);
  rmSync(dir, { recursive: true, force: true });
  cpSync(b.dir, dir, { recursive: true });
  const ms: number[] = [];
  for (let i = 0; i < times; i++) {
    const out = execFileSync(
      process.execPath,
      ["--input-type=module", "-e", LOAD, join(dir, "index.mjs"), b.export],
      {
        cwd: dir,
        env: { PATH: process.env["PATH"] ?? "", ...LAMBDA_ENV },
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    ms.push((JSON.parse(out) as { ms: number }).ms);
  }
  return ms;
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};

/** Sources that must never be in a handler's bundle: the embedded engine, the CLI, the CDK. */
export const FORBIDDEN_IN_BUNDLES = [
  /sdk\/local\//,
  /sdk\/cli\//,
  /\/cdk\//,
  /better-sqlite3/,
  /aws-cdk-lib/,
  /commander/,
  /cli-progress/,
  /\/dev\//,
  // What reads logs and shows runs (aloft logs --aws, aloft ui) is the CLI's, never a handler's.
  /client-cloudwatch-logs/,
  /sdk\/aws\/cloudwatch-logs/,
  /\/preact\//,
  /^ui\/|\/ui\//,
  /esbuild/,
  /playwright/,
];

/** The forbidden sources a bundle holds (empty when lean). */
export function forbiddenSources(b: LambdaBundle): string[] {
  return b.sources.filter((s) => FORBIDDEN_IN_BUNDLES.some((re) => re.test(s)));
}
