/**
 * Runs one schedule of the model test (test/aws-model.property.test.ts) on its own lane and prints
 * its trace and any violation: `CASE='[tree, steps]' ALOFT_MODEL_TRACE=1 node --import tsx
 * test/helpers/one-schedule.ts`, with a counterexample as the test prints it (`__proto__:null,`
 * removed). Without CASE, the last of the regression examples. A schedule with twin deliveries
 * may not fail every time: which twin writes first is a race.
 */
import { Bus, currentBus } from "./bus.ts";
import * as m from "../fixtures/model-tasks.ts";
import type { Spec } from "../fixtures/model-tasks.ts";
import { enabledFaults, examples } from "./model-arbs.ts";
import type { Step } from "./model-arbs.ts";
import { runSchedule } from "./model-run.ts";

const bus = await Bus.start({ visibilityTimeoutSeconds: 300 });
m.clock.tick = (ms) => currentBus()!.tick(ms);
const [spec, steps] = process.env["CASE"]
  ? (JSON.parse(process.env["CASE"]) as [Spec, Step[]])
  : examples(enabledFaults()).at(-1)!;
const o = await runSchedule(bus, spec, steps, `one-${process.pid}`, undefined);
console.log(o.violations.length ? o.violations.join("\n") : "ok: every invariant held");
await bus.stop();
process.exitCode = o.violations.length ? 1 : 0;
