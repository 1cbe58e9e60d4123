/**
 * Every message on an Aloft queue, validated with zod on receipt: a body that does not parse, or
 * parses to something else, is rejected before any state is touched. `v` is the message format
 * version: this Aloft sends MESSAGE_VERSION and accepts every version back to OLDEST_VERSION, so
 * messages in flight across an upgrade are still handled (each version only adds kinds and
 * optional fields); a newer one is rejected (dead-lettered), not guessed at.
 */
import { z } from "zod";

export const MESSAGE_VERSION = 8;
/**
 * The oldest version still accepted: v1 had no `dispatch` kind, sweep cursor or check arguments; v2
 * no per-call settings (`o`) or sweeps of listed `ids`; v3 no `signal` kind or durable-wait field
 * (`dw`) on execs; v4 no recovery (`tw` on actions, `rec` on starts: docs/recover.md); v5 no
 * `callback` kind; v6 no `resend` kind; v7 no `recheck` kind.
 */
export const OLDEST_VERSION = 1;

const id = z.string().min(1).max(200);
const version = z.number().int().min(OLDEST_VERSION).max(MESSAGE_VERSION);

/** The window slot an item of a windowed `map` holds: part name, slot, position in the part (state/windows.ts). */
const slot = {
  window: z.string().optional(),
  ws: z.number().int().min(0).optional(),
  wq: z.number().int().min(0).optional(),
};

/** Settings a call site overrides (`task.override`: sdk/core/task-def.ts CallSettings). */
const settings = z.object({
  retries: z
    .object({
      count: z.number().int().min(0),
      backoff: z.object({
        baseMs: z.number().min(0),
        factor: z.number().min(1),
        capMs: z.number().min(0),
        jitter: z.number().min(0).max(1).optional(),
      }),
    })
    .optional(),
  timeoutMs: z.number().positive().optional(),
  cacheVersion: z.union([z.string(), z.literal(false)]).optional(),
  memoryMiB: z.number().int().optional(),
});

/** What identifies one action, in every message about it. */
const action = {
  run: id,
  id,
  parent: id.nullable(),
  task: z.string().min(1),
  group: z.string(),
  ...slot,
  /** The call's settings, when its call site overrides the task's. */
  o: settings.optional(),
  /** In a recovered run: where the same call's outcome is in each source run (sdk/core/recover.ts). */
  tw: z.array(z.tuple([id, z.string(), id])).optional(),
};

/** Coordinator: start a run (sent by the client). */
export const StartMessage = z.object({
  k: z.literal("start"),
  v: version,
  run: id,
  task: z.string().min(1),
  /** Serialised argument list or payload reference. */
  args: z.string(),
  created: z.number(),
  /** A recovery (docs/recover.md): the runs it recovers, newest first. */
  rec: z.array(id).optional(),
});

/** Coordinator: a child reached a terminal state. */
export const DoneMessage = z.object({
  k: z.literal("done"),
  v: version,
  run: id,
  parent: id,
  id,
  ok: z.boolean(),
  /** Set for items of a windowed `map`: the slot the item frees. */
  ...slot,
  /**
   * The release token of the delivery that produced this completion, when an executor tried to
   * release its slot itself and handed over to the coordinator (state/windows.ts).
   */
  tok: z.number().int().min(1).optional(),
  /** Times this completion was sent back to the queue by a coordinator whose count of it failed. */
  rq: z.number().int().min(1).optional(),
});

/** Coordinator: several completions in one message (an executor batch's). */
export const DonesMessage = z.object({
  k: z.literal("dones"),
  v: version,
  d: z
    .array(DoneMessage.omit({ k: true, v: true }))
    .min(1)
    .max(10_000),
});

/** Coordinator: check, at `deadline`, whether attempt `attempt` of an action has finished. */
export const TimeoutMessage = z.object({
  k: z.literal("timeout"),
  v: version,
  /** With the window slot the action holds, released if it times out. */
  ...action,
  attempt: z.number().int().min(1),
  deadline: z.number(),
  timeoutMs: z.number(),
  /** The action's arguments, for a retry (else read from the parent's call records). */
  args: z.string().optional(),
});

/** Coordinator: cancel what remains under an action that ended (its children, recursively). */
export const SweepMessage = z.object({
  k: z.literal("sweep"),
  v: version,
  run: id,
  id,
  reason: z.string(),
  /** Where the previous page of the action's call chunks ended (a chunk's sort key). */
  after: z.string().optional(),
  /** Only these children of `id` (those its replay cancelled), not a page of its calls. */
  ids: z.array(id).min(1).max(1000).optional(),
});

/** Coordinator: send calls `from` .. `n` - 1 of a committed epoch (fan-out.ts continueDispatch). */
export const DispatchMessage = z.object({
  k: z.literal("dispatch"),
  v: version,
  run: id,
  /** The parent whose calls these are, and its task. */
  id,
  task: z.string().min(1),
  epoch: z.number().int().min(1),
  from: z.number().int().min(0),
  n: z.number().int().min(1),
});

/** Coordinator: signal `name` was stored for `run`: hand it to the first open wait for it (lambdas/waits). */
export const SignalMessage = z.object({
  k: z.literal("signal"),
  v: version,
  run: id,
  name: z.string().min(1).max(256),
});

/** Coordinator: callback `key` (its secret) of `run` was completed: settle its wait (lambdas/callbacks.ts). */
export const CallbackMessage = z.object({
  k: z.literal("callback"),
  v: version,
  run: id,
  key: z.string().regex(/^[A-Za-z0-9_-]{32}$/),
});

/**
 * Coordinator: send again the unsettled children of a stalled parent whose calls the reconciler's
 * first page did not reach: one page of call chunks after `after`, then the next (open-calls.ts).
 */
export const ResendMessage = z.object({
  k: z.literal("resend"),
  v: version,
  run: id,
  /** The parent whose calls these are, and its task. */
  id,
  task: z.string().min(1),
  /** Where the previous page of the parent's call chunks ended (a chunk's sort key). */
  after: z.string().min(1),
});

/**
 * Coordinator: look again at a parent's resume of `epoch`, marked by another delivery and not yet
 * sent, once that mark is old enough for anyone to send it (lambdas/resume.ts).
 */
export const RecheckMessage = z.object({
  k: z.literal("recheck"),
  v: version,
  run: id,
  id,
  epoch: z.number().int().min(1),
});

export const CoordinatorMessage = z.discriminatedUnion("k", [
  SignalMessage,
  CallbackMessage,
  StartMessage,
  DoneMessage,
  DonesMessage,
  TimeoutMessage,
  SweepMessage,
  DispatchMessage,
  ResendMessage,
  RecheckMessage,
]);

/** Executor: run (or replay, at `epoch` > 0) one action. */
export const ExecMessage = z.object({
  k: z.literal("exec"),
  v: version,
  ...action,
  args: z.string(),
  attempt: z.number().int().min(1),
  /** 0 for a first execution; the counter epoch being resumed otherwise. */
  epoch: z.number().int().min(0),
  /** Not before this time (ms): delays longer than SQS's 900 s are served by re-delaying. */
  notBefore: z.number().optional(),
  /**
   * A durable wait's (`sleep`, `waitForSignal`: sdk/core/durable-waits.ts) making: its epoch's commit
   * time, and its position in that epoch — the order in which signal waits take signals, the same
   * for every dispatch of it (an exec sent by an older handler carries its dispatch time instead).
   */
  dw: z.object({ at: z.number(), pos: z.number().int().min(0) }).optional(),
});

export type StartMessage = z.infer<typeof StartMessage>;
export type DoneMessage = z.infer<typeof DoneMessage>;
export type DonesMessage = z.infer<typeof DonesMessage>;
export type TimeoutMessage = z.infer<typeof TimeoutMessage>;
export type SweepMessage = z.infer<typeof SweepMessage>;
export type DispatchMessage = z.infer<typeof DispatchMessage>;
export type ResendMessage = z.infer<typeof ResendMessage>;
export type RecheckMessage = z.infer<typeof RecheckMessage>;
export type SignalMessage = z.infer<typeof SignalMessage>;
export type CallbackMessage = z.infer<typeof CallbackMessage>;
export type CoordinatorMessage = z.infer<typeof CoordinatorMessage>;
export type ExecMessage = z.infer<typeof ExecMessage>;

/** Enough of a message to name the action it was about, for failing that action clearly. */
export const ActionRef = z.object({
  run: id,
  // Whatever else is malformed, these only have to be usable to name the action.
  id: id.optional().catch(undefined),
  parent: id.nullable().optional().catch(undefined),
  task: z.string().optional().catch(undefined),
});

export type Parsed<T> =
  { ok: true; msg: T } | { ok: false; error: string; ref: z.infer<typeof ActionRef> | undefined };

export function parseMessage<T>(schema: z.ZodType<T>, body: string): Parsed<T> {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (e) {
    return { ok: false, error: `message body is not JSON (${(e as Error).message})`, ref: undefined };
  }
  const r = schema.safeParse(json);
  if (r.success) return { ok: true, msg: r.data };
  const ref = ActionRef.safeParse(json);
  const issues = r.error.issues
    .slice(0, 5)
    .map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`)
    .join("; ");
  return {
    ok: false,
    error: `message is not an Aloft message of this version (${issues})`,
    ref: ref.success ? ref.data : undefined,
  };
}

/** What an exec message (and its done) carries for an item of a windowed map (state/windows.ts). */
export interface WindowTag {
  /** The window part's name. */
  window: string;
  /** The slot the item holds, and its position in the part. */
  ws: number;
  wq: number;
}

/** The window tag a message carries, if it carries a whole one. */
export function tagFrom(m: {
  window?: string | undefined;
  ws?: number | undefined;
  wq?: number | undefined;
}): WindowTag | undefined {
  return m.window !== undefined && m.ws !== undefined && m.wq !== undefined
    ? { window: m.window, ws: m.ws, wq: m.wq }
    : undefined;
}

/** The completion of the action `m` is about; an item of a windowed map names the slot it frees. */
export function doneOf(
  m: Pick<ExecMessage, "run" | "id" | "window" | "ws" | "wq">,
  parent: string,
  ok: boolean,
): DoneMessage {
  return { k: "done", v: MESSAGE_VERSION, run: m.run, parent, id: m.id, ok, ...tagFrom(m) };
}

/** The identity of the action `m` is about (and its window slot), to copy into a message about it. */
export function actionOf(
  m: Pick<ExecMessage, "run" | "id" | "parent" | "task" | "group" | "window" | "ws" | "wq" | "o" | "tw">,
) {
  return {
    run: m.run,
    id: m.id,
    parent: m.parent,
    task: m.task,
    group: m.group,
    ...tagFrom(m),
    ...(m.o ? { o: m.o } : {}),
    ...(m.tw ? { tw: m.tw } : {}),
  };
}
