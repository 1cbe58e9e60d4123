/**
 * The handlers' Lambda bundles: their size, what they carry, and their cold-start import time.
 * Synthesizes the example stack (examples/cdk-tasks.ts) as `cdk synth` does, then imports each
 * function's bundle in fresh Node processes from a directory where only the AWS SDK is beside it,
 * as on the nodejs22.x runtime (the median of several imports is printed).
 *
 *   npm run bench:bundles [-- --runs 7]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { App, Stack } from "aws-cdk-lib";
import { Aloft } from "../cdk/aloft.ts";
import { forbiddenSources, lambdaBundles, lambdaLikeRoot, loadTimes, median } from "./lambda-bundles.ts";

const runsArg = process.argv.indexOf("--runs");
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;
const ROOT = fileURLToPath(new URL("..", import.meta.url));

const outdir = mkdtempSync(join(tmpdir(), "aloft-bundles-"));
const app = new App({ outdir });
await Aloft.fromModule(new Stack(app, "AloftBundles"), "Aloft", {
  entry: join(ROOT, "examples/cdk-tasks.ts"),
});
app.synth();

const root = lambdaLikeRoot(join(ROOT, "node_modules"));
const kib = (n: number): string => `${(n / 1024).toFixed(0)} KiB`;
const rows: string[] = [];
let lean = true;
for (const b of lambdaBundles(outdir)) {
  const ms = loadTimes(b, root, runs);
  const bad = forbiddenSources(b);
  if (bad.length) lean = false;
  const aloftFiles = b.sources.filter((s) => !s.includes("node_modules")).length;
  rows.push(
    `${b.function.padEnd(44)} ${b.export.padEnd(11)} ${kib(b.bytes).padStart(9)} ` +
      `${String(b.sources.length).padStart(7)} ${String(aloftFiles).padStart(6)} ${median(ms).toFixed(0).padStart(7)} ms` +
      (bad.length ? `  carries ${bad.join(", ")}` : ""),
  );
}
process.stdout.write(
  `${"function".padEnd(44)} ${"export".padEnd(11)} ${"index.mjs".padStart(9)} ${"sources".padStart(7)} ${"aloft".padStart(6)} ${"import".padStart(10)}\n` +
    `${rows.join("\n")}\n` +
    `(import: median of ${runs} fresh processes, only @aws-sdk/* beside the bundle; node ${process.version})\n`,
);
rmSync(outdir, { recursive: true, force: true });
rmSync(root, { recursive: true, force: true });
if (!lean) process.exitCode = 1;
