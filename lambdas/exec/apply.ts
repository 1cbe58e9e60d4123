/** Carrying out a replay's decision: an outcome, a retry (core/policy.ts), or a suspension. */
import type { Decision } from "../../sdk/core/replay.ts";
import { offload } from "../../sdk/aws/payloads.ts";
import { TraceConflict, loadHistory } from "../../sdk/aws/store/history.ts";
import { writeCached } from "../../sdk/aws/store/cache.ts";
import { afterFailure, cacheLookup, overran } from "../../sdk/core/policy.ts";
import type { Open } from "./context.ts";
import { finish } from "./finish.ts";
import { retry } from "./retry.ts";
import { suspend } from "./suspend.ts";
import { timeoutCheck } from "./deadline.ts";
import type { Replaying } from "./context.ts";
import { replayLogged } from "./task-logs.ts";

/** Replays and applies the decision; `first` is a replay already made (a leaf's first run). */
export async function replayAndApply(r: Replaying, first?: Decision): Promise<Open | void> {
  const { rt, m, def, args, cnt } = r;
  let history = r.history;
  for (let tries = 0; ; tries++) {
    const d =
      tries === 0 && first ? first : await replayLogged(rt, m, { task: def, args, actionId: m.id, history });
    // A leaf awaiting timers or I/O is normal; the core's warning is about parent bodies.
    const parent = cnt !== undefined || d.calls.length > 0 || d.kind === "suspended";
    for (const w of d.warnings) rt.log[parent ? "warn" : "debug"](w, { task: m.task, action: m.id });
    try {
      return await apply({ ...r, history }, d);
    } catch (e) {
      // Another replay of this epoch recorded its traces first: replay on top of them.
      if (!(e instanceof TraceConflict) || tries >= 2) throw e;
      history = (await loadHistory(rt, m.id)).history;
    }
  }
}

/** Carries out a replay's decision: the outcome (or a retry), or the suspension. */
export async function apply(r: Replaying, d: Decision): Promise<Open | void> {
  const { rt, m, def, history, cnt, outbox, at } = r;
  const ending = { rt, m, outbox, delivery: at.delivery, history, cnt, startedAt: at.startedAt };
  if (d.kind !== "suspended" && !cnt && overran(def.timeoutMs, at.begun, rt.now())) {
    // A leaf that ran past its deadline is not recorded as ended: its deadline check goes out now
    // (its first delivery may not have sent it yet: executor.ts), and the coordinator times the
    // attempt out or retries it, as for a Lambda that died.
    const c = timeoutCheck(rt, m);
    if (c) {
      outbox.push({ msg: { ...c, deadline: at.begun + c.timeoutMs } });
      return;
    }
  }
  switch (d.kind) {
    case "completed": {
      await finish({ ...ending, status: "SUCCEEDED", outcome: { ok: true, value: d.value } });
      const key = cacheLookup(def, m.args);
      if (key) await writeCached(rt, key, await offload(rt.payloads, `cache/${def.name}`, d.value), def.name);
      return;
    }
    case "failed": {
      const next = afterFailure({
        retries: def.retries,
        attempt: m.attempt,
        error: d.error,
        timedOut: false,
        hasChildren: cnt !== undefined,
      });
      if (next.kind === "retry") return retry(rt, m, next.delayMs, d.error, at.delivery, outbox);
      return finish({ ...ending, status: next.status, outcome: { ok: false, error: next.error } });
    }
    case "suspended":
      return suspend(r, d);
    default:
      d satisfies never;
  }
}
