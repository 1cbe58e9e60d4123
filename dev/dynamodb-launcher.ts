/**
 * The loopback launcher for DynamoDB Local (dev/java/AloftDynamoDbLocal.java), compiled once per
 * user into a private cache. DynamoDB Local 3.x has no option to choose the interface it listens
 * on (its Jetty connector binds every interface), and no Java system property reaches that
 * connector; the launcher sets the connector's host before the server starts.
 *
 * Compiling needs the `jdk.compiler` module (any JDK; most JRE packages too). Without it there is
 * no launcher, and the caller falls back to the plain jar, which listens on every interface.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensurePrivateDir } from "../sdk/local/private-files.ts";

export const LAUNCHER_CLASS = "AloftDynamoDbLocal";
const SOURCE = fileURLToPath(new URL(`./java/${LAUNCHER_CLASS}.java`, import.meta.url));
const COMPILE_TIMEOUT_MS = 120_000;

/** Why the launcher could not be built: the caller decides whether to run the plain jar instead. */
export class LauncherUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "LauncherUnavailableError";
  }
}

/**
 * The directory holding the compiled launcher (a classpath entry), compiling it on first use.
 * `classpath` is DynamoDB Local's (the jar and its lib/*), which the launcher compiles against.
 */
export async function loopbackLauncher(java: string, jarDir: string, classpath: string): Promise<string> {
  const source = readFileSync(SOURCE);
  // Keyed by the source and the DynamoDB Local release it was compiled against.
  const key = createHash("sha256").update(source).update(basename(jarDir)).digest("hex").slice(0, 16);
  const root = cacheRoot();
  const dir = join(root, `dynamodb-launcher-${key}`);
  if (existsSync(join(dir, `${LAUNCHER_CLASS}.class`))) {
    assertPrivate(dir);
    return dir;
  }
  const staging = mkdtempSync(join(root, "staging-"));
  try {
    await compile(java, classpath, staging);
    try {
      renameSync(staging, dir);
    } catch (err) {
      // Another process finished compiling first; its copy is as good as ours.
      if (!existsSync(join(dir, `${LAUNCHER_CLASS}.class`))) throw err;
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  assertPrivate(dir);
  return dir;
}

/**
 * $XDG_CACHE_HOME/aloft, else ~/.cache/aloft; created owner-only, since Java will load code from
 * it. Where the home directory cannot be written (a locked-down CI user), a fresh private
 * temporary directory: the launcher is then compiled at every start.
 */
function cacheRoot(): string {
  const base = process.env["XDG_CACHE_HOME"] || join(homedir(), ".cache");
  const root = join(base, "aloft");
  try {
    ensurePrivateDir(root);
  } catch (err) {
    if (!["EACCES", "EPERM", "EROFS"].includes((err as NodeJS.ErrnoException).code ?? "")) throw err;
    return mkdtempSync(join(tmpdir(), "aloft-launcher-"));
  }
  assertPrivate(root);
  return root;
}

/** Code loaded from a directory others can write to would be theirs to choose. */
function assertPrivate(dir: string): void {
  const st = statSync(dir);
  const uid = process.getuid?.();
  if ((uid !== undefined && st.uid !== uid) || (st.mode & 0o022) !== 0) {
    throw new LauncherUnavailableError(
      `${dir} is writable by other users or not owned by you; remove it (it is only a cache) and retry`,
    );
  }
}

async function compile(java: string, classpath: string, outDir: string): Promise<void> {
  // javac through the java launcher: works wherever the runtime has jdk.compiler, javac on PATH or not.
  const args = [
    "-m",
    "jdk.compiler/com.sun.tools.javac.Main",
    "--release",
    "17",
    "-nowarn",
    "-cp",
    classpath,
    "-d",
    outDir,
    SOURCE,
  ];
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn(java, args, { stdio: ["ignore", "pipe", "pipe"] });
    let text = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), COMPILE_TIMEOUT_MS);
    child.stdout.on("data", (c: Buffer) => (text += c.toString("utf8")));
    child.stderr.on("data", (c: Buffer) => (text += c.toString("utf8")));
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(new LauncherUnavailableError(`cannot run ${java} to compile the launcher`, { cause: err }));
    });
    child.once("exit", (exitCode) => {
      clearTimeout(timer);
      resolve({ code: exitCode, output: text.trim() });
    });
  });
  if (code !== 0) {
    const reason = /jdk\.compiler/.test(output)
      ? `this Java runtime has no jdk.compiler module (install a JDK, e.g. openjdk-17-jdk-headless)`
      : `javac failed (exit ${code ?? "?"}): ${output.slice(-2_000)}`;
    throw new LauncherUnavailableError(`cannot compile the DynamoDB Local loopback launcher: ${reason}`);
  }
}
