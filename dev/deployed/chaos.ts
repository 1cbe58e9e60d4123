/**
 * `--chaos kill=0.02,throttle=0.05,duplicate=0.1,delay=0.1,seed=7`: the faults a deployment sees,
 * each a fraction (0..1), drawn from one seeded generator so a run can be repeated.
 */
import { z } from "zod";
import { ConfigurationError } from "../../sdk/errors.ts";

const fraction = z.number().min(0).max(1);
const specSchema = z.strictObject({
  /** Invocations whose sandbox is SIGKILLed at a random point inside them. */
  kill: fraction.default(0),
  /** AWS requests from sandboxes answered with the service's throttling or 5xx error. */
  throttle: fraction.default(0),
  /** SQS messages delivered twice, to two concurrent invocations. */
  duplicate: fraction.default(0),
  /** SQS messages held back (made visible again later) for a random time, reordering them. */
  delay: fraction.default(0),
  seed: z.number().int().nonnegative().default(1),
});

export type ChaosSpec = z.infer<typeof specSchema>;
export type FaultKind = "kills" | "throttles" | "duplicates" | "delays";

export function parseChaos(text: string): ChaosSpec {
  const raw: Record<string, number> = {};
  for (const part of text.split(",").filter(Boolean)) {
    const [key, value, extra] = part.split("=");
    const n = Number(value);
    if (!key || value === undefined || extra !== undefined || value === "" || !Number.isFinite(n))
      throw new ConfigurationError(`--chaos: "${part}" is not key=number (e.g. kill=0.02,seed=7)`);
    raw[key.trim()] = n;
  }
  const parsed = specSchema.safeParse(raw);
  if (!parsed.success)
    throw new ConfigurationError(
      `--chaos ${text}: ${parsed.error.issues.map((i) => `${i.path.join(".") || "spec"}: ${i.message}`).join("; ")} ` +
        `(keys: kill, throttle, duplicate, delay as fractions 0..1, seed as an integer)`,
    );
  return parsed.data;
}

/** The fault source: a seeded generator (mulberry32) and the count of each fault injected. */
export class Chaos {
  readonly spec: ChaosSpec;
  readonly counts: Record<FaultKind, number> = { kills: 0, throttles: 0, duplicates: 0, delays: 0 };
  private state: number;

  constructor(spec: Partial<ChaosSpec> = {}) {
    this.spec = specSchema.parse(spec);
    this.state = this.spec.seed >>> 0;
  }

  /** Uniform in [0, 1). */
  random(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Whether to inject a fault of `kind` now (with its fraction); counts it when so. */
  roll(kind: Exclude<FaultKind, "kills">): boolean {
    const p = { throttles: this.spec.throttle, duplicates: this.spec.duplicate, delays: this.spec.delay }[
      kind
    ];
    if (p <= 0 || this.random() >= p) return false;
    this.counts[kind]++;
    return true;
  }

  /** Whether this invocation is one to kill (counted when the kill happens). */
  rollKill(): boolean {
    return this.spec.kill > 0 && this.random() < this.spec.kill;
  }

  /** An integer in [lo, hi]. */
  between(lo: number, hi: number): number {
    return lo + Math.floor(this.random() * (hi - lo + 1));
  }

  get active(): boolean {
    const s = this.spec;
    return s.kill + s.throttle + s.duplicate + s.delay > 0;
  }

  summary(): string {
    const c = this.counts;
    return `chaos: ${c.kills} kills, ${c.throttles} throttles, ${c.duplicates} duplicates, ${c.delays} delays`;
  }
}
