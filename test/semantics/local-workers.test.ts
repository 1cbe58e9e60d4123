/** The semantic suite on the embedded engine with a worker pool and a SQLite file store. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getEngine, init } from "aloft";
import { recover, run, shutdown } from "../../sdk/run.ts";
import { semanticSuite } from "./suite.ts";

semanticSuite(async () => {
  const dir = mkdtempSync(join(tmpdir(), "aloft-store-"));
  await init({ store: join(dir, "aloft.db"), workers: 2 });
  const engine = await getEngine();
  return {
    name: "local-workers",
    run,
    recover,
    replays: async (id) => engine.replays.get(id) ?? 0,
    close: async () => {
      await shutdown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
