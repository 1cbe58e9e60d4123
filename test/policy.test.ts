/**
 * The orchestration policy (sdk/core/policy.ts), table-driven: both adapters carry out exactly these
 * decisions, so the rules are tested here once.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { afterFailure, cacheLookup, descendantsReason, isRetryable, overran } from "../sdk/core/policy.ts";
import type { RetryPolicy, TaskDef } from "../sdk/core/task-def.ts";
import type { SerializedError } from "../sdk/errors.ts";

const policy = (count: number): RetryPolicy => ({ count, backoff: { baseMs: 100, factor: 2, capMs: 1000 } });
const err = (code: string, more: Partial<SerializedError> = {}): SerializedError => ({
  name: "Error",
  message: "boom",
  code,
  ...more,
});

describe("afterFailure", () => {
  const rows: {
    why: string;
    retries: RetryPolicy | undefined;
    attempt: number;
    error: SerializedError;
    timedOut?: boolean;
    hasChildren?: boolean;
    expect: "retry" | "FAILED" | "TIMED_OUT";
    delayMs?: number;
  }[] = [
    {
      why: "a thrown error with retries left",
      retries: policy(2),
      attempt: 1,
      error: err("TASK_ERROR"),
      expect: "retry",
      delayMs: 100,
    },
    {
      why: "backoff grows by the factor",
      retries: policy(3),
      attempt: 3,
      error: err("TASK_ERROR"),
      expect: "retry",
      delayMs: 400,
    },
    {
      why: "backoff is capped",
      retries: policy(9),
      attempt: 8,
      error: err("TASK_ERROR"),
      expect: "retry",
      delayMs: 1000,
    },
    {
      why: "the last attempt ends it",
      retries: policy(2),
      attempt: 3,
      error: err("TASK_ERROR"),
      expect: "FAILED",
    },
    { why: "no retries", retries: policy(0), attempt: 1, error: err("TASK_ERROR"), expect: "FAILED" },
    {
      why: "a task no longer registered",
      retries: undefined,
      attempt: 1,
      error: err("TASK_ERROR"),
      expect: "FAILED",
    },
    {
      why: "non-recoverable",
      retries: policy(2),
      attempt: 1,
      error: err("TASK_ERROR", { nonRecoverable: true }),
      expect: "FAILED",
    },
    {
      why: "non-recoverable in the cause chain",
      retries: policy(2),
      attempt: 1,
      error: err("TASK_ERROR", { cause: err("X", { nonRecoverable: true }) }),
      expect: "FAILED",
    },
    {
      why: "a child's failure surfacing in its parent",
      retries: policy(2),
      attempt: 1,
      error: err("TASK_FAILED"),
      expect: "FAILED",
    },
    {
      why: "non-determinism",
      retries: policy(2),
      attempt: 1,
      error: err("NON_DETERMINISM"),
      expect: "FAILED",
    },
    { why: "a cancel", retries: policy(2), attempt: 1, error: err("CANCELLED"), expect: "FAILED" },
    {
      why: "a parent that made calls",
      retries: policy(2),
      attempt: 1,
      error: err("TASK_ERROR"),
      hasChildren: true,
      expect: "FAILED",
    },
    {
      why: "a timeout with retries left",
      retries: policy(1),
      attempt: 1,
      error: err("TASK_TIMEOUT"),
      timedOut: true,
      expect: "retry",
      delayMs: 100,
    },
    {
      why: "a timeout on the last attempt",
      retries: policy(1),
      attempt: 2,
      error: err("TASK_TIMEOUT"),
      timedOut: true,
      expect: "TIMED_OUT",
    },
    {
      why: "a parent that timed out",
      retries: policy(1),
      attempt: 1,
      error: err("TASK_TIMEOUT"),
      timedOut: true,
      hasChildren: true,
      expect: "TIMED_OUT",
    },
  ];
  for (const r of rows) {
    it(`${r.why}: ${r.expect}`, () => {
      const d = afterFailure({
        retries: r.retries,
        attempt: r.attempt,
        error: r.error,
        timedOut: r.timedOut ?? false,
        hasChildren: r.hasChildren ?? false,
      });
      if (r.expect === "retry") {
        assert.deepEqual(d, { kind: "retry", attempt: r.attempt + 1, delayMs: r.delayMs });
      } else {
        assert.equal(d.kind, "end");
        if (d.kind !== "end") return;
        assert.equal(d.status, r.expect);
        assert.equal(d.error.attempts, r.attempt, "the final error counts the attempts made");
        assert.equal(d.error.code, r.error.code);
      }
    });
  }

  it("jitter shortens the backoff by at most its fraction", () => {
    const retries: RetryPolicy = { count: 1, backoff: { baseMs: 1000, factor: 2, capMs: 5000, jitter: 0.5 } };
    const at = (random: number) =>
      afterFailure({
        retries,
        attempt: 1,
        error: err("E"),
        timedOut: false,
        hasChildren: false,
        random: () => random,
      });
    assert.deepEqual(at(0), { kind: "retry", attempt: 2, delayMs: 1000 });
    assert.deepEqual(at(1), { kind: "retry", attempt: 2, delayMs: 500 });
  });
});

describe("the rest of the policy", () => {
  it("retryable errors", () => {
    assert.equal(isRetryable(err("TASK_ERROR")), true);
    for (const code of [
      "TASK_FAILED",
      "TASK_TIMEOUT",
      "CANCELLED",
      "SERIALIZATION",
      "CONFIGURATION",
      "HISTORY",
    ])
      assert.equal(isRetryable(err(code)), false, code);
  });
  it("a body overran its timeout only past it, and never without one", () => {
    assert.equal(overran(100, 0, 100), false);
    assert.equal(overran(100, 0, 101), true);
    assert.equal(overran(undefined, 0, 1e9), false);
  });
  it("descendants are cancelled with their ancestor's name and how it ended", () => {
    assert.equal(descendantsReason("env.p", "FAILED"), "its parent env.p ended FAILED");
    assert.equal(descendantsReason("env.p", "TIMED_OUT"), "its parent env.p timed out");
  });
  it("a result is cached only for a task with a cache version, keyed by task, version and inputs", () => {
    const def = (cacheVersion: string | false) => ({ name: "env.t", cacheVersion }) as unknown as TaskDef;
    assert.equal(cacheLookup(def(false), "[1]"), undefined);
    const k = cacheLookup(def("v1"), "[1]");
    assert.equal(typeof k, "string");
    assert.equal(cacheLookup(def("v1"), "[1]"), k);
    assert.notEqual(cacheLookup(def("v2"), "[1]"), k);
    assert.notEqual(cacheLookup(def("v1"), "[2]"), k);
  });
});
