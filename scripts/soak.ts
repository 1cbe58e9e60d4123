/**
 * `npm run soak -- [--seconds N] [--chaos SPEC] [--in-flight N]`: the deployed-shape soak
 * (scripts/soak/run.ts). Exits 1 when any invariant broke.
 */
import { parseArgs } from "node:util";
import { parseChaos } from "../dev/deployed/chaos.ts";
import { soak } from "./soak/run.ts";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "300" },
    chaos: { type: "string", default: "kill=0.02,throttle=0.05,duplicate=0.1,delay=0.1,seed=7" },
    "in-flight": { type: "string", default: "4" },
  },
});
const result = await soak({
  seconds: Number(values.seconds),
  chaos: parseChaos(values.chaos),
  inFlight: Number(values["in-flight"]),
});
process.stdout.write(`${result.summary}\n`);
const broken = result.stuck + result.lost + result.duplicated + result.overConcurrency + result.denials;
process.exitCode = broken ? 1 : 0;
