/**
 * The soak: the soak stack (scripts/soak/app.ts) synthesized and run as deployed under chaos,
 * with a mix of runs kept in flight for a fixed time, and invariants checked from outside through
 * the client only: every run terminal within the liveness bound (`stuck`), its result the embedded
 * engine's for the same inputs (`lost` when not), no action recorded more often than the embedded
 * engine records it (`duplicated`), no map over its concurrency, no IAM denial.
 */
import { isDeepStrictEqual } from "node:util";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ActionNode, RunStatus } from "../../sdk/run-handle.ts";
import { AloftClient } from "../../sdk/aws/client.ts";
import { init, run, shutdown } from "../../sdk/run.ts";
import type { Task } from "../../sdk/task.ts";
import { applyEnv } from "../../dev/aws-clients.ts";
import { readStack } from "../../dev/deployed/assembly.ts";
import { Chaos, type ChaosSpec } from "../../dev/deployed/chaos.ts";
import { startDeployedStack, type DeployedReport } from "../../dev/deployed/stack.ts";
import { synth } from "../../dev/deployed/synth.ts";
import { runtime } from "../../sdk/aws/runtime.ts";
import { readCounter } from "../../sdk/aws/store/counters.ts";

export interface SoakOptions {
  /** How long new runs are started; default 60 s. */
  seconds?: number;
  chaos?: Partial<ChaosSpec>;
  /** Runs kept in flight; default 4. */
  inFlight?: number;
  /** Keep starting runs past `seconds` until this many have started (so a slow machine still sees faults); default 0. */
  minRuns?: number;
  /**
   * Keep starting runs (up to 4x `seconds`) until this many killed messages were delivered again:
   * a kill can land where nothing is redelivered (a duplicate finished the message, or the run
   * ended first), so a short soak may otherwise see no recovery at all.
   */
  minRecoveries?: number;
  /** A `cdk synth` of scripts/soak/app.ts to use; default: synthesized into a temp folder. */
  cdkOut?: string;
  log?: (line: string) => void;
}

export interface SoakResult {
  runs: number;
  children: number;
  /** Actions that succeeded on a later attempt than their first. */
  retried: number;
  stuck: number;
  lost: number;
  duplicated: number;
  overConcurrency: number;
  /** Durable sleeps that ended before their duration. */
  early: number;
  denials: number;
  boundSeconds: number;
  recoveriesMs: number[];
  report: DeployedReport;
  problems: string[];
  summary: string;
}

type AnyTask = Task<(...a: any[]) => any>;
interface Job {
  name: string;
  task: AnyTask;
  args: unknown[];
  cancelAfterMs?: number;
  concurrency?: number;
  /** Signals sent to the run, in this order: the first as soon as the run exists, the next later. */
  signals?: [name: string, payload: unknown][];
  /** The durations of the run's `sleep`s, in call order: none may end early. */
  sleepsMs?: number[];
}

/** Between two signals of a job: the first likely lands before its wait exists, the next after. */
const SIGNAL_GAP_MS = 1_500;

/** How often a run in flight is looked at (its run item). */
const POLL_MS = 500;
const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));
const median = (xs: number[]) =>
  xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] : undefined;
const TERMINAL = new Set(["SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"]);
const flatten = (n: ActionNode | undefined, out: ActionNode[] = []): ActionNode[] => {
  if (n) out.push(n);
  for (const c of n?.children ?? []) flatten(c, out);
  return out;
};

/** The most children of `nodes` running at once, from their start and end times. */
function overlap(nodes: ActionNode[]): number {
  const ev = nodes.flatMap((n) => [
    [n.startedAt ?? 0, 1],
    [n.endedAt ?? Infinity, -1],
  ]);
  ev.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]!);
  let cur = 0;
  let max = 0;
  for (const [, d] of ev) max = Math.max(max, (cur += d!));
  return max;
}

/** Runs the soak; the caller prints `summary`. Synthesizes into a temp folder, removed after. */
export async function soak(options: SoakOptions = {}): Promise<SoakResult> {
  const log = options.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const seconds = options.seconds ?? 60;
  if (options.cdkOut) return soakStack(options.cdkOut, seconds, options, log);
  const out = mkdtempSync(join(tmpdir(), "aloft-soak-synth-"));
  try {
    log("soak: cdk synth of scripts/soak/app.ts");
    await synth("scripts/soak/tasks.ts", "AloftSoak", out, "npx tsx scripts/soak/app.ts");
    return await soakStack(out, seconds, options, log);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/**
 * The liveness bound from the template: a message a sandbox held when killed returns after its
 * lease (taken as the invocation starts); one received but lost before its handler took the lease
 * (its sandbox dying in a cold start, a throttled batch) after its queue's own visibility timeout;
 * then the work runs again. Dead-letter queues are left out: a message reaches one only after
 * maxReceiveCount failures.
 */
export function livenessBoundSeconds(cdkOut: string): number {
  return livenessOf(cdkOut).boundSeconds;
}

/**
 * The bound, and the queues' visibility timeout: each further kill of one run's messages may land
 * before its lease, as the first may, and cost that again (the model test's bound grows per fault
 * alike).
 */
function livenessOf(cdkOut: string): { boundSeconds: number; visibilitySeconds: number } {
  const { template } = readStack(cdkOut);
  const queues = Object.values(template.Resources).filter(
    (r) => r.Type === "AWS::SQS::Queue" && r.Properties?.["RedrivePolicy"],
  );
  const visibility = Math.max(...queues.map((q) => Number(q.Properties?.["VisibilityTimeout"] ?? 30)));
  const leases = Object.values(template.Resources)
    .filter((r) => r.Type === "AWS::Lambda::Function")
    .map((f) => Number((f.Properties?.["Environment"] as any)?.Variables?.ALOFT_VISIBILITY_TIMEOUT ?? 0));
  return { boundSeconds: visibility + 3 * Math.max(...leases) + 30, visibilitySeconds: visibility };
}

async function soakStack(
  cdkOut: string,
  seconds: number,
  options: SoakOptions,
  log: (l: string) => void,
): Promise<SoakResult> {
  const t = await import("./tasks.ts");
  const { boundSeconds, visibilitySeconds } = livenessOf(cdkOut);
  /** A run's bound: the base one, plus a visibility timeout per kill of its messages after the first. */
  const boundOf = (run: string): number => {
    const kills = stack.eventSources.trace
      .ofRun(run)
      .reduce((n, h) => n + h.events.filter((e) => e.event === "killed").length, 0);
    return boundSeconds + visibilitySeconds * Math.max(0, kills - 1);
  };
  const chaos = new Chaos(options.chaos);
  const jobs: Job[] = [
    { name: "gather", task: t.gather, args: [20] },
    { name: "nested", task: t.nested, args: [6] },
    { name: "windowed", task: t.windowed, args: [12, 3], concurrency: 3 },
    { name: "failures", task: t.withFailures, args: [6] },
    { name: "timeout", task: t.withTimeout, args: [] },
    { name: "large", task: t.large, args: [400] },
    { name: "cancel", task: t.longParent, args: [4], cancelAfterMs: 1_000 },
    { name: "sleeps", task: t.napping, args: [4], sleepsMs: [1_000, 2_000] },
    {
      name: "signals",
      task: t.signalled,
      args: [4],
      signals: [
        ["go", 10],
        ["go", 20],
      ],
    },
  ];
  await init({ store: ":memory:", workers: 0 });
  const expected = new Map<string, { value: unknown; nodes: number }>();
  for (const j of jobs.filter((x) => !x.cancelAfterMs)) {
    const r = await run(j.task, ...(j.args as never[]));
    for (const [name, payload] of j.signals ?? []) await r.signal(name, payload);
    const value = await r.result();
    expected.set(j.name, { value, nodes: flatten((await r.status()).root).length });
  }
  await shutdown();

  const stack = await startDeployedStack({ cdkOut, chaos: chaos.spec, log: () => undefined });
  const restore = applyEnv(stack.env);
  const client = new AloftClient(stack.config);
  const problems: string[] = [];
  const started = Date.now();
  const counts = {
    runs: 0,
    children: 0,
    retried: 0,
    stuck: 0,
    lost: 0,
    duplicated: 0,
    overConcurrency: 0,
    early: 0,
  };
  const problem = (kind: keyof typeof counts, text: string) => {
    counts[kind]++;
    problems.push(`${kind}: ${text}`);
    log(`soak: ${kind}: ${text}`);
  };

  /** Where a run that broke an invariant stands: its open actions and each message naming it. */
  const explain = async (id: string, nodes: ActionNode[]) => {
    const open = nodes.filter((n) => !TERMINAL.has(n.status));
    // An open parent's counter says which guard held its resume back (resume.ts maybeResume).
    // (runtime() throws at once when the handlers' configuration is not in this process's env:
    // the explanation then goes without counters, rather than failing the job it explains.)
    const counterOf = async (id: string) => readCounter(runtime(), id);
    const counters = await Promise.all(open.map((n) => counterOf(n.id).catch(() => undefined)));
    const lines = [
      ...open.map(
        (n, i) =>
          `  open: ${n.task} ${n.id} ${n.status} (attempts ${n.attempts})` +
          (counters[i] ? ` counter ${JSON.stringify({ ...counters[i], pk: undefined, sk: undefined })}` : ""),
      ),
      ...stack.eventSources.trace.describe(id, started).map((l) => `  message: ${l}`),
    ];
    for (const l of lines) log(l);
    problems.push(...lines);
  };

  /**
   * Cancels a run `afterMs` after it started: a cancel before the coordinator created the run
   * finds no run (on a loaded machine the start can take seconds), so it waits for the run item
   * and retries a cancel that fails, until the run ends.
   */
  const cancelLater = async (id: string, afterMs: number, deadline: number) => {
    while (!(await client.getRun(id)) && Date.now() < deadline) await sleep(POLL_MS);
    await sleep(afterMs);
    for (;;) {
      try {
        return await client.attach(id).cancel("soak cancel");
      } catch (e) {
        if (Date.now() > deadline) return problem("lost", `cancel of ${id} failed: ${String(e)}`);
        await sleep(POLL_MS);
      }
    }
  };

  /**
   * Sends a job's signals once its run exists, SIGNAL_GAP_MS apart. A send that fails is not sent
   * again: the same signal sent twice is two signals, which would change the run's result.
   */
  const signalLater = async (id: string, signals: [string, unknown][], deadline: number) => {
    while (!(await client.getRun(id)) && Date.now() < deadline) await sleep(POLL_MS);
    for (const [i, [name, payload]] of signals.entries()) {
      if (i) await sleep(SIGNAL_GAP_MS);
      try {
        await client.signal(id, name, payload);
      } catch (e) {
        return problem("lost", `signal ${name} to ${id} failed: ${String(e)}`);
      }
    }
  };

  const one = async (job: Job): Promise<void> => {
    const r = await client.run(job.task, ...(job.args as never[]));
    counts.runs++;
    const t0 = Date.now();
    const deadline = () => t0 + boundOf(r.id) * 1000;
    if (job.cancelAfterMs) void cancelLater(r.id, job.cancelAfterMs, deadline());
    if (job.signals) void signalLater(r.id, job.signals, deadline());
    // The run item alone (one GetItem) until it ends: reading the whole tree every poll was most
    // of DynamoDB Local's load, slowing the very functions under test.
    while (Date.now() <= deadline()) {
      const item = await client.getRun(r.id);
      if (item && TERMINAL.has(item.status)) break;
      await sleep(POLL_MS);
    }
    // A run ends before its descendants are marked (a cancel marks them after the run; a failed
    // parent's sweep follows its end): they too must be terminal within the bound.
    let s: RunStatus;
    for (;;) {
      s = await r.status();
      const done = TERMINAL.has(s.state) && flatten(s.root).every((n) => TERMINAL.has(n.status));
      if (done || Date.now() > deadline()) break;
      await sleep(4 * POLL_MS);
    }
    const nodes = flatten(s.root);
    counts.children += Math.max(0, nodes.length - 1);
    // Recovered by a retry: an attempt timed out (its sandbox killed past the deadline) or failed.
    counts.retried += nodes.filter((n) => n.status === "SUCCEEDED" && n.attempts > 1).length;
    if (!TERMINAL.has(s.state)) {
      problem("stuck", `${job.name} ${r.id} still ${s.state} after ${boundOf(r.id)} s`);
      return explain(r.id, nodes);
    }
    const open = nodes.filter((n) => !TERMINAL.has(n.status));
    if (open.length) {
      problem("stuck", `${job.name} ${r.id} ended ${s.state} with ${open.length} actions not terminal`);
      return explain(r.id, nodes);
    }
    if (job.cancelAfterMs) {
      if (s.state !== "CANCELLED") problem("lost", `${job.name} ${r.id} ended ${s.state}, not CANCELLED`);
      return;
    }
    const want = expected.get(job.name)!;
    let got: unknown;
    try {
      got = await r.result();
    } catch (e) {
      problem("lost", `${job.name} ${r.id} failed: ${(e as Error).message}`);
      return explain(r.id, nodes);
    }
    if (!isDeepStrictEqual(got, want.value))
      problem(
        "lost",
        `${job.name} ${r.id} returned ${JSON.stringify(got).slice(0, 200)}, embedded engine ${JSON.stringify(want.value).slice(0, 200)}`,
      );
    if (nodes.length > want.nodes)
      problem(
        "duplicated",
        `${job.name} ${r.id} has ${nodes.length} actions, the embedded engine ${want.nodes}`,
      );
    if (job.sleepsMs) {
      const sleeps = nodes.filter((n) => n.task === "aloft:sleep");
      const lasted = sleeps.map((n) => (n.endedAt ?? 0) - (n.startedAt ?? Infinity));
      if (sleeps.length !== job.sleepsMs.length || lasted.some((ms, i) => !(ms >= job.sleepsMs![i]!)))
        problem(
          "early",
          `${job.name} ${r.id}: sleeps of ${JSON.stringify(job.sleepsMs)} ms lasted ${JSON.stringify(lasted)} ms`,
        );
    }
    if (job.concurrency) {
      const window = nodes.filter((n) => n.group === "window");
      const most = overlap(window);
      if (most > job.concurrency)
        problem("overConcurrency", `${job.name} ${r.id} ran ${most} at once, concurrency ${job.concurrency}`);
    }
  };

  const end = started + seconds * 1000;
  const latest = started + 4 * seconds * 1000;
  const recovering = () =>
    stack.eventSources.recoveries.length < (options.minRecoveries ?? 0) && Date.now() < latest;
  let next = 0;
  const lanes = Array.from({ length: options.inFlight ?? 4 }, async () => {
    while (Date.now() < end || next < (options.minRuns ?? 0) || recovering()) {
      const job = jobs[next++ % jobs.length]!;
      await one(job).catch((e: unknown) => problem("lost", `${job.name}: the client failed: ${String(e)}`));
    }
  });
  await Promise.all(lanes);
  client.destroy();
  const recoveriesMs = stack.eventSources.recoveries.map((r) => r.ms);
  const report = await stack.stop();
  restore();
  // The functions' logs are what explains a problem: kept when there is one, removed otherwise.
  if (!problems.length) rmSync(stack.logDir, { recursive: true, force: true });
  const c = report.chaos;
  const sorted = [...recoveriesMs].sort((a, b) => a - b);
  const invocations = report.functions.reduce((n, f) => n + f.invocations, 0);
  const summary = [
    `soak: ${counts.runs} runs, ${counts.children} children in ${Math.round((Date.now() - started) / 1000)} s (liveness bound ${boundSeconds} s)`,
    `soak: ${invocations} invocations (${counts.children ? Math.round((invocations / counts.children) * 1e6) : 0} per million children)`,
    `soak: faults: ${c.kills} kills, ${c.throttles} throttles, ${c.duplicates} duplicates, ${c.delays} delays; IAM denials ${report.denials.length}`,
    `soak: ${counts.retried} actions succeeded on a later attempt`,
    `soak: recovery after a kill: ${sorted.length ? `min ${sorted[0]} ms, median ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted.at(-1)} ms over ${sorted.length} messages` : "no killed message redelivered"}`,
    ...report.functions
      .filter((f) => f.invocations)
      .map(
        (f) =>
          `soak: ${f.logicalId}: ${f.invocations} invocations, ${f.coldStarts} cold starts, init ${f.initMs.length ? Math.min(...f.initMs) : "-"}..${f.initMs.length ? Math.max(...f.initMs) : "-"} ms (CPU median ${median(f.initCpuMs) ?? "-"} ms), ${f.kills} killed, ${f.timeouts} timed out`,
      ),
    ...report.denials,
    ...(problems.length ? [`soak: the functions' logs are kept in ${stack.logDir}`] : []),
    `stuck=${counts.stuck} lost=${counts.lost} duplicated=${counts.duplicated}${counts.overConcurrency ? ` overConcurrency=${counts.overConcurrency}` : ""}${counts.early ? ` early=${counts.early}` : ""}`,
  ].join("\n");
  return { ...counts, denials: report.denials.length, boundSeconds, recoveriesMs, report, problems, summary };
}
