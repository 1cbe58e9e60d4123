/**
 * One Lambda function's sandboxes: OS processes running dev/deployed/sandbox.mjs, each serving one
 * invocation at a time and reused while warm, at most `concurrency` at once (reserved concurrency
 * or the event source's maximum). The function's Timeout is enforced by SIGKILL, its MemorySize
 * is the heap limit, and chaos may SIGKILL a sandbox at its n-th AWS request of an invocation
 * (before or after the service acts on it) or just before its result is returned.
 */
import { fork, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { closeSync, openSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Chaos } from "./chaos.ts";

const RUNNER = fileURLToPath(new URL("./sandbox.mjs", import.meta.url));
/** Most AWS requests into an invocation at which a planned kill lands. */
const KILL_SPAN = 8;
/**
 * Sandboxes beyond the function's concurrency that chaos duplicates may start: a duplicate runs
 * beside the invocations filling the limit, but every one starting a process of its own would
 * spend seconds of CPU per duplicate; past the spare, a duplicate waits for a sandbox like any
 * other invocation (on AWS it takes concurrency too).
 */
const DUPLICATE_SPARE = 1;

export interface FunctionSpec {
  logicalId: string;
  name: string;
  arn: string;
  logGroupName: string;
  taskDir: string;
  handler: string;
  memoryMiB: number;
  timeoutSeconds: number;
  /** The template's Environment.Variables, resolved, plus the harness's endpoints. */
  env: Record<string, string>;
  concurrency: number;
  logFile: string;
}

/** An invocation that did not return a value: Lambda's error for it. */
export class InvocationError extends Error {
  constructor(
    message: string,
    readonly kind: "handler" | "timeout" | "killed" | "crash" | "init",
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "InvocationError";
  }
}

interface KillPlan {
  atRequest: number;
  phase: "before" | "after";
  seen: number;
}

/** What one invocation's AWS requests cost, as the IAM proxy saw them. */
export interface InvocationRequests {
  requests: number;
  throttled: number;
  /** Milliseconds the services took to answer, summed over the requests. */
  serviceMs: number;
}

interface Current {
  id: string;
  requests: InvocationRequests;
  resolve(v: unknown): void;
  reject(e: Error): void;
  plan: KillPlan | undefined;
  timer: NodeJS.Timeout;
}

class Sandbox {
  readonly accessKeyId: string;
  readonly process: ChildProcess;
  readonly ready: Promise<{ initMs: number; cpuMs: number }>;
  /** When it last finished an invocation (for reaping idle sandboxes). */
  idleSince = 0;
  current: Current | undefined;
  dead = false;
  killedFor: "timeout" | "chaos" | "idle" | undefined;

  constructor(spec: FunctionSpec, accessKeyId: string, logFd: number, onExit: (s: Sandbox) => void) {
    this.accessKeyId = accessKeyId;
    this.process = fork(RUNNER, [spec.taskDir, spec.handler], {
      cwd: spec.taskDir,
      execArgv: [`--max-old-space-size=${spec.memoryMiB}`],
      env: { ...spec.env, AWS_ACCESS_KEY_ID: accessKeyId },
      stdio: ["ignore", logFd, logFd, "ipc"],
      serialization: "advanced",
    });
    this.ready = new Promise((ok, fail) => {
      this.process.on("message", (m: any) => {
        if (m.t === "ready") ok({ initMs: m.initMs as number, cpuMs: m.cpuMs as number });
        else if (m.t === "init-error")
          fail(new InvocationError(`${spec.name}: init failed: ${m.error.message}`, "init"));
        else if (m.t === "done" && this.current?.id === m.id) {
          const c = this.current!;
          if (m.ok) c.resolve(m.value);
          else
            c.reject(
              new InvocationError(`${m.error.name}: ${m.error.message}`, "handler", { cause: m.error }),
            );
        } else if (m.t === "crash") {
          this.current?.reject(new InvocationError(`Runtime crashed: ${m.error.message}`, "crash"));
        }
      });
      this.process.on("exit", (code, signal) => {
        this.dead = true;
        const why =
          this.killedFor === "timeout"
            ? new InvocationError(`Task timed out after ${spec.timeoutSeconds} seconds`, "timeout")
            : this.killedFor === "chaos"
              ? new InvocationError(`Runtime exited with signal SIGKILL (chaos)`, "killed")
              : new InvocationError(`Runtime exited with ${signal ?? `code ${code}`}`, "crash");
        fail(why);
        this.current?.reject(why);
        onExit(this);
      });
    });
    this.ready.catch(() => undefined);
    // A send to a sandbox that just died fails its invocation (below), not the harness.
    this.process.on("error", () => undefined);
  }

  kill(reason: "timeout" | "chaos" | "idle"): void {
    if (this.dead) return;
    // Dead from now on: the exit event comes later, and no invocation may be sent meanwhile.
    this.dead = true;
    this.killedFor ??= reason;
    this.process.kill("SIGKILL");
  }
}

export interface PoolStats {
  invocations: number;
  coldStarts: number;
  initMs: number[];
  /** CPU milliseconds of each cold start (process boot and the bundle's import). */
  initCpuMs: number[];
  /** Idle sandboxes stopped after `idleSeconds` without an invocation. */
  reaped: number;
  errors: number;
  timeouts: number;
  kills: number;
}

export class FunctionPool {
  readonly spec: FunctionSpec;
  readonly stats: PoolStats = {
    invocations: 0,
    coldStarts: 0,
    initMs: [],
    initCpuMs: [],
    reaped: 0,
    errors: 0,
    timeouts: 0,
    kills: 0,
  };
  private readonly chaos: Chaos;
  private readonly idle: Sandbox[] = [];
  private readonly live = new Set<Sandbox>();
  private readonly byKey = new Map<string, Sandbox>();
  private readonly waiting: Array<() => void> = [];
  private readonly keyPrefix: string;
  private readonly logFd: number;
  private next = 0;
  private closed = false;
  private readonly reaper: NodeJS.Timeout | undefined;

  /** `idleSeconds`: a sandbox idle that long is stopped, as Lambda reclaims idle ones; 0 keeps them. */
  constructor(spec: FunctionSpec, chaos: Chaos, keyPrefix: string, idleSeconds = 0) {
    this.spec = spec;
    this.chaos = chaos;
    this.keyPrefix = keyPrefix;
    this.logFd = openSync(spec.logFile, "a");
    if (idleSeconds > 0) {
      this.reaper = setInterval(() => this.reap(idleSeconds * 1000), Math.min(idleSeconds * 1000, 5_000));
      this.reaper.unref();
    }
  }

  private reap(idleMs: number): void {
    const now = Date.now();
    for (const s of this.idle.splice(0)) {
      if (s.dead) continue;
      if (now - s.idleSince < idleMs) {
        this.idle.push(s);
        continue;
      }
      this.stats.reaped++;
      s.kill("idle");
    }
  }

  owns(accessKeyId: string): boolean {
    return accessKeyId.startsWith(this.keyPrefix);
  }

  /** Runs one invocation in a warm sandbox, or a new one if none is free and the limit allows. */
  async invoke(
    event: unknown,
    options: {
      /** A chaos duplicate: may use a spare sandbox beyond the concurrency (DUPLICATE_SPARE). */
      extra?: boolean;
      started?: (sandbox: string) => void;
      /** Receives the invocation's requests as it ends, whether or not it returned. */
      requests?: InvocationRequests;
    } = {},
  ): Promise<unknown> {
    const sandbox = await this.acquire(this.spec.concurrency + (options.extra ? DUPLICATE_SPARE : 0));
    this.stats.invocations++;
    try {
      options.started?.(`sandbox ${sandbox.accessKeyId.slice(-4)} pid ${sandbox.process.pid}`);
      return await this.run(sandbox, event, options.requests ?? { requests: 0, throttled: 0, serviceMs: 0 });
    } catch (e) {
      this.stats.errors++;
      throw e;
    } finally {
      this.release(sandbox);
    }
  }

  /** The most recently used idle sandbox (the warmest), else a new one while fewer than `limit` live. */
  private async acquire(limit: number): Promise<Sandbox> {
    for (;;) {
      if (this.closed) throw new InvocationError(`${this.spec.name}: stopped`, "crash");
      const warm = this.idle.pop();
      if (warm && !warm.dead) return warm;
      if (warm) continue;
      if (this.live.size < limit) return this.start();
      await new Promise<void>((ok) => this.waiting.push(ok));
    }
  }

  private start(): Sandbox {
    const key = `${this.keyPrefix}${(this.next++).toString(36).toUpperCase().padStart(4, "0")}`;
    const s = new Sandbox(this.spec, key, this.logFd, (dead) => {
      this.live.delete(dead);
      this.byKey.delete(dead.accessKeyId);
      // Every waiter looks again: the freed place may fit only a duplicate's limit (one spare more).
      for (const w of this.waiting.splice(0)) w();
    });
    this.live.add(s);
    this.byKey.set(key, s);
    this.stats.coldStarts++;
    s.ready
      .then((r) => (this.stats.initMs.push(r.initMs), this.stats.initCpuMs.push(r.cpuMs)))
      .catch(() => undefined);
    return s;
  }

  private release(s: Sandbox): void {
    s.current = undefined;
    s.idleSince = Date.now();
    if (!s.dead && !this.closed) this.idle.push(s);
    this.waiting.shift()?.();
  }

  private async run(s: Sandbox, event: unknown, requests: InvocationRequests): Promise<unknown> {
    await s.ready;
    const deadline = Date.now() + this.spec.timeoutSeconds * 1000;
    const plan: KillPlan | undefined = this.chaos.rollKill()
      ? {
          atRequest: this.chaos.between(1, KILL_SPAN),
          phase: this.chaos.random() < 0.5 ? "before" : "after",
          seen: 0,
        }
      : undefined;
    const id = randomUUID();
    const value = await new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.stats.timeouts++;
        s.kill("timeout");
      }, this.spec.timeoutSeconds * 1000);
      s.current = {
        id,
        requests,
        plan,
        timer,
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
      s.process.send(
        {
          t: "invoke",
          id,
          event,
          deadline,
          requestId: id,
          functionName: this.spec.name,
          functionArn: this.spec.arn,
          memoryMiB: this.spec.memoryMiB,
          logGroupName: this.spec.logGroupName,
        },
        (err) => {
          if (err)
            s.current?.reject(
              new InvocationError(`Runtime exited before the invocation: ${err.message}`, "crash"),
            );
        },
      );
    });
    // A planned kill the invocation never reached lands at its very end: the result is lost.
    if (plan) {
      this.killNow(s);
      throw new InvocationError("Runtime exited with signal SIGKILL (chaos, at the end)", "killed");
    }
    return value;
  }

  private killNow(s: Sandbox): void {
    if (s.current) s.current.plan = undefined;
    this.stats.kills++;
    this.chaos.counts.kills++;
    s.kill("chaos");
  }

  /** The proxy's hook: the sandbox signing with `key` is about to send a request. */
  beforeRequest(key: string): "kill" | undefined {
    const s = this.byKey.get(key);
    if (s?.current) s.current.requests.requests++;
    const plan = s?.current?.plan;
    if (!s || !plan) return undefined;
    plan.seen++;
    if (plan.seen === plan.atRequest && plan.phase === "before") {
      this.killNow(s);
      return "kill";
    }
    return undefined;
  }

  /** The proxy's hook: the service answered the sandbox's request. */
  afterResponse(key: string, serviceMs: number): "kill" | undefined {
    const s = this.byKey.get(key);
    if (s?.current) s.current.requests.serviceMs += serviceMs;
    const plan = s?.current?.plan;
    if (!s || !plan || plan.seen !== plan.atRequest || plan.phase !== "after") return undefined;
    this.killNow(s);
    return "kill";
  }

  /** The proxy's hook: chaos answered the sandbox's request with a throttle. */
  throttled(key: string): void {
    const c = this.byKey.get(key)?.current;
    if (c) c.requests.throttled++;
  }

  async stop(): Promise<void> {
    this.closed = true;
    clearInterval(this.reaper);
    for (const w of this.waiting.splice(0)) w();
    const exits = [...this.live].map(
      (s) => new Promise<void>((ok) => (s.dead ? ok() : s.process.once("exit", () => ok()))),
    );
    for (const s of this.live) s.process.kill("SIGKILL");
    await Promise.all(exits);
    closeSync(this.logFd);
  }
}
