/**
 * Callbacks (issue 18), on every backend the semantic suite runs on: completed after and before
 * the await, failed, timed out; a duplicate completion, an unknown id and a callback of a run that
 * has ended are refused with the error that says which.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { it } from "node:test";
import { setTimeout as pause } from "node:timers/promises";
import { CallbackCompletedError, RunEndedError, UnknownCallbackError } from "aloft";
import type { Run } from "aloft";
import { flatten } from "../helpers/status.ts";
import type { Backend } from "./backend.ts";
import * as c from "./tasks-callbacks.ts";

/** The id a run's task published under `key`. */
async function idOf(key: string): Promise<string> {
  for (let i = 0; i < 1200; i++) {
    const id = c.publishedId(key);
    if (id) return id;
    await pause(50);
  }
  assert.fail(`no callback id was published under ${key}`);
}

/** The status node of the run's callback, once it waits. */
async function waitingNode(r: Run<unknown>) {
  for (let i = 0; i < 1200; i++) {
    const n = flatten((await r.status()).root).find((x) => x.task === "aloft:callback");
    if (n?.waiting) return n;
    await pause(50);
  }
  assert.fail(`run ${r.id} never showed a waiting callback`);
}

const rejects = (p: Promise<unknown>, type: new (...a: any[]) => Error, re: RegExp) =>
  assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof type, `${String(e)} is not a ${type.name}`);
    assert.match((e as Error).message, re);
    return true;
  });

export function callbackScenarios(backend: () => Backend, key: () => string): void {
  it("callback completed after the await: the payload; status shows it WAITING; a second completion is refused", async () => {
    const b = backend();
    const k = key();
    const r = await b.run(c.awaitCallback, k, "1h");
    const id = await idOf(k);
    assert.match(id, new RegExp(`^cb\\.${r.id}\\.[A-Za-z0-9_-]{32}$`), "the id names its run");
    const n = await waitingNode(r);
    assert.equal(n.status, "WAITING");
    assert.match(
      n.waiting ?? "",
      new RegExp(
        `^callback cb\\.${r.id}\\.${id.slice(-32, -26)}… since \\d{4}-\\d\\d-\\d\\dT.*, times out at \\d{4}-`,
      ),
    );
    assert.ok(!n.waiting!.includes(id.slice(-20)), "status shows a prefix of the secret, not the secret");
    await b.completeCallback(id, { ok: true, at: new Date(0) });
    assert.deepEqual(await r.result(), { got: { ok: true, at: new Date(0) } });
    await rejects(
      b.completeCallback(id, 2),
      CallbackCompletedError,
      /already completed.*first completion wins/,
    );
  });

  it("callback completed before the task awaits it: the completion is kept", async () => {
    const b = backend();
    const k = key();
    const r = await b.run(c.awaitLater, k);
    await b.completeCallback(await idOf(k), "early");
    await r.signal("go");
    assert.deepEqual(await r.result(), { got: "early" });
  });

  it("failCallback rejects the await with a TaskError carrying the message; two callbacks are distinct", async () => {
    const b = backend();
    const k = key();
    const r = await b.run(c.awaitCallback, k);
    await b.failCallback(await idOf(k), "payment declined");
    const got = (await r.result()) as { failed: string; cause: string };
    assert.match(got.failed, /aloft:callback failed.*payment declined/);
    assert.equal(got.cause, "payment declined");

    const two = await b.run(c.twoCallbacks, k);
    const [ida, idb] = [await idOf(`${k}-a`), await idOf(`${k}-b`)];
    assert.notEqual(ida, idb);
    await b.completeCallback(idb, "B");
    await b.completeCallback(ida, "A");
    assert.deepEqual(await two.result(), ["A", "B"]);
  });

  it("callback timeout: TaskTimeoutError; a completion after it is refused", async () => {
    const b = backend();
    const k = key();
    const r = await b.run(c.awaitCallback, k, "300ms");
    const got = (await r.result()) as { timedOut: string };
    assert.match(got.timedOut, /^callback [A-Za-z0-9_-]{6}… was not completed within 300 ms$/);
    await rejects(b.completeCallback(await idOf(k), 1), CallbackCompletedError, /timed out/);
  });

  it("an unknown id, a malformed one, and a callback of a run that has ended are refused", async () => {
    const b = backend();
    const k = key();
    const r = await b.run(c.awaitCallback, k);
    const id = await idOf(k);
    const forged = `cb.${r.id}.${randomBytes(24).toString("base64url")}`;
    await rejects(b.completeCallback(forged, 1), UnknownCallbackError, /has no callback/);
    await rejects(b.completeCallback("cb.nope", 1), UnknownCallbackError, /is not a callback id/);
    await rejects(
      b.failCallback(`cb.r-missing.${forged.slice(-32)}`, "x"),
      UnknownCallbackError,
      /no run r-missing/,
    );
    await b.completeCallback(id, "fine");
    assert.deepEqual(await r.result(), { got: "fine" });

    const ended = await b.run(c.abandon, `${k}-x`);
    const late = await idOf(`${k}-x`);
    assert.equal(await ended.result(), "done");
    await rejects(b.completeCallback(late, 1), RunEndedError, /has ended \(SUCCEEDED\)/);
  });
}
