/**
 * What a suspended body waits for, and when it can make progress again.
 *
 * A suspension records a {@link Wait}: a tree whose leaves are child calls and whose inner nodes are
 * the combinators the body used (`Promise.all`, `allSettled`, `race`, `any`, a `map` stream). The
 * body can progress as soon as *any* awaited root is satisfied; the adapter resumes it then, and
 * not before. A {@link WaitTracker} evaluates the tree incrementally, O(depth) per settled child,
 * so a gather of 100,000 children costs O(N) in total to watch and resumes its parent once.
 */
import type { CallId } from "./history.ts";

export type Wait =
  /** One child call. */
  | { kind: "call"; id: CallId }
  /** A value already known in the replay (a settled plain promise inside a combinator). */
  | { kind: "const"; ok: boolean }
  /** Something the engine cannot see into; never satisfies by itself. */
  | { kind: "opaque" }
  | { kind: "all" | "allSettled" | "any" | "race"; of: Wait[] }
  /**
   * An in-order stream over `ids` (a `map`): satisfied once the settled prefix starting at `from`
   * reaches `from + batch` items or the end, or (with `failFast`) hits a failure; or, for a map
   * with completion rules, once `quota.ok` items from `from` on succeeded or `quota.err` failed.
   */
  | {
      kind: "stream";
      ids: CallId[];
      from: number;
      batch: number;
      failFast: boolean;
      quota?: { ok: number; err: number };
    };

/** Every child call a wait mentions. */
/** Whether `w` mentions any child call (without listing them: a gather may hold 100,000). */
export function hasCall(w: Wait): boolean {
  switch (w.kind) {
    case "call":
      return true;
    case "const":
    case "opaque":
      return false;
    case "stream":
      return w.from < w.ids.length;
    default:
      return w.of.some(hasCall);
  }
}

export function waitCalls(w: Wait, out: CallId[] = []): CallId[] {
  switch (w.kind) {
    case "call":
      out.push(w.id);
      break;
    case "const":
    case "opaque":
      break;
    case "all":
    case "allSettled":
    case "any":
    case "race":
      for (const c of w.of) waitCalls(c, out);
      break;
    case "stream":
      for (let i = w.from; i < w.ids.length; i++) out.push(w.ids[i]!);
      break;
    default:
      w satisfies never;
  }
  return out;
}

type Result = "ok" | "err" | undefined;

interface Node {
  parent: Node | undefined;
  /** Settle the node with a child's result; returns its own result once decided. */
  onChild(index: number, r: "ok" | "err"): Result;
  result: Result;
  indexInParent: number;
}

class Combinator implements Node {
  result: Result;
  private ok = 0;
  private err = 0;
  private firstErr = false;
  constructor(
    readonly kind: "all" | "allSettled" | "any" | "race",
    private readonly size: number,
    public parent: Node | undefined,
    public indexInParent: number,
  ) {}
  onChild(_i: number, r: "ok" | "err"): Result {
    if (this.result) return undefined;
    if (r === "ok") this.ok++;
    else {
      this.err++;
      this.firstErr = true;
    }
    const settled = this.ok + this.err;
    switch (this.kind) {
      case "all":
        if (this.firstErr) this.result = "err";
        else if (this.ok === this.size) this.result = "ok";
        break;
      case "allSettled":
        if (settled === this.size) this.result = "ok";
        break;
      case "any":
        if (this.ok > 0) this.result = "ok";
        else if (this.err === this.size) this.result = "err";
        break;
      case "race":
        this.result = r;
        break;
    }
    return this.result;
  }
  /** An empty `all`/`allSettled` is already satisfied; an empty `race` never is (as in JS). */
  initialResult(): Result {
    if (this.size > 0) return undefined;
    if (this.kind === "all" || this.kind === "allSettled") return "ok";
    if (this.kind === "any") return "err";
    return undefined;
  }
}

class Stream implements Node {
  result: Result;
  private readonly settled: Uint8Array; // 0 pending, 1 ok, 2 err
  private next: number;
  private ok = 0;
  private err = 0;
  constructor(
    readonly size: number,
    private readonly from: number,
    private readonly batch: number,
    private readonly failFast: boolean,
    public parent: Node | undefined,
    public indexInParent: number,
    private readonly quota: { ok: number; err: number } | undefined,
  ) {
    this.settled = new Uint8Array(size);
    this.next = from;
  }
  onChild(i: number, r: "ok" | "err"): Result {
    if (this.result) return undefined;
    this.settled[i] = r === "ok" ? 1 : 2;
    if (r === "ok") this.ok++;
    else this.err++;
    if (this.quota && (this.ok >= this.quota.ok || this.err >= this.quota.err)) return (this.result = "ok");
    while (this.next < this.size && this.settled[this.next] !== 0) {
      if (this.failFast && this.settled[this.next] === 2) return (this.result = "ok");
      this.next++;
    }
    if (this.next >= this.size || this.next - this.from >= this.batch) this.result = "ok";
    return this.result;
  }
  initialResult(): Result {
    return this.from >= this.size ? "ok" : undefined;
  }
}

/** One place a watched call sits in a tracker's tree: a node, and the call's index among its members. */
interface Leaf {
  node: Node;
  index: number;
}

/**
 * Incremental evaluation of a set of awaited roots. `settle` returns true the first time any root
 * is satisfied: that is when the parent must be resumed, exactly once per suspension.
 */
export class WaitTracker {
  /**
   * Where each watched call sits: one place, or a list when it appears several times. A gather of
   * N children watches N calls, each in one place: no list per call.
   */
  private readonly leaves = new Map<CallId, Leaf | Leaf[]>();
  private satisfiedFlag = false;

  constructor(roots: readonly Wait[]) {
    const top = new Combinator("race", roots.length, undefined, 0);
    roots.forEach((w, i) => this.build(w, top, i));
    if (top.result) this.satisfiedFlag = true;
  }

  get satisfied(): boolean {
    return this.satisfiedFlag;
  }

  /** Calls whose settlement this tracker still cares about. */
  watched(): IterableIterator<CallId> {
    return this.leaves.keys();
  }

  private build(w: Wait, parent: Node, index: number): void {
    switch (w.kind) {
      case "call":
        this.addLeaf(w.id, { node: parent, index });
        return;
      case "const":
        this.propagate(parent, index, w.ok ? "ok" : "err");
        return;
      case "opaque":
        return;
      case "all":
      case "allSettled":
      case "any":
      case "race": {
        const node = new Combinator(w.kind, w.of.length, parent, index);
        w.of.forEach((c, i) => this.build(c, node, i));
        const r = node.initialResult();
        if (r && !node.result) {
          node.result = r;
          this.propagate(parent, index, r);
        }
        return;
      }
      case "stream": {
        const node = new Stream(w.ids.length, w.from, w.batch, w.failFast, parent, index, w.quota);
        for (let i = w.from; i < w.ids.length; i++) this.addLeaf(w.ids[i]!, { node, index: i });
        const r = node.initialResult();
        if (r) {
          node.result = r;
          this.propagate(parent, index, r);
        }
        return;
      }
      default:
        w satisfies never;
    }
  }

  private addLeaf(id: CallId, leaf: Leaf): void {
    const at = this.leaves.get(id);
    if (at === undefined) this.leaves.set(id, leaf);
    else if (Array.isArray(at)) at.push(leaf);
    else this.leaves.set(id, [at, leaf]);
  }

  private propagate(node: Node | undefined, index: number, r: "ok" | "err"): void {
    while (node) {
      const res = node.onChild(index, r);
      if (!res) return;
      if (!node.parent) {
        this.satisfiedFlag = true;
        return;
      }
      index = node.indexInParent;
      r = res;
      node = node.parent;
    }
  }

  /**
   * Records that a child settled. Idempotent per call id (a duplicate delivery is ignored).
   * Returns true if this settlement is the one that satisfies the wait.
   */
  settle(id: CallId, ok: boolean): boolean {
    const at = this.leaves.get(id);
    if (!at || this.satisfiedFlag) return false;
    this.leaves.delete(id);
    if (!Array.isArray(at)) {
      this.propagate(at.node, at.index, ok ? "ok" : "err");
      return this.satisfiedFlag;
    }
    for (const { node, index } of at) {
      this.propagate(node, index, ok ? "ok" : "err");
      if (this.satisfiedFlag) return true;
    }
    return false;
  }
}
