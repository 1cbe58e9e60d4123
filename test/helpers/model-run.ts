/**
 * One schedule of the property test: starts a run of a task tree on the bus, delivers messages as
 * the schedule's steps say, then fairly (no faults) until nothing is left, and returns what broke:
 * a run not terminal within the liveness bound (or at all), an outcome recorded twice, a result the
 * embedded engine would not give, a windowed map above its concurrency, an action left open.
 */
import type { AwsRun } from "../../sdk/aws/client.ts";
import type { Spec } from "../fixtures/model-tasks.ts";
import { expected, matches, node, timed } from "../fixtures/model-tasks.ts";
import type { Bus, BusMessage, Crash, DeliverOptions } from "./bus.ts";
import type { Step } from "./model-arbs.ts";
import { TERMINAL, flatten } from "./status.ts";

/**
 * The liveness bound in simulated time: every run ends within LIVENESS_BASE_MS, plus one
 * visibility timeout and LIVENESS_SLACK_MS (a replay lease, an unsent resume, a late completion)
 * per faulted step of its schedule, plus two 600 s deadlines (an attempt and its retry) when the tree has a timed parent.
 */
export const LIVENESS_BASE_MS = 120_000;
export const LIVENESS_SLACK_MS = 60_000;
export const TIMED_PARENT_MS = 1_200_000;

/** Deliveries after the schedule before the run is declared livelocked. */
const MAX_DRAIN = 1_500;

export interface Outcome {
  violations: string[];
  /** Simulated ms from start to the run's end (undefined if it never ended). */
  tookMs: number | undefined;
  boundMs: number;
  deliveries: number;
  runId: string;
}

const OUTCOME_WRITE = /(^|[ ,])outcome = :o/;

/** A message in a few words, for traces. */
function brief(body: string): string {
  const b = parse(body);
  if (!b) return body.slice(0, 60);
  if (b["k"] === "dones")
    return `dones[${(b["d"] as { id: string; ok: boolean }[]).map((d) => `${d.id.slice(0, 6)}:${d.ok}`).join(",")}]`;
  const id = String(b["id"] ?? "").slice(0, 6);
  return `${String(b["k"])} ${String(b["task"] ?? "")} ${id} e${String(b["epoch"] ?? "")} a${String(b["attempt"] ?? "")}${b["ok"] === undefined ? "" : ` ok=${String(b["ok"])}`}`;
}

function parse(body: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(body) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

const hasTimed = (s: Spec): boolean => s.k === "timed" || ("kids" in s && s.kids.some(hasTimed));
/** Actions a tree makes when it runs to its end: one per node (a nap is its sleep's). */
const actionsOf = (s: Spec): number =>
  s.k === "wide"
    ? 1 + s.n
    : s.k === "timed"
      ? 1 + actionsOf(s.kid)
      : "kids" in s
        ? 1 + s.kids.reduce((n, k) => n + actionsOf(k), 0) + (s.k === "first" ? 1 : 0)
        : 1;
const hasRace = (s: Spec): boolean =>
  s.k === "race" || ("kids" in s && s.kids.some(hasRace)) || (s.k === "timed" && hasRace(s.kid));

/** Runs `spec` under `steps` on the bus (a fresh run; the bus is shared) and checks the invariants. */
export async function runSchedule(
  bus: Bus,
  spec: Spec,
  steps: readonly Step[],
  key: string,
  spare?: Crash["spare"],
  /** Starts the run another way than `run` of the tree (a recovery of an earlier run of it). */
  start?: () => Promise<AwsRun<unknown>>,
): Promise<Outcome> {
  const violations: string[] = [];
  const fail = (v: string) => void (violations.length < 8 && violations.push(v));
  let runId = "";
  const mine = (text: string) => runId !== "" && text.includes(runId);
  // Outcome writes per item; window items sent per map parent, and their limits.
  const writes = new Map<string, number>();
  const done = new Set<string>();
  const sent = new Map<string, Set<string>>();
  let ended: number | undefined;
  const started = bus.now;
  const onWrite = (command: string, input: Record<string, unknown>) => {
    if (!/^Update(Item)?Command$/.test(command) || !OUTCOME_WRITE.test(String(input["UpdateExpression"])))
      return;
    const k = input["Key"] as { pk: string; sk: string };
    if (!mine(k.pk) && !k.pk.startsWith("O#")) return;
    const id = `${k.pk}|${k.sk}`;
    const n = (writes.get(id) ?? 0) + 1;
    writes.set(id, n);
    if (n > 1) fail(`outcome of ${k.pk} ${k.sk} recorded ${n} times`);
    if (k.pk === `R#${runId}`) ended ??= bus.now;
    else done.add(k.sk);
  };
  const limits = windowLimits(spec, key);
  // Items of a map are known by their key (the map node's key, then their index), window tag or not.
  const onSend = (m: BusMessage) => {
    const b = parse(m.body);
    if (b?.["k"] !== "exec" || b["run"] !== runId || b["parent"] === null) return;
    const map = mapKeyOf(b);
    const limit = limits.get(map);
    if (limit === undefined) return;
    const set = sent.get(map) ?? new Set<string>();
    sent.set(map, set);
    set.add(String(b["id"]));
    const inFlight = [...set].filter((id) => !done.has(id)).length;
    if (inFlight > limit) fail(`map ${map} had ${inFlight} children in flight > concurrency ${limit}`);
  };
  // Every schedule keeps its trace: a violation carries it (a twin delivery's race is not
  // replayed exactly by its seed); ALOFT_MODEL_TRACE=1 prints it as it goes.
  const traced: string[] = [];
  const trace = (line: string) => {
    const l = `[${(bus.now - started) / 1000}s] ${line}`;
    traced.push(l);
    if (process.env["ALOFT_MODEL_TRACE"]) console.log(l);
  };
  const onTrace = (m: BusMessage) =>
    trace(
      `  sent ${m.id} ${brief(m.body)}${m.visibleAt > bus.now ? ` delayed ${(m.visibleAt - bus.now) / 1000}s` : ""}`,
    );
  bus.observers.push(onWrite);
  bus.onSend.push(onSend, onTrace);
  const deliver = async (batch: BusMessage[], opts: DeliverOptions = {}, label = "deliver") => {
    trace(
      `${label} ${batch.map((m) => `${m.id}(#${m.receives + 1}) ${brief(m.body)}`).join(" | ")} ${JSON.stringify(opts)}`,
    );
    const d = await bus.deliver(batch, opts);
    trace(
      `  -> acked ${d.acked.join(",")} failed ${d.failed.join(",")}${d.crashed ? " CRASHED" : ""}${d.dead.length ? " dead " + d.dead.map((m) => m.id).join(",") : ""}`,
    );
  };
  let deliveries = 0;
  let faulted = 0;
  let cancelled = false;
  try {
    const r = await bus.within(() =>
      start ? start() : bus.client.run(spec.k === "timed" ? timed : node, { s: spec, key }),
    );
    runId = r.id;
    for (const s of steps) {
      if (s.cancel && !cancelled && (await bus.client.getRun(runId))) {
        // (A cancel before the start message created the run is refused by the client.)
        cancelled = true;
        faulted++;
        trace("cancel");
        await bus.within(() => r.cancel());
      }
      if (s.wait) {
        faulted++;
        bus.tick(bus.visibilityMs);
      }
      const queues = [...bus.queues.keys()].filter((q) => bus.visible(q).length);
      if (!queues.length) {
        if (!bus.advance()) break;
        continue;
      }
      const vis = bus.visible(queues[s.q % queues.length]);
      const from = s.at % vis.length;
      let batch = [...vis.slice(from), ...vis.slice(0, from)].slice(0, s.n);
      // A message about to be received for the last time is never crashed: that would dead-letter
      // it (issue 8 #6, a separate scenario) rather than test recovery.
      const crash =
        s.crash && batch.every((m) => m.receives < bus.maxReceiveCount - 2)
          ? { ...s.crash, spare }
          : undefined;
      if (s.dup === "copy") bus.duplicate(batch[0]!);
      if (s.dup !== "none" || crash) faulted++;
      batch = batch.filter((m) => m.visibleAt <= bus.now);
      deliveries++;
      const w = s.meanwhile;
      const then = async () => {
        if (w?.what === "cancel" && !cancelled && (await bus.client.getRun(runId))) {
          cancelled = true;
          trace("  meanwhile cancel");
          await r.cancel();
        } else if (w?.what === "deliver") {
          const qs = [...bus.queues.keys()].filter((q) => bus.visible(q).length);
          if (!qs.length) return;
          const vis = bus.visible(qs[w.q % qs.length]);
          const from = w.at % vis.length;
          deliveries++;
          await deliver([...vis.slice(from), ...vis.slice(0, from)].slice(0, w.n), {}, "  meanwhile deliver");
        }
      };
      if (w) faulted++;
      await deliver(batch, {
        copies: s.dup === "same" || s.dup === "twin" || s.dup === "twin-late" ? 2 : 1,
        crashOne: s.dup === "twin" || s.dup === "twin-late",
        othersFirst: s.dup === "twin-late",
        ...(crash ? { crash } : {}),
        ...(w ? { pause: { k: w.k, then } } : {}),
      });
    }
    let drained = 0;
    for (; drained < MAX_DRAIN; drained++) {
      const q = [...bus.queues.keys()].find((k) => bus.visible(k).length);
      if (q) await deliver(bus.visible(q).slice(0, 10), {}, "fair");
      else if (!bus.advance()) break;
    }
    deliveries += drained;
    if (drained >= MAX_DRAIN) fail(`still delivering after ${MAX_DRAIN} fair deliveries (a livelock)`);
    const boundMs =
      LIVENESS_BASE_MS +
      faulted * (bus.visibilityMs + LIVENESS_SLACK_MS) +
      (hasTimed(spec) ? TIMED_PARENT_MS : 0);
    const tookMs = ended === undefined ? undefined : ended - started;
    if (tookMs === undefined) {
      const dead = bus.dlq.filter((m) => mine(m.body)).length;
      fail(`run never ended: no message left${dead ? ` (${dead} dead-lettered)` : ""}`);
    } else if (tookMs > boundMs) fail(`run ended after ${tookMs / 1000} s > bound ${boundMs / 1000} s`);
    if (tookMs !== undefined) await bus.within(() => checkResult(r, spec, cancelled, fail));
    const st = await bus.within(() => r.status());
    const nodes = flatten(st.root);
    if (new Set(nodes.map((n) => n.id)).size !== nodes.length)
      fail("an action appears twice in the status tree");
    // A race's losers and a timed parent's kid may be cancelled before their own kids are made.
    if (!start && !cancelled && !hasTimed(spec) && !hasRace(spec) && nodes.length !== actionsOf(spec))
      fail(`${nodes.length} actions, the tree makes ${actionsOf(spec)}`);
    const open = nodes.filter((n) => !TERMINAL.has(n.status));
    if (open.length)
      fail(`${open.length} action(s) left open: ${open.map((n) => `${n.task} ${n.status}`).join(", ")}`);
    if (violations.length) violations.push(`trace of this schedule:\n      ${traced.join("\n      ")}`);
    return { violations, tookMs, boundMs, deliveries, runId };
  } finally {
    bus.observers.splice(bus.observers.indexOf(onWrite), 1);
    bus.onSend.splice(bus.onSend.indexOf(onSend), 2);
    // Leave nothing of this run for the next schedule.
    for (const [q, list] of bus.queues)
      bus.queues.set(
        q,
        list.filter((m) => !mine(m.body)),
      );
  }
}

async function checkResult(
  run: AwsRun<unknown>,
  spec: Spec,
  cancelled: boolean,
  fail: (v: string) => void,
): Promise<void> {
  let got: unknown;
  try {
    got = await run.result();
  } catch (e) {
    got = `E:${(e as Error).name}`;
  }
  const want = expected(spec);
  if (matches(got, want)) return;
  if (cancelled && got === "E:CancelledError") return;
  fail(`result ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
}

/** The maps' concurrency limits, by the key of their node. */
function windowLimits(spec: Spec, key: string, out = new Map<string, number>()): Map<string, number> {
  if (spec.k === "map") out.set(key, spec.c);
  if ("kids" in spec) spec.kids.forEach((k, i) => windowLimits(k, `${key}.${i}`, out));
  if (spec.k === "timed") windowLimits(spec.kid, `${key}.0`, out);
  return out;
}

/** The key of the map node an item belongs to: its own key minus the last part. */
function mapKeyOf(b: Record<string, unknown>): string {
  const arg = (parse(String(b["args"])) as [{ key?: string }] | undefined)?.[0];
  return String(arg?.key ?? "").replace(/\.\d+$/, "");
}
