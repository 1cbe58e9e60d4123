/**
 * Where each SQS message of the deployed-shape harness has been: received by an event source,
 * held back or duplicated by chaos, waiting for a sandbox, in one, and how that invocation ended.
 * The soak prints the trace of every message that names a stuck run, so a stuck run says which
 * message stalled and where (in a queue, waiting for a sandbox, lost), not only that it stalled.
 */

export type TraceEvent =
  | "received"
  | "delayed"
  | "duplicated"
  | "waiting"
  | "invoked"
  | "succeeded"
  | "item failed"
  | "failed"
  | "killed";

export interface MessageHistory {
  messageId: string;
  queue: string;
  /** What the body is about: its kind and the runs and actions it names. */
  kind: string;
  runs: string[];
  actions: string[];
  events: Array<{ at: number; event: TraceEvent; detail?: string }>;
}

/** The run and action ids an Aloft message body names (a `dones` names several). */
function parseBody(body: string): Pick<MessageHistory, "kind" | "runs" | "actions"> {
  try {
    const m = JSON.parse(body) as {
      k?: string;
      run?: string;
      id?: string;
      d?: Array<{ run: string; id: string }>;
    };
    const items = m.d ?? [m];
    return {
      kind: m.k ?? "?",
      runs: [...new Set(items.flatMap((i) => (i.run ? [i.run] : [])))],
      actions: [...new Set(items.flatMap((i) => (i.id ? [i.id] : [])))],
    };
  } catch {
    return { kind: "unparsed", runs: [], actions: [] };
  }
}

export class MessageTrace {
  private readonly byId = new Map<string, MessageHistory>();
  private readonly byRun = new Map<string, Set<MessageHistory>>();
  private readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  /** Records `event` for a message, parsing its body the first time the message is seen. */
  note(messageId: string, queue: string, body: string, event: TraceEvent, detail?: string): void {
    let h = this.byId.get(messageId);
    if (!h) {
      h = { messageId, queue, ...parseBody(body), events: [] };
      this.byId.set(messageId, h);
      for (const run of h.runs) {
        const set = this.byRun.get(run) ?? new Set();
        set.add(h);
        this.byRun.set(run, set);
      }
    }
    h.events.push({ at: this.now(), event, ...(detail ? { detail } : {}) });
  }

  /** Every message naming `run`, oldest first. */
  ofRun(run: string): MessageHistory[] {
    return [...(this.byRun.get(run) ?? [])].sort((a, b) => a.events[0]!.at - b.events[0]!.at);
  }

  /** One line per message: its kind, queue, actions and events relative to `since` (ms). */
  describe(run: string, since: number): string[] {
    return this.ofRun(run).map((h) => {
      const events = h.events
        .map((e) => `${((e.at - since) / 1000).toFixed(1)}s ${e.event}${e.detail ? ` (${e.detail})` : ""}`)
        .join(", ");
      return `${h.kind} ${h.messageId.slice(0, 8)} on ${h.queue} [${h.actions.join(" ")}]: ${events}`;
    });
  }
}
