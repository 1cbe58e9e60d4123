/**
 * Live progress while `aloft run` waits: one bar per group of children (done/total, failures),
 * drawn on stderr only when it is a terminal.
 */
import { MultiBar, Presets } from "cli-progress";
import type { SingleBar } from "cli-progress";
import type { Run } from "../run-handle.ts";

export class Progress {
  private readonly bars = new MultiBar(
    {
      format: " {group} |{bar}| {value}/{total} {failed}",
      hideCursor: true,
      clearOnComplete: false,
      stream: process.stderr,
    },
    Presets.shades_classic,
  );
  private readonly byGroup = new Map<string, SingleBar>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly run: Run) {}

  start(): void {
    this.timer = setInterval(() => this.draw(), 200);
    this.timer.unref();
  }

  private draw(): void {
    for (const p of this.run.progress()) {
      const label = (p.group || "children").padEnd(20).slice(0, 20);
      const failed = p.failed ? `(${p.failed} failed)` : "";
      let bar = this.byGroup.get(p.group);
      if (!bar)
        this.byGroup.set(p.group, (bar = this.bars.create(p.total, p.done, { group: label, failed })));
      bar.setTotal(p.total);
      bar.update(p.done, { group: label, failed });
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.draw();
    this.bars.stop();
  }
}
