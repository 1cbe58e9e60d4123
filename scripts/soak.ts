/**
 * `npm run soak -- [--seconds N] [--chaos SPEC] [--in-flight N]`: the deployed-shape soak
 * (scripts/soak/run.ts). Exits 1 when any invariant broke.
 */
import { Command, InvalidArgumentError } from "commander";
import { parseChaos } from "../dev/deployed/chaos.ts";
import { soak } from "./soak/run.ts";

const positive = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("expected a whole number of at least 1");
  return n;
};

const opts = new Command("npm run soak --")
  .description(
    "Run the soak stack (scripts/soak/app.ts) in the deployed shape under chaos and check its invariants.",
  )
  .option("--seconds <n>", "how long to keep starting runs", positive, 300)
  .option(
    "--chaos <spec>",
    "faults as fractions, e.g. kill=0.02,throttle=0.05,duplicate=0.1,delay=0.1,seed=7",
    "kill=0.02,throttle=0.05,duplicate=0.1,delay=0.1,seed=7",
  )
  .option("--in-flight <n>", "runs in flight at once", positive, 4)
  .parse()
  .opts<{ seconds: number; chaos: string; inFlight: number }>();

const result = await soak({ seconds: opts.seconds, chaos: parseChaos(opts.chaos), inFlight: opts.inFlight });
process.stdout.write(`${result.summary}\n`);
const broken =
  result.stuck + result.lost + result.duplicated + result.overConcurrency + result.early + result.denials;
process.exitCode = broken ? 1 : 0;
