/** Per run and group: how many children were called, how many ended, how many failed. */
import type { GroupProgress } from "../run-handle.ts";

export class Progress {
  /** By run, then group (no key string built per child). */
  private readonly runs = new Map<string, Map<string, GroupProgress>>();

  constructor(private readonly onDone: (p: GroupProgress) => void) {}

  total(runId: string, group: string): void {
    let groups = this.runs.get(runId);
    if (!groups) this.runs.set(runId, (groups = new Map()));
    let p = groups.get(group);
    if (!p) groups.set(group, (p = { runId, group, total: 0, done: 0, failed: 0 }));
    p.total++;
  }

  done(runId: string, group: string, ok: boolean): void {
    const p = this.runs.get(runId)?.get(group);
    if (!p) return;
    p.done++;
    if (!ok) p.failed++;
    this.onDone(p);
  }

  of(runId: string): GroupProgress[] {
    return [...(this.runs.get(runId)?.values() ?? [])];
  }
}
