/**
 * What the `aloft` command loads (start-up, docs/performance.md): each command loads what it
 * needs, so `aloft --help` loads no engine, store or zod, and `aloft run` no AWS SDK, UI server or
 * the other commands' modules. The modules the main thread resolves are seen from a resolve hook.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, before, describe, it } from "node:test";
import { ROOT, aloft } from "./helpers/cli.ts";
import { RESOLVE_HOOK } from "./helpers/resolve-hook.ts";

describe("aloft loads what the command needs", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "aloft-imports-"));
    writeFileSync(join(dir, "hook.mjs"), RESOLVE_HOOK);
    // Preloaded (--import): registers the hook in the main thread and writes what it saw at exit.
    writeFileSync(
      join(dir, "trace.mjs"),
      `import { register } from "node:module";
import { MessageChannel, isMainThread } from "node:worker_threads";
import { writeFileSync } from "node:fs";
if (isMainThread) {
  const { port1, port2 } = new MessageChannel();
  const urls = [];
  port1.on("message", (u) => urls.push(u));
  port1.unref();
  register("./hook.mjs", { parentURL: import.meta.url, data: { port: port2 }, transferList: [port2] });
  process.on("exit", () => writeFileSync(process.env.ALOFT_TRACE_OUT, urls.join("\\n")));
}
`,
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function loaded(args: string[], name: string): Promise<string[]> {
    const out = join(dir, `${name}.txt`);
    const r = await aloft(args, {
      cwd: dir,
      env: { NODE_OPTIONS: `--import=${pathToFileURL(join(dir, "trace.mjs")).href}`, ALOFT_TRACE_OUT: out },
    });
    assert.equal(r.code, 0, r.stderr);
    // Relative to the checkout, and node_modules/<package> for dependencies.
    return readFileSync(out, "utf8")
      .split("\n")
      .map((u) =>
        u.replace(pathToFileURL(ROOT).href, "").replace(/^file:\/\/.*\/node_modules\//, "node_modules/"),
      );
  }

  const matching = (urls: string[], re: RegExp): string[] => [...new Set(urls.filter((u) => re.test(u)))];

  it("aloft --help loads commander and the command definitions: no engine, store, zod or AWS SDK", async () => {
    const urls = await loaded(["--help"], "help");
    assert.ok(urls.includes("sdk/cli/main.ts"), `the hook saw the CLI (${urls.length} modules)`);
    assert.deepEqual(
      matching(
        urls,
        /^sdk\/(local|aws)\/|^sdk\/run\.ts|node_modules\/(zod|better-sqlite3|cli-progress|@aws-sdk)\//,
      ),
      [],
    );
  });

  it("aloft run loads the engine, and no AWS SDK, UI server or other command's modules", async () => {
    const urls = await loaded(
      ["run", "--json", "--memory", "--workers", "0", join(ROOT, "bench/startup-tasks.ts"), "startup"],
      "run",
    );
    assert.ok(urls.includes("sdk/local/engine.ts"), "the engine is loaded");
    assert.deepEqual(
      matching(
        urls,
        /node_modules\/(@aws-sdk|@smithy|cli-progress)\/|^sdk\/aws\/(client|store|transport)|^sdk\/cli\/(ui\/|aws|doctor|init|logs|render|local-store)/,
      ),
      [],
    );
  });
});
