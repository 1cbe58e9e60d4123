/** The engine's ready queue: action ids in the order they became ready, consumed from a head. */
import type { CallId } from "../core/history.ts";

export class ReadyQueue {
  private ids: CallId[] = [];
  private head = 0;

  push(id: CallId): void {
    this.ids.push(id);
  }

  get size(): number {
    return this.ids.length - this.head;
  }

  shift(): CallId | undefined {
    if (this.head >= this.ids.length) return undefined;
    return this.ids[this.head++];
  }

  /** Drops the consumed prefix once it is large, so the array does not grow without bound. */
  compact(): void {
    if (this.head > 4096 && this.head * 2 > this.ids.length) {
      this.ids = this.ids.slice(this.head);
      this.head = 0;
    }
  }
}
