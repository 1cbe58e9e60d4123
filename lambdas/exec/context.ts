/**
 * What the executor's steps on one batch share: the batch's prefetched items, what it sends to the
 * coordinator at its end, and which delivery of a message this is.
 */
import type { DoneMessage, ExecMessage, SweepMessage, TimeoutMessage } from "../../sdk/aws/messages.ts";
import { batchGet } from "../../sdk/aws/store/io.ts";
import type { Runtime } from "../../sdk/aws/runtime.ts";
import { counterKey, runKey } from "../../sdk/aws/store/table.ts";
import type { CounterItem } from "../../sdk/aws/store/table.ts";
import type { ReplayClaim } from "../../sdk/aws/store/counters.ts";
import type { History } from "../../sdk/core/history.ts";
import type { TaskDef } from "../../sdk/core/task-def.ts";

/** What one batch sends to the coordinator at its end, in one SendMessageBatch. */
export type Outbox = { msg: DoneMessage | TimeoutMessage | SweepMessage; delaySeconds?: number }[];

/** The batch's prefetched items (runs and counters), by keyId. */
export type ExecContext = Map<string, Record<string, unknown>>;

/**
 * One read for the whole batch: its parents' counters (a child of an ended parent cancels itself;
 * a cancelled or ended run has ended its root's counter first), and for a root its run and its own
 * counter. A child's own counter is read only when its body turns out to be a parent's (executeOne):
 * BatchGetItem bills a read for every key, found or not, and most children are leaves.
 */
export async function prefetch(rt: Runtime, msgs: ExecMessage[]): Promise<ExecContext> {
  const keys = [];
  for (const m of msgs) {
    if (m.parent) keys.push(counterKey(m.parent));
    else keys.push(runKey(m.run), counterKey(m.id));
  }
  return batchGet(rt, keys);
}

/** An executeOne whose action is still open when it returns (it suspended): its check must go. */
export type Open = "open";

/** One delivery of an exec message: its SQS message id (a redelivery keeps it) and whether it is one. */
export interface Delivery {
  id: string;
  redelivered: boolean;
}

/** When this delivery began, and when the attempt it continues began (a parent's first execution). */
export interface Attempt {
  begun: number;
  startedAt: number;
  delivery: Delivery;
  /** The replay lease this replay holds on its parent (a resume's; store/counters.ts claimReplay). */
  lease?: ReplayClaim;
}

/** An action being replayed at one epoch: what every step after the replay works with. */
export interface Replaying {
  rt: Runtime;
  m: ExecMessage;
  def: TaskDef;
  /** Its arguments, resolved (an S3 reference read). */
  args: string;
  history: History;
  /** Its counter, if it suspended before. */
  cnt: CounterItem | undefined;
  /** The completions counted when the replay began (the suspension commits against them). */
  snap: { co: number; ce: number };
  outbox: Outbox;
  at: Attempt;
}
