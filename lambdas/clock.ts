/**
 * Time as the handlers' visibility lease sees it: a clock and one-shot timers. The real one is
 * Date.now and setTimeout; tests pass a virtual one so a lease of 60 s, heartbeats every 20 s and
 * tasks running minutes play out at those ratios without waiting minutes.
 */
import type { Clock } from "../sdk/core/clock.ts";

export type { Clock };

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};
