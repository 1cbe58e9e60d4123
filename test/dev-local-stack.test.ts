/**
 * `aloft dev` keeps to this machine and keeps its data (issue 20). The real CLI runs as a child
 * process, with umask 000 so that owner-only modes cannot come from the umask:
 * - every listening TCP socket of its process tree (Node, the watchdog, Java) is on loopback, read
 *   from /proc/net/tcp{,6} and the processes' socket inodes (Linux only);
 * - a foreign origin's CORS preflight gets no allow-origin, and a simple request from a foreign
 *   origin or naming a foreign Host (DNS rebinding) is refused, on DynamoDB Local and on fauxqs;
 * - with --persist, a run finished before a restart keeps its status and result, and a run in
 *   flight at the stop finishes after the restart;
 * - the outputs file, the persist directory and the embedded store (with its WAL and SHM files
 *   and lock) are owner-only.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from "node:fs";
import { request } from "node:http";
import type { IncomingHttpHeaders } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { AloftClient } from "../sdk/aws/client.ts";
import { devNotes } from "../dev/announce.ts";
import { StoreLock } from "../sdk/local/lock.ts";
import { Store } from "../sdk/local/store.ts";
import { ROOT, startDev as startDevIn, stopDev } from "./helpers/cli.ts";
import type { DevProcess } from "./helpers/cli.ts";

const TASKS = join(ROOT, "test/fixtures/dev-stack-tasks.ts");
/** Starts `aloft dev` over the test's task module. */
const startDev = (cwd: string, args: string[]): Promise<DevProcess> => startDevIn(cwd, [TASKS, ...args]);

/** A client of the stack `dev` runs, configured as another shell would be from its exports. */
function clientOf(dev: DevProcess): AloftClient {
  Object.assign(process.env, dev.exports);
  return new AloftClient(undefined, { outputsFile: dev.exports["ALOFT_OUTPUTS_FILE"]! });
}

/** `pid` and its descendants, from /proc/<pid>/stat parent ids. */
function processTree(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // Fields after the parenthesised command name: state, ppid, ...
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parents.set(Number(entry), ppid);
    } catch {
      // Exited meanwhile.
    }
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    for (const [child, parent] of parents) if (parent === tree[i]) tree.push(child);
  }
  return tree;
}

function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // Closed meanwhile.
    }
  }
  return inodes;
}

/** /proc/net/tcp{,6} addresses are 32-bit words in host (little-endian) order. */
function procAddress(hex: string): number[] {
  const bytes: number[] = [];
  for (let w = 0; w < hex.length; w += 8) {
    const word = hex.slice(w, w + 8);
    for (let b = 6; b >= 0; b -= 2) bytes.push(parseInt(word.slice(b, b + 2), 16));
  }
  return bytes;
}

function isLoopback(bytes: number[]): boolean {
  if (bytes.length === 4) return bytes[0] === 127;
  const prefix = bytes.slice(0, 10).every((b) => b === 0);
  if (prefix && bytes[10] === 0xff && bytes[11] === 0xff) return bytes[12] === 127; // ::ffff:127.x
  return prefix && bytes.slice(10, 15).every((b) => b === 0) && bytes[15] === 1; // ::1
}

/** Every listening TCP socket whose inode is in `inodes`: its address bytes and port. */
function listeningSockets(inodes: Set<string>): Array<{ address: number[]; port: number }> {
  const found: Array<{ address: number[]; port: number }> = [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of readFileSync(table, "utf8").split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      if (f.length < 10 || f[3] !== "0A" || !inodes.has(f[9]!)) continue;
      const [addr, port] = f[1]!.split(":");
      found.push({ address: procAddress(addr!), port: parseInt(port!, 16) });
    }
  }
  return found;
}

const modeOf = (path: string) => statSync(path).mode & 0o777;

/** An HTTP request with exactly these headers (fetch would not send Host or Origin as given). */
function rawRequest(
  endpoint: string,
  method: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: IncomingHttpHeaders }> {
  const url = new URL(endpoint);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path: "/", headers }, (res) => {
      res.resume();
      res.once("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.once("error", reject);
    req.end();
  });
}

describe("aloft dev keeps to this machine and keeps its data", { timeout: 300_000 }, () => {
  const work = mkdtempSync(join(tmpdir(), "aloft-dev-stack-"));
  const persist = join(work, "state");
  let previousUmask = 0;
  let dev: DevProcess | undefined;

  before(() => {
    // Whatever the umask lets through, local state must still be owner-only.
    previousUmask = process.umask(0o000);
  });
  after(async () => {
    if (dev) await stopDev(dev);
    process.umask(previousUmask);
    rmSync(work, { recursive: true, force: true });
  });

  it("listens on loopback only, refuses foreign origins and hosts, and keeps runs across a restart", async () => {
    dev = await startDev(work, ["--persist", persist]);
    assert.match(dev.output(), /listening on 127\.0\.0\.1 only/);
    assert.match(dev.output(), new RegExp(`state: kept in ${persist}`));
    const dynamo = dev.exports["AWS_ENDPOINT_URL_DYNAMODB"]!;
    const sqs = dev.exports["AWS_ENDPOINT_URL_SQS"]!;
    assert.ok(dynamo && sqs, `endpoints printed:\n${dev.output()}`);

    if (process.platform === "linux") {
      const tree = processTree(dev.child.pid!);
      const inodes = new Set(tree.flatMap((pid) => [...socketInodes(pid)]));
      const sockets = listeningSockets(inodes);
      const ports = sockets.map((s) => s.port);
      // Not vacuous: both emulators' sockets are among those checked.
      for (const endpoint of [dynamo, sqs])
        assert.ok(ports.includes(Number(new URL(endpoint).port)), endpoint);
      for (const s of sockets) {
        assert.ok(isLoopback(s.address), `port ${s.port} listens on ${s.address.join(".")}, not loopback`);
      }
    }

    for (const endpoint of [dynamo, sqs]) {
      const preflight = await rawRequest(endpoint, "OPTIONS", {
        Origin: "http://evil.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-amz-target,authorization",
      });
      assert.equal(preflight.headers["access-control-allow-origin"], undefined, `${endpoint} preflight`);
      // A "simple" request (no preflight guards it) from a foreign page, and one from a page whose
      // DNS name was rebound to 127.0.0.1 (it sends its own name as Host).
      const simple = await rawRequest(endpoint, "POST", {
        Origin: "http://evil.example",
        "Content-Type": "text/plain",
      });
      assert.equal(simple.status, 403, `${endpoint} serves a foreign origin`);
      const rebound = await rawRequest(endpoint, "GET", { Host: "evil.example" });
      assert.equal(rebound.status, 403, `${endpoint} serves a foreign Host`);
    }

    const outputs = join(work, ".aloft", "dev-outputs.json");
    assert.equal(modeOf(outputs), 0o600, "outputs file");
    assert.equal(modeOf(join(work, ".aloft", "dev-task-logs.jsonl")), 0o600, "task log file");
    assert.equal(modeOf(join(work, ".aloft")), 0o700, "outputs directory");
    assert.equal(modeOf(persist), 0o700, "persist directory");
    for (const sub of ["dynamodb", "fauxqs"]) assert.equal(modeOf(join(persist, sub)), 0o700, sub);

    // One run finished, one in flight (its second child not yet dispatched) when the stack stops.
    let client = clientOf(dev);
    const finished = await client.start("devstack.addOne", "[41]");
    assert.equal(await finished.result(), 42);
    const inFlight = await client.start("devstack.twoNaps", "[1500]");
    for (let seen = false; !seen;) {
      const status = await inFlight.status();
      seen = (status.root?.children.length ?? 0) > 0;
      if (!seen) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal((await client.getRun(inFlight.id))?.status, "RUNNING");
    client.destroy();
    await stopDev(dev);

    dev = await startDev(work, ["--persist", persist]);
    assert.match(dev.output(), /restored [1-9]\d* queued message/);
    client = clientOf(dev);
    try {
      assert.equal((await client.getRun(finished.id))?.status, "SUCCEEDED");
      assert.equal(await client.attach(finished.id).result(), 42);
      let timer: NodeJS.Timeout | undefined;
      const done = await Promise.race([
        client.attach(inFlight.id).result(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error("in-flight run did not finish")), 60_000);
        }),
      ]).finally(() => clearTimeout(timer));
      assert.deepEqual(done, ["rested", "rested"]);
    } finally {
      client.destroy();
    }
    await stopDev(dev);
    dev = undefined;
  });

  it("says where it listens and that state is in memory without --persist", () => {
    const notes = devNotes({ mode: "emulators", warnings: [] });
    assert.match(notes, /listening on 127\.0\.0\.1 only/);
    assert.match(notes, /state: in memory; stopping aloft dev loses every run/);
    const exposed = devNotes({
      mode: "emulators",
      warnings: ["DynamoDB Local listens on EVERY network interface"],
    });
    assert.match(exposed, /WARNING: DynamoDB Local listens on EVERY network interface/);
    assert.doesNotMatch(exposed, /listening on 127\.0\.0\.1 only/);
  });

  it("creates the embedded store, its WAL and SHM files and its lock owner-only", () => {
    const path = join(work, "embedded", ".aloft", "aloft.db");
    const lock = StoreLock.acquire(path);
    const store = new Store(path);
    try {
      store.db.exec("CREATE TABLE IF NOT EXISTS probe (x); INSERT INTO probe VALUES (1)");
      assert.equal(modeOf(join(work, "embedded", ".aloft")), 0o700, ".aloft directory");
      for (const file of [path, `${path}-wal`, `${path}-shm`, `${path}.lock`]) {
        assert.ok(existsSync(file), file);
        assert.equal(modeOf(file), 0o600, file);
      }
    } finally {
      store.close();
      lock.release();
    }
  });
});
