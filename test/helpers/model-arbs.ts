/**
 * What the schedule-exploring property test draws: task trees (test/fixtures/model-tasks.ts) and
 * schedules — which queue and which of its visible messages are delivered next, duplicated (two
 * invocations at once, or a copy with a new id), crashed at the k-th AWS call, a clock jump past the
 * visibility timeout, a cancel of the run — with the fault kinds ALOFT_MODEL_FAULTS enables.
 */
import fc from "fast-check";
import type { Crash } from "./bus.ts";
import type { Spec } from "../fixtures/model-tasks.ts";

/** Every fault kind a schedule may contain. */
export const FAULT_KINDS = [
  "dup-same", // the same messages to two invocations at once (two coordinators on one batch)
  "dup-copy", // a copy of a message with a new id (a standard queue's duplicate)
  "dup-twin", // the same messages to two invocations at once, one crashing, the other acknowledging
  "cut-send", // a crash before or right after the k-th SQS send: a send loop cut after any request
  "crash-write", // a crash before or right after the k-th DynamoDB write
  "crash-any", // a crash before the k-th AWS call of any kind (reads included)
  "wait", // the clock jumps past the visibility timeout while other messages are still queued
  "interleave", // another delivery made in the middle of an invocation, before its k-th AWS call
  "cancel", // the run is cancelled between deliveries
  "cancel-mid", // the run is cancelled in the middle of an invocation, before its k-th AWS call
  "timeout", // leaves that overrun their timeout (timed out, retried, TIMED_OUT)
  "parent-deadline", // parents with a 600 s timeout, whose deadline may fire while faults delay them
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** A crash spot or fault kind that breaks today's code (issue 8): left out unless enabled. */
export interface KnownBroken {
  name: string;
  /** What it breaks, and the minimal schedule found (test/aws-model.property.test.ts header). */
  why: string;
  /** A whole fault kind left out... */
  kind?: FaultKind;
  /** ...or only crashes at these calls (the crash is called off there). */
  spare?: NonNullable<Crash["spare"]>;
}

/**
 * None today: every kind the model found broken (a lost retry, partial dispatch, a cancel or a
 * parent's deadline before its first commit, a resume dying between its calls and its commit) is
 * fixed and runs by default. A new one goes here, with its minimal schedule, until it is fixed.
 */
export const KNOWN_BROKEN: KnownBroken[] = [];

export interface Faults {
  kinds: Set<FaultKind>;
  /** Crash spots called off (known broken, not enabled). */
  spare: Crash["spare"];
  /** Names of the known-broken entries left out. */
  off: string[];
}

/**
 * What ALOFT_MODEL_FAULTS enables: `all` (every kind and crash spot), a comma list of fault kinds
 * and known-broken names (those added to the default), or by default every fault kind with the
 * known-broken ones left out.
 */
export function enabledFaults(env = process.env["ALOFT_MODEL_FAULTS"]): Faults {
  const named = env === "all" ? [...FAULT_KINDS, ...KNOWN_BROKEN.map((k) => k.name)] : (env ?? "").split(",");
  const valid = new Set<string>([...FAULT_KINDS, ...KNOWN_BROKEN.map((k) => k.name)]);
  for (const n of named.map((x) => x.trim()).filter(Boolean))
    if (!valid.has(n))
      throw new Error(`ALOFT_MODEL_FAULTS: unknown ${n}; valid: all, ${[...valid].join(", ")}`);
  const on = new Set(named.map((x) => x.trim()));
  const off = KNOWN_BROKEN.filter((k) => !on.has(k.name));
  const kinds = new Set(FAULT_KINDS.filter((k) => !off.some((b) => b.kind === k)));
  const spares = off.flatMap((b) => (b.spare ? [b.spare] : []));
  return {
    kinds,
    spare: spares.length ? (c, at, prior) => spares.some((f) => f(c, at, prior)) : undefined,
    off: off.map((b) => b.name),
  };
}

export interface Step {
  /** Which queue with visible messages (modulo how many have some). */
  q: number;
  /** Where in that queue's visible messages the batch starts (reordering). */
  at: number;
  /** Batch size. */
  n: number;
  /** `twin`: two invocations at once, of which only the first crashes (the other acknowledges). */
  dup: "none" | "same" | "copy" | "twin" | "twin-late";
  crash: Crash | null;
  /** Jump the clock past the visibility timeout first. */
  wait: boolean;
  /** Cancel the run first (once). */
  cancel: boolean;
  /** Before this delivery's k-th AWS call: cancel the run, or deliver another batch (q, at, n). */
  meanwhile: { k: number; what: "cancel" | "deliver"; q: number; at: number; n: number } | null;
}

/** Leaves, one arbitrary per task (a map's kids share one task). */
function leafArbs(timeouts: boolean): fc.Arbitrary<Spec>[] {
  return [
    fc.record({ k: fc.constant("leaf" as const), v: fc.nat(99) }),
    fc.record({ k: fc.constant("flaky" as const), v: fc.nat(99), fails: fc.integer({ min: 1, max: 2 }) }),
    fc.constant({ k: "fail" as const }),
    // A gather wider than one SendMessageBatch (10): its send loop takes two requests.
    fc.record({ k: fc.constant("wide" as const), n: fc.integer({ min: 11, max: 12 }) }),
    ...(timeouts ? [fc.constant({ k: "slow" as const })] : []),
  ];
}

/** Parents over kids drawn from `byTask` (one arbitrary per task), as [node parents, timed parents]. */
function parentArbs(byTask: fc.Arbitrary<Spec>[], timeouts: boolean): fc.Arbitrary<Spec>[] {
  const kid = fc.oneof(...byTask);
  const node = fc.oneof(
    {
      weight: 3,
      arbitrary: fc.record({
        k: fc.constant("all" as const),
        kids: fc.array(kid, { minLength: 1, maxLength: 3 }),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        k: fc.constant("seq" as const),
        kids: fc.array(
          fc.oneof(
            kid,
            fc.record({
              k: fc.constant("nap" as const),
              v: fc.nat(99),
              ms: fc.integer({ min: 1, max: 3000 }),
            }),
          ),
          { minLength: 2, maxLength: 4 },
        ),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        k: fc.constant("first" as const),
        kids: fc.array(kid, { minLength: 2, maxLength: 3 }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        k: fc.constant("race" as const),
        kids: fc.array(kid, { minLength: 2, maxLength: 3 }),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        k: fc.constant("map" as const),
        kids: fc.nat(byTask.length - 1).chain((i) => fc.array(byTask[i]!, { minLength: 2, maxLength: 5 })),
        c: fc.integer({ min: 1, max: 3 }),
      }),
    },
  );
  return timeouts ? [node, fc.record({ k: fc.constant("timed" as const), kid })] : [node];
}

/** A tree of depth ≤ 3 whose root is a parent. */
export function treeArb(faults: Faults): fc.Arbitrary<Spec> {
  const leaves = leafArbs(faults.kinds.has("timeout"));
  const t = faults.kinds.has("parent-deadline");
  const inner = [...leaves, ...parentArbs(leaves, t)];
  return fc.oneof(...parentArbs(inner, t));
}

export function scheduleArb({ kinds: faults }: Faults, maxSteps = 20): fc.Arbitrary<Step[]> {
  const dups: Step["dup"][] = ["none"];
  if (faults.has("dup-same")) dups.push("same");
  if (faults.has("dup-copy")) dups.push("copy");
  if (faults.has("dup-twin")) dups.push("twin", "twin-late");
  const ons: Crash["on"][] = [];
  if (faults.has("cut-send")) ons.push("send");
  if (faults.has("crash-write")) ons.push("write");
  if (faults.has("crash-any")) ons.push("any");
  // How many calls of a kind an invocation makes: a few sends, more writes, many calls.
  const most = { send: 3, write: 8, any: 14 };
  const crash: fc.Arbitrary<Crash | null> = ons.length
    ? fc.option(
        fc.constantFrom(...ons).chain((on) =>
          fc.record({
            k: fc.integer({ min: 1, max: most[on] }),
            at: fc.constantFrom<Crash["at"]>("before", "after"),
            on: fc.constant(on),
          }),
        ),
        { freq: 3 },
      )
    : fc.constant(null);
  const whats: ("cancel" | "deliver")[] = [];
  if (faults.has("cancel-mid")) whats.push("cancel");
  if (faults.has("interleave")) whats.push("deliver");
  const meanwhile = whats.length
    ? fc.option(
        fc.record({
          k: fc.integer({ min: 1, max: 14 }),
          what: fc.constantFrom(...whats),
          q: fc.nat(3),
          at: fc.nat(9),
          n: fc.integer({ min: 1, max: 10 }),
        }),
        { freq: 5 },
      )
    : fc.constant(null);
  const step: fc.Arbitrary<Step> = fc.record({
    q: fc.nat(3),
    at: fc.nat(9),
    n: fc.integer({ min: 1, max: 10 }),
    dup: fc.constantFrom(...dups),
    crash,
    wait: faults.has("wait") ? fc.boolean() : fc.constant(false),
    cancel: faults.has("cancel") ? fc.integer({ min: 0, max: 15 }).map((x) => x === 0) : fc.constant(false),
    meanwhile,
  });
  return fc.array(step, { maxLength: maxSteps });
}

/** A step in words, for counterexamples. */
export function describeStep(s: Step): string {
  const parts = [`q${s.q} at ${s.at} n=${s.n}`];
  const dup = {
    none: undefined,
    same: "to two invocations at once",
    copy: "plus a copy with a new id",
    twin: "to two invocations at once, the other one acknowledging",
    "twin-late": "to two invocations, the other one acknowledging before this one starts",
  }[s.dup];
  if (dup) parts.push(dup);
  if (s.crash)
    parts.push(`crash ${s.crash.at} ${s.crash.on === "any" ? "AWS call" : s.crash.on} #${s.crash.k}`);
  if (s.wait) parts.push("after a visibility timeout");
  if (s.cancel) parts.push("after cancelling the run");
  const w = s.meanwhile;
  if (w)
    parts.push(
      w.what === "cancel"
        ? `the run cancelled before its AWS call #${w.k}`
        : `before its AWS call #${w.k}, q${w.q} at ${w.at} n=${w.n} delivered`,
    );
  return parts.join(", ");
}

const plain = (crash: Crash | null = null): Step => ({
  q: 0,
  at: 0,
  n: 1,
  dup: "none",
  crash,
  wait: false,
  cancel: false,
  meanwhile: null,
});

/**
 * Schedules that once found a bug, tried before the random ones (a known-broken one only when it
 * is enabled): most are the start, the root's exec, then a child's exec crashing at one spot.
 */
export function examples(faults: Faults): [Spec, Step[]][] {
  const leaves = (n: number): Spec[] => Array.from({ length: n }, (_, v) => ({ k: "leaf", v }));
  const all: { off?: string; spec: Spec; crash?: Crash; dup?: Step["dup"]; steps?: Step[] }[] = [
    // A hosted window's release crashes right after its commit, before the next item's send: the
    // redelivery must find the slot marked as its own and send the occupant (not release again).
    { spec: { k: "map", c: 1, kids: leaves(3) }, crash: { k: 2, at: "after", on: "write" } },
    // A flaky child crashes right after its attempt bump, before its retry's exec is sent.
    {
      off: "retry-lost",
      spec: { k: "all", kids: [{ k: "flaky", v: 7, fails: 1 }] },
      crash: { k: 1, at: "after", on: "write" },
    },
    // A child parent's send loop (12 calls: two requests) is cut after its first request.
    {
      off: "partial-dispatch",
      spec: { k: "all", kids: [{ k: "wide", n: 12 }] },
      crash: { k: 1, at: "after", on: "send" },
    },
    // A leaf's exec goes to two invocations at once: the first writes the outcome and dies before
    // reporting it, the other loses the write and acknowledges the message, so the dead one's
    // delivery never comes back to report it.
    {
      spec: { k: "all", kids: leaves(2) },
      crash: { k: 1, at: "after", on: "write" },
      dup: "twin",
    },
    // ...and a failing leaf's: the first bumps its attempt and dies before sending the retry, the
    // other fails too (its bump is lost) or, being a flaky leaf's second run, succeeds (its write is
    // refused: a later attempt is current).
    {
      spec: { k: "all", kids: [{ k: "fail" }] },
      crash: { k: 1, at: "after", on: "write" },
      dup: "twin",
    },
    {
      spec: { k: "all", kids: [{ k: "flaky", v: 3, fails: 1 }] },
      crash: { k: 1, at: "after", on: "write" },
      dup: "twin",
    },
    // The root's send loop dies after sending its calls, before marking them sent; the children
    // finish and are counted (no resume before the mark). Its redelivery re-dispatches through the
    // coordinator, whose last slice marks the epoch sent and dies before the resume check: that
    // slice's redelivery must still check it (every completion was counted already).
    {
      spec: { k: "all", kids: leaves(2) },
      steps: [
        plain(),
        plain({ k: 1, at: "after", on: "send" }),
        { ...plain(), n: 10 },
        { ...plain(), n: 10 },
        { ...plain(), wait: true },
        plain({ k: 1, at: "after", on: "write" }),
      ],
    },
    // Three levels; the innermost parent commits and dies before sending its calls; its redelivery
    // re-dispatches them through the coordinator. The run is cancelled: the sweep of the middle
    // parent cancels the innermost and dies before sending the innermost's own sweep. Its
    // redelivery finds the innermost settled (CANCELLED) and must still send that sweep: the
    // dispatch finds its parent ended, and nothing else would ever end the unsent children.
    {
      spec: { k: "all", kids: [{ k: "all", kids: [{ k: "all", kids: leaves(2) }] }] },
      steps: [
        plain(),
        plain(),
        plain(),
        plain({ k: 1, at: "before", on: "send" }),
        { ...plain(), wait: true },
        { ...plain({ k: 2, at: "after", on: "write" }), cancel: true, at: 1 },
      ],
    },
    // A windowed item's exec goes to two invocations at once: both fail, so both send the retry.
    // The two retries, delivered together, die after writing the outcome, then after releasing
    // the slot and before sending the next item. Their redelivery finds the slot moved, marked
    // with the token of whichever message of the batch finished last that time: either one must
    // be taken as its own, or the next item is never sent. (Which finishes last is a race: this
    // fails in about one try in three without the fix.)
    {
      spec: { k: "map", c: 1, kids: [{ k: "fail" }, { k: "fail" }] },
      steps: [
        plain(),
        plain(),
        { ...plain(), dup: "same" },
        plain(), // the retries' backoff passes
        { ...plain({ k: 1, at: "after", on: "write" }), n: 2 },
        { ...plain({ k: 7, at: "before", on: "any" }), n: 2, wait: true },
      ],
    },
    // A completions message goes to two invocations at once, one dying before its eighth AWS call:
    // if the other counts first, its resume mark loses to the dying one's, which never sends the
    // resume. The loser must send it, the mark being its own message's. (A race: this failed in
    // 4 of 12 and 2 of 12 tries without the fix.) Found by random exploration, kept as drawn.
    JSON.parse(
      '{"spec":{"k":"all","kids":[{"k":"timed","kid":{"k":"slow"}},{"k":"wide","n":11}]},"steps":[{"q":0,"at":0,"n":1,"dup":"none","crash":null,"wait":false,"cancel":true,"meanwhile":{"k":3,"what":"deliver","q":0,"at":0,"n":1}},{"q":0,"at":0,"n":1,"dup":"none","crash":{"k":1,"at":"after","on":"send"},"wait":false,"cancel":false,"meanwhile":{"k":1,"what":"deliver","q":0,"at":1,"n":1}},{"q":0,"at":6,"n":7,"dup":"none","crash":null,"wait":false,"cancel":false,"meanwhile":null},{"q":0,"at":4,"n":7,"dup":"twin","crash":{"k":8,"at":"before","on":"any"},"wait":true,"cancel":false,"meanwhile":null}]}',
    ) as { spec: Spec; steps: Step[] },
    // A resume goes out twice (two messages); one dies after claiming its epoch, the other before
    // its first send. Their redeliveries come in one batch: the other's replay took the lease and
    // wrote nothing (the claim was not its message's), then refused the claimant's, which sent a copy
    // of itself that, with the claim of another message, wrote nothing either: nothing was left
    // to commit the epoch. The lease holder now takes a dead claimant's claim over. (A race: this
    // failed in 5 of 9 tries without the fix.) Found by random exploration, kept as drawn.
    JSON.parse(
      '{"spec":{"k":"seq","kids":[{"k":"leaf","v":0},{"k":"nap","v":0,"ms":1}]},"steps":[{"q":0,"at":0,"n":1,"dup":"none","crash":null,"wait":false,"cancel":true,"meanwhile":null},{"q":0,"at":0,"n":1,"dup":"none","crash":null,"wait":false,"cancel":false,"meanwhile":null},{"q":0,"at":0,"n":1,"dup":"none","crash":null,"wait":false,"cancel":false,"meanwhile":null},{"q":0,"at":0,"n":1,"dup":"none","crash":{"k":2,"at":"before","on":"send"},"wait":false,"cancel":false,"meanwhile":null},{"q":0,"at":0,"n":1,"dup":"copy","crash":{"k":2,"at":"after","on":"write"},"wait":false,"cancel":false,"meanwhile":null},{"q":0,"at":0,"n":1,"dup":"copy","crash":{"k":1,"at":"before","on":"send"},"wait":false,"cancel":false,"meanwhile":null}]}',
    ) as { spec: Spec; steps: Step[] },
  ];
  return all
    .filter((e) => e.off === undefined || !faults.off.includes(e.off))
    .map((e) => [e.spec, e.steps ?? [plain(), plain(), { ...plain(e.crash ?? null), dup: e.dup ?? "none" }]]);
}
