/** The semantic suite on the embedded engine (in-memory store, bodies on the main thread). */
import { getEngine, init } from "aloft";
import { recover, run } from "../../sdk/run.ts";
import { shutdown } from "../../sdk/run.ts";
import { semanticSuite } from "./suite.ts";

semanticSuite(async () => {
  await init({ store: ":memory:", workers: 0 });
  const engine = await getEngine();
  return {
    name: "local",
    run,
    recover,
    replays: async (id) => engine.replays.get(id) ?? 0,
    close: shutdown,
  };
});
