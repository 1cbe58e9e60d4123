/** Per run and group: how many children were called, how many ended, how many failed. */
import type { GroupProgress } from "../run-handle.ts";

export class Progress {
  private readonly groups = new Map<string, GroupProgress>();

  constructor(private readonly onDone: (p: GroupProgress) => void) {}

  total(runId: string, group: string): void {
    const key = `${runId}\u0000${group}`;
    let p = this.groups.get(key);
    if (!p) this.groups.set(key, (p = { runId, group, total: 0, done: 0, failed: 0 }));
    p.total++;
  }

  done(runId: string, group: string, ok: boolean): void {
    const p = this.groups.get(`${runId}\u0000${group}`);
    if (!p) return;
    p.done++;
    if (!ok) p.failed++;
    this.onDone(p);
  }

  of(runId: string): GroupProgress[] {
    return [...this.groups.values()].filter((p) => p.runId === runId);
  }
}
