/**
 * Counting a batch's completions per parent (one counter update per parent per batch, however many
 * children finished), advancing map windows without replaying the parent, then resuming parents
 * whose wait may be satisfied.
 */
import { sendToCoordinator } from "../../sdk/aws/transport/dispatch.ts";
import type { DoneMessage } from "../../sdk/aws/messages.ts";
import { maybeResume } from "../resume.ts";
import type { Runtime } from "../../sdk/aws/runtime.ts";
import { addCompletions } from "../../sdk/aws/store/counters.ts";
import { isHosted, releaseHosted, releaseSlots, releaseToken, tagFrom } from "../../sdk/aws/store/windows.ts";
import type { Release } from "../../sdk/aws/store/windows.ts";
import { sendOccupants } from "../windows.ts";

/**
 * Counts a batch's completions, from the coordinator or from an executor releasing a hosted
 * window: per parent, one write — the release of the slots of the window part its counter hosts,
 * which counts the batch's completions with it, or else one ADD — then one conditional update per
 * other window part, releasing the finished items' slots exactly once and letting the next items
 * out (state/windows.ts); then the parent's resume if its wait may be satisfied.
 */
export async function countCompletions(rt: Runtime, msgs: Delivered<DoneMessage>[]): Promise<void> {
  const byParent = new Map<
    string,
    {
      kids: Map<string, { msg: DoneMessage; tok: number; also: number[] }>;
      by: Set<number>;
      all: DoneMessage[];
    }
  >();
  for (const d of msgs) {
    const p = byParent.get(d.msg.parent) ?? {
      kids: new Map(),
      by: new Set<number>(),
      all: [] as DoneMessage[],
    };
    byParent.set(d.msg.parent, p);
    // The release token of the delivery that produced it (an executor's, handed over) or of this one.
    const tok = d.msg.tok ?? releaseToken(d.id);
    // A duplicate inside one batch is counted once — with every token that carried it: which one
    // marks the slot depends on the order the batch's messages finished in, and a redelivery of the
    // batch must find the mark as its own whatever the order was then.
    const seen = p.kids.get(d.msg.id);
    if (seen) {
      if (seen.tok !== tok && !seen.also.includes(tok)) seen.also.push(tok);
    } else p.kids.set(d.msg.id, { msg: d.msg, tok, also: [] });
    // Every message's token, duplicates included: a resume one of them decided and did not mark
    // sent is sent again by its redelivery (resume.ts).
    p.by.add(tok);
    p.all.push({ ...d.msg, tok });
  }
  // A parent whose counting fails (throttled, a transient error) must not fail the others: its
  // completions alone go back to the coordinator queue, each with the token of the delivery that
  // produced it — duplicates too, so every token of the batch comes back — and whatever the failed
  // attempt committed (a window's moves, a resume mark) is found as theirs (state/windows.ts).
  // The batch is retried as a whole only if that send fails too — then parents counted here are
  // counted again, which only resumes them early (docs/aws.md).
  const failed: DoneMessage[] = [];
  let firstError: unknown;
  await Promise.all(
    [...byParent].map(async ([parent, { kids, by, all }]) => {
      try {
        await countParent(rt, parent, kids, by);
      } catch (e) {
        firstError ??= e;
        rt.log.warn("counting a parent's completions failed; they go back to the queue", {
          parent,
          count: kids.size,
          error: String(e),
        });
        failed.push(...all);
      }
    }),
  );
  if (!failed.length) return;
  // A completion whose count keeps failing is not requeued for ever: after REQUEUES the batch
  // fails, its messages are delivered again and, if it still fails, dead-letter (and the DLQ
  // consumer fails the parent) — every message ends somewhere.
  if (!countOptions.requeue || failed.some((d) => (d.rq ?? 0) >= REQUEUES)) throw firstError;
  await sendToCoordinator(
    rt,
    failed.map((msg) => ({ msg: { ...msg, rq: (msg.rq ?? 0) + 1 } })),
  );
}

/** Times a completion is requeued before its batch is failed instead. */
const REQUEUES = 3;

/** Tests turn this off to see a failing parent fail its whole batch (the behaviour it replaced). */
export const countOptions = { requeue: true };

export async function countParent(
  rt: Runtime,
  parent: string,
  kids: Map<string, { msg: DoneMessage; tok: number; also?: number[] }>,
  by: Set<number>,
): Promise<void> {
  // Completions of the window part the counter hosts are counted by its release (exactly once
  // each); all others here, with it if there is one, else in one ADD.
  const others = { ok: 0, err: 0 };
  let run = "";
  let hosted: { name: string; items: Release[] } | undefined;
  const windows = new Map<string, Release[]>();
  for (const { msg: k, tok, also } of kids.values()) {
    run = k.run;
    const tag = tagFrom(k);
    const release = tag && { ...tag, ok: k.ok, tok, ...(also?.length ? { also } : {}) };
    if (release && isHosted(release.window)) {
      hosted ??= { name: release.window, items: [] };
      if (hosted.name === release.window) {
        hosted.items.push(release);
        continue;
      }
    }
    if (k.ok) others.ok++;
    else others.err++;
    if (release) {
      const list = windows.get(release.window) ?? [];
      windows.set(release.window, list);
      list.push(release);
    }
  }
  const { cnt, freed } = hosted
    ? await releaseHosted(rt, parent, hosted.name, hosted.items, others)
    : { cnt: await addCompletions(rt, parent, others.ok, others.err), freed: [] };
  await sendOccupants(rt, run, parent, freed);
  if (!cnt) {
    rt.log.debug("completions for an ended or unknown parent ignored", { parent, count: kids.size });
    return;
  }
  await Promise.all(
    [...windows].map(async ([name, items]) =>
      sendOccupants(rt, run, parent, await releaseSlots(rt, parent, name, items)),
    ),
  );
  await maybeResume(rt, parent, cnt, [...by]);
}

/** A message with the SQS id of its delivery (kept across redeliveries of the same message). */
export interface Delivered<M> {
  id: string;
  msg: M;
}
