/**
 * Virtual time for the visibility tests: a Clock (lambdas/clock.ts) whose timers fire only when the
 * test advances it. `installAsDateNow` also makes it the process's Date.now, so fauxqs — which runs
 * in this process and times visibility with Date.now — sees the same minutes pass.
 */
import { setImmediate as turn } from "node:timers/promises";
import type { Clock } from "../../lambdas/clock.ts";

interface Timer {
  at: number;
  fn: () => void;
}

export class VirtualClock implements Clock {
  private t: number;
  private seq = 0;
  private readonly timers = new Map<number, Timer>();
  private readonly settle: () => Promise<void>;

  /** `settle` resolves once the work a timer started (real requests to the emulator) is done. */
  constructor(settle: () => Promise<void> = () => turn().then(() => undefined)) {
    this.settle = settle;
    this.t = Date.now();
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): number {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.setTimeout(resolve, ms));
  }

  /** Moves time forward by `ms`, firing due timers in order and letting their work finish. */
  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    for (;;) {
      let next: [number, Timer] | undefined;
      for (const e of this.timers) if (e[1].at <= target && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
      await this.settle();
    }
    this.t = target;
    await this.settle();
  }

  /** A sandbox dies: every timer it had (its heartbeat, its task's sleeps) is gone. */
  dropAll(): void {
    this.timers.clear();
  }

  /** Makes this clock the process's Date.now; returns the undo. */
  installAsDateNow(): () => void {
    const real = Date.now;
    Date.now = () => this.t;
    return () => void (Date.now = real);
  }
}
