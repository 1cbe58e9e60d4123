/**
 * The `aloft` command. Local (embedded engine) by default.
 */
import { Command, CommanderError } from "commander";
import { resolve } from "node:path";
import { existsSync } from "node:fs";
import { AloftError, ConfigurationError, TaskError, deserializeError } from "../errors.ts";
import type { SerializedError } from "../errors.ts";
import { resolveTask } from "../registry.ts";
import { init, recover, resultOf, resume, run, shutdown, getEngine } from "../run.ts";
import { checkRecoverable } from "../core/recover.ts";
import { Store } from "../local/store.ts";
import { StoreLock } from "../local/lock.ts";
import type { RunRow } from "../local/store.ts";
import { runStatus } from "../local/status.ts";
import { WaitStore } from "../local/wait-store.ts";
import { checkSignalName, shownId } from "../core/durable-waits.ts";
import { completionOutcome, failureOutcome, parseCallbackId } from "../core/callbacks.ts";
import { completeInStore } from "../local/complete-callback.ts";
import { withinGrace } from "../callback.ts";
import { serialize } from "../serde.ts";
import { renderStatus, renderRuns } from "./render.ts";
import { Progress } from "./progress.ts";
import type { Task } from "../task.ts";
import { serializeArgs } from "../core/calls.ts";
import { initProject } from "./init.ts";
import { loadModule } from "./load-module.ts";
import type { Run } from "../run-handle.ts";
import { LOG_PAGE, formatLog, localLogs, printAwsLogs, resolveAction } from "./logs.ts";

/** The `--aws` side, loaded only by a command that uses it: local commands never load the AWS SDK. */
const awsCli = (): Promise<typeof import("./aws.ts")> => import("./aws.ts");

const DEFAULT_STORE = ".aloft/aloft.db";
const UI_PORT = 7433; // sdk/cli/ui/command.ts DEFAULT_UI_PORT (not imported: the UI loads on use)

function fail(message: string, code = 2): never {
  process.stderr.write(`aloft: ${message}\n`);
  process.exit(code);
}

function parseArgs(raw: string[]): unknown[] {
  return raw.map((a, i) => {
    try {
      return JSON.parse(a) as unknown;
    } catch (e) {
      throw new ConfigurationError(
        `argument ${i + 1} is not valid JSON (${(e as Error).message}): ${a}\n` +
          `  pass each task argument as JSON, e.g. 3 '"text"' '["a","b"]'`,
      );
    }
  });
}

function findTaskByName(name: string): Task<(...a: unknown[]) => unknown> {
  return resolveTask(name) as Task<(...a: unknown[]) => unknown>;
}

function openRead(storePath: string): Store {
  const abs = resolve(storePath);
  if (!existsSync(abs)) fail(`no store at ${abs}: no run has been made here yet (aloft run ...)`);
  return new Store(abs);
}

function findRun(store: Store, id: string): RunRow {
  const exact = store.getRun(id);
  if (exact) return exact;
  const found = store.findRuns(id);
  if (found.length === 1) return found[0]!;
  if (found.length > 1) fail(`run id ${id} is ambiguous: ${found.map((r) => r.id).join(", ")}`);
  return fail(`no run ${id} in ${store.path}; list runs with: aloft runs`);
}

/** A run's row, read from the store and the store closed again (the engine opens it next). */
function readRun(storePath: string, id: string): RunRow {
  const s = openRead(storePath);
  try {
    return findRun(s, id);
  } finally {
    s.close();
  }
}

function printError(e: unknown): void {
  if (e instanceof TaskError) {
    const o = e.original;
    process.stderr.write(
      `aloft: run failed in task ${e.task} after ${e.attempts} attempt(s)\n  ${o.name}: ${o.message}\n`,
    );
    const where = o.stack?.split("\n").find((l) => l.trim().startsWith("at "));
    if (where) process.stderr.write(`  where: ${where.trim()}\n`);
    return;
  }
  if (e instanceof AloftError) {
    process.stderr.write(`aloft: ${e.name}: ${e.message}\n`);
    return;
  }
  process.stderr.write(`aloft: ${(e as Error)?.stack ?? String(e)}\n`);
}

async function follow(r: Run, json: boolean): Promise<number> {
  const progress = !json && process.stderr.isTTY ? new Progress(r) : undefined;
  progress?.start();
  try {
    const value = await r.result();
    progress?.stop();
    process.stdout.write(`${JSON.stringify(value, jsonReplacer, 2)}\n`);
    return 0;
  } catch (e) {
    progress?.stop();
    printError(e);
    return 1;
  }
}

/** Prints Map, Set, BigInt and bytes readably in JSON output. */
function jsonReplacer(_k: string, v: unknown): unknown {
  if (typeof v === "bigint") return v.toString();
  if (v instanceof Map) return Object.fromEntries(v);
  if (v instanceof Set) return [...v];
  if (v instanceof Uint8Array) return Buffer.from(v).toString("base64");
  return v;
}

export function program(): Command {
  const cli = new Command("aloft")
    .description("Aloft: Flyte 2's async task model in TypeScript, embedded or on AWS")
    .option("--store <file>", "local store (SQLite file)", DEFAULT_STORE)
    .showHelpAfterError()
    .exitOverride();

  cli
    .command("run")
    .description("run a task from a module on the embedded engine and print its result as JSON")
    .argument("<module>", "TypeScript or JavaScript file that registers the task")
    .argument("<task>", "task name (e.g. parallelPipeline or data_pipeline.parallelPipeline)")
    .argument("[args...]", "task arguments, each as JSON")
    .option("--workers <n>", "worker threads (default: one per core; 0 = main thread)")
    .option("--memory", "keep state in memory instead of the store file")
    .option("--json", "no progress display")
    .option("--aws", "run on the AWS stack (aloft-outputs.json, --outputs, or ALOFT_* variables)")
    .option("--outputs <file>", "stack outputs file for --aws (cdk deploy --outputs-file)")
    .action(
      async (
        mod: string,
        taskName: string,
        rawArgs: string[],
        o: { workers?: string; memory?: boolean; json?: boolean; aws?: boolean; outputs?: string },
      ) => {
        const args = parseArgs(rawArgs);
        await loadModule(mod);
        const task = findTaskByName(taskName);
        if (o.aws) {
          const client = (await awsCli()).awsClient(o);
          try {
            const r = await client.start(task.taskName, serializeArgs(task.taskName, args));
            if (!o.json) process.stderr.write(`run ${r.id} (${task.taskName}) on ${client.config.table}\n`);
            process.exitCode = await follow(r, true);
          } finally {
            client.destroy();
          }
          return;
        }
        await init({
          store: o.memory ? ":memory:" : cli.opts<{ store: string }>().store,
          ...(o.workers ? { workers: Number(o.workers) } : {}),
        });
        const r = await run(task, ...args);
        if (!o.json) process.stderr.write(`run ${r.id} (${task.taskName})\n`);
        process.exitCode = await follow(r, Boolean(o.json));
        await shutdown();
      },
    );

  cli
    .command("resume")
    .description("continue a run whose process stopped (crash, kill) from its recorded history")
    .argument("<run>", "run id (a unique prefix is enough)")
    .option("--workers <n>", "worker threads")
    .action(async (id: string, o: { workers?: string }) => {
      const storePath = cli.opts<{ store: string }>().store;
      const row = readRun(storePath, id);
      if (row.module) await loadModule(row.module);
      await init({ store: storePath, ...(o.workers ? { workers: Number(o.workers) } : {}) });
      const r = await resume(row.id);
      process.stderr.write(`resuming run ${r.id} (${row.task})\n`);
      process.exitCode = await follow(r, false);
      await shutdown();
    });

  cli
    .command("recover")
    .description(
      "start a new run of a failed, cancelled or timed-out run's task and inputs that reuses every call that succeeded in it",
    )
    .argument("<run>", "run id (a unique prefix is enough; the full id with --aws)")
    .option("--workers <n>", "worker threads")
    .option("--json", "no progress display")
    .option("--aws", "recover a run of the AWS stack")
    .option("--outputs <file>", "stack outputs file for --aws")
    .action(async (id: string, o: { workers?: string; json?: boolean; aws?: boolean; outputs?: string }) => {
      if (o.aws) {
        const client = (await awsCli()).awsClient(o);
        try {
          const r = await client.recover(id);
          process.stderr.write(`run ${r.id} recovers ${id} on ${client.config.table}\n`);
          process.exitCode = await follow(r, true);
        } finally {
          client.destroy();
        }
        return;
      }
      const storePath = cli.opts<{ store: string }>().store;
      const row = readRun(storePath, id);
      checkRecoverable(row);
      if (row.module) await loadModule(row.module);
      await init({ store: storePath, ...(o.workers ? { workers: Number(o.workers) } : {}) });
      const r = await recover(row.id);
      process.stderr.write(`run ${r.id} (${row.task}) recovers ${row.id}\n`);
      process.exitCode = await follow(r, Boolean(o.json));
      await shutdown();
    });

  cli
    .command("status")
    .description("the tree of a run's actions, with groups, states and durations")
    .argument("<run>", "run id (a unique prefix is enough; the full id with --aws)")
    .option("--json", "machine-readable output")
    .option("--aws", "read the run from the AWS stack")
    .option("--outputs <file>", "stack outputs file for --aws")
    .action(async (id: string, o: { json?: boolean; aws?: boolean; outputs?: string }) => {
      if (o.aws) {
        process.stdout.write(await (await awsCli()).awsStatus(id, o));
        return;
      }
      const store = openRead(cli.opts<{ store: string }>().store);
      const s = runStatus(store, findRun(store, id));
      process.stdout.write(o.json ? `${JSON.stringify(s, null, 2)}\n` : renderStatus(s));
      store.close();
    });

  cli
    .command("runs")
    .description("recent runs in the local store")
    .option("-n, --limit <n>", "how many", "20")
    .option("--aws", "list runs of the AWS stack")
    .option("--outputs <file>", "stack outputs file for --aws")
    .action(async (o: { limit: string; aws?: boolean; outputs?: string }) => {
      if (o.aws) {
        process.stdout.write(await (await awsCli()).awsRuns(Number(o.limit), o));
        return;
      }
      const store = openRead(cli.opts<{ store: string }>().store);
      // A RUNNING run whose store no process holds will not progress until it is resumed.
      const held = StoreLock.holder(store.path) !== undefined;
      const note = (r: RunRow): string =>
        r.status === "RUNNING" && !held ? `  (its process stopped: aloft resume ${r.id})` : "";
      process.stdout.write(renderRuns(store.listRuns(Number(o.limit)), note));
      store.close();
    });

  cli
    .command("cancel")
    .description("cancel a run: every queued or running descendant stops")
    .argument("<run>", "run id (a unique prefix is enough; the full id with --aws)")
    .option("--aws", "cancel a run of the AWS stack")
    .option("--outputs <file>", "stack outputs file for --aws")
    .action(async (id: string, o: { aws?: boolean; outputs?: string }) => {
      if (o.aws) {
        process.stdout.write(await (await awsCli()).awsCancel(id, o));
        return;
      }
      const storePath = cli.opts<{ store: string }>().store;
      const store = openRead(storePath);
      const row = findRun(store, id);
      if (row.status !== "RUNNING") {
        process.stdout.write(`run ${row.id} already ended ${row.status}\n`);
        store.close();
        return;
      }
      store.requestCancel(row.id);
      store.close();
      // If no engine holds the store, nobody will see the request: cancel it here.
      try {
        await init({ store: storePath, workers: 0 });
        const engine = await getEngine();
        engine.resumeRun(row.id, false);
        engine.cancelRun(row.id, "cancelled by aloft cancel");
        await engine.waitRun(row.id);
        await shutdown();
      } catch (e) {
        if ((e as AloftError).code !== "STORE_LOCKED") throw e;
        // The engine running it polls for the request and stops every descendant.
      }
      const deadline = Date.now() + 5000;
      for (;;) {
        const s = openRead(storePath);
        const now = s.getRun(row.id)!;
        s.close();
        if (now.status !== "RUNNING") {
          process.stdout.write(`run ${row.id} ${now.status}\n`);
          return;
        }
        if (Date.now() > deadline)
          fail(`cancel requested for ${row.id}; the engine running it has not confirmed yet`, 1);
        await new Promise((r) => setTimeout(r, 100));
      }
    });

  cli
    .command("signal")
    .description(
      "send a signal to a run: the first waitForSignal(name) in it, now or later, receives the payload",
    )
    .argument("<run>", "run id (a unique prefix is enough; the full id with --aws)")
    .argument("<name>", "signal name")
    .argument("[json]", "payload, as JSON (default: null)")
    .option("--aws", "signal a run of the AWS stack")
    .option("--outputs <file>", "stack outputs file for --aws")
    .action(
      async (id: string, name: string, json: string | undefined, o: { aws?: boolean; outputs?: string }) => {
        checkSignalName(name, "aloft signal");
        const [payload] = json === undefined ? [null] : parseArgs([json]);
        if (o.aws) {
          process.stdout.write(await (await awsCli()).awsSignal(id, name, payload, o));
          return;
        }
        const store = openRead(cli.opts<{ store: string }>().store);
        try {
          const row = findRun(store, id);
          // A running engine polls the store for signals, as for cancels; else `aloft resume` finds it.
          new WaitStore(store.db).send(
            row.id,
            name,
            serialize(payload, `payload of signal ${name}`),
            Date.now(),
          );
          const held = StoreLock.holder(store.path) !== undefined;
          process.stdout.write(
            `signal ${JSON.stringify(name)} sent to run ${row.id}` +
              (held ? "\n" : ` (its process stopped: it is delivered when you run aloft resume ${row.id})\n`),
          );
        } finally {
          store.close();
        }
      },
    );

  cli
    .command("callback")
    .description("complete a callback (a task's createCallback().id): its await resolves with the payload")
    .argument("<id>", "the callback's id, cb.<run>.<secret>, whole")
    .argument("[json]", "payload, as JSON (default: null)")
    .option(
      "--fail <message>",
      "fail the callback instead: its await rejects with a TaskError carrying message",
    )
    .option("--aws", "a callback of a run of the AWS stack")
    .option("--outputs <file>", "stack outputs file for --aws")
    .action(
      async (id: string, json: string | undefined, o: { fail?: string; aws?: boolean; outputs?: string }) => {
        if (o.fail !== undefined && json !== undefined)
          throw new ConfigurationError("aloft callback: give a payload or --fail <message>, not both");
        const [payload] = json === undefined ? [null] : parseArgs([json]);
        const { run, secret } = parseCallbackId(id);
        if (o.aws) await (await awsCli()).awsCallback(id, payload, o.fail, o);
        else {
          const outcome =
            o.fail === undefined
              ? completionOutcome(payload, `callback ${shownId(run, secret)}`)
              : failureOutcome(o.fail, `callback ${shownId(run, secret)}`);
          const path = resolve(cli.opts<{ store: string }>().store);
          // The engine running the run polls the store for completions, as for signals.
          await withinGrace(async () => completeInStore(path, id, outcome, Date.now()));
        }
        process.stdout.write(
          `callback ${shownId(run, secret)} ${o.fail === undefined ? "completed" : "failed"}\n`,
        );
      },
    );

  cli
    .command("watch")
    .description("the status tree of a run, redrawn until it ends")
    .argument("<run>", "run id (a unique prefix is enough; the full id with --aws)")
    .option("--interval <ms>", "refresh interval", "1000")
    .option("--aws", "watch a run of the AWS stack")
    .option("--outputs <file>", "stack outputs file for --aws")
    .action(async (id: string, o: { interval: string; aws?: boolean; outputs?: string }) => {
      if (o.aws) return (await awsCli()).awsWatch(id, o);
      for (;;) {
        const store = openRead(cli.opts<{ store: string }>().store);
        const s = runStatus(store, findRun(store, id));
        store.close();
        if (process.stdout.isTTY) process.stdout.write("\x1b[2J\x1b[H");
        process.stdout.write(renderStatus(s));
        if (s.state !== "RUNNING") return;
        await new Promise((r) => setTimeout(r, Number(o.interval)));
      }
    });

  cli
    .command("logs")
    .description("what task bodies printed (console.log/info/warn/error), per action and attempt")
    .argument("<run>", "run id (a unique prefix is enough locally; the full id with --aws)")
    .argument("[action]", "only this action (its id, or a unique prefix locally)")
    // An action id is base64url and may begin with "-": take it as the argument, not an option.
    .allowUnknownOption()
    .option("-f, --follow", "keep printing new lines until the run ends")
    .option("--aws", "read a run of the AWS stack (CloudWatch Logs; under aloft dev, its log file)")
    .option("--outputs <file>", "stack outputs file for --aws")
    .option("--log-group <name...>", "with --aws: log groups to read instead of the stack's executors'")
    .action(
      async (
        id: string,
        action: string | undefined,
        o: { follow?: boolean; aws?: boolean; outputs?: string; logGroup?: string[] },
      ) => {
        const write = (s: string): boolean => process.stdout.write(s);
        if (o.aws) {
          const client = (await awsCli()).awsClient(o);
          try {
            await printAwsLogs(
              client,
              id,
              {
                ...(action ? { action } : {}),
                ...(o.logGroup ? { logGroups: o.logGroup } : {}),
                ...(o.follow ? { follow: true } : {}),
              },
              write,
            );
          } finally {
            client.destroy();
          }
          return;
        }
        const storePath = cli.opts<{ store: string }>().store;
        let last = 0;
        for (;;) {
          const store = openRead(storePath);
          const row = findRun(store, id);
          const only = action ? resolveAction(store, row.id, action) : undefined;
          const page = localLogs(store, row.id, only, last);
          store.close();
          for (const e of page.entries) write(formatLog(e));
          last = page.last;
          // A full page: there is more already; a run still going: more may come.
          if (page.entries.length >= LOG_PAGE) continue;
          if (!o.follow || row.status !== "RUNNING") return;
          await new Promise((r) => setTimeout(r, 500));
        }
      },
    );

  cli
    .command("ui")
    .description("a web UI of the runs (local store, or a stack with --aws) on 127.0.0.1")
    .option("--port <n>", `port (default ${UI_PORT}, or a free one if that is taken)`)
    .option("--aws", "show the runs of the AWS stack")
    .option("--outputs <file>", "stack outputs file for --aws")
    .action(async (o: { port?: string; aws?: boolean; outputs?: string }) => {
      const { serveUi } = await import("./ui/command.ts");
      const storePath = cli.opts<{ store: string }>().store;
      if (!o.aws) openRead(storePath).close(); // says so if there is no store yet
      await serveUi({ ...o, store: storePath });
    });

  cli
    .command("dev")
    .description(
      "run the AWS handlers locally (DynamoDB Local + fauxqs) for a task module; target it with --aws",
    )
    .argument("[module]", "TypeScript or JavaScript file that registers the tasks (not with --cdk-out)")
    .option("--outputs <file>", "where to write the stack outputs for --aws", ".aloft/dev-outputs.json")
    .option(
      "--persist <dir>",
      "keep tables, queue messages and bucket objects in <dir> across restarts (default: in memory)",
    )
    .option("--cdk-out <dir>", "run a `cdk synth --output <dir>` stack as it deploys (docs/deployed.md)")
    .option("--stack <name>", "with --cdk-out: the stack, when the assembly has several")
    .option("--chaos <spec>", "with --cdk-out: kill=,throttle=,duplicate=,delay= fractions and seed=")
    .action(
      async (
        mod: string | undefined,
        o: { outputs: string; persist?: string; cdkOut?: string; stack?: string; chaos?: string },
      ) => {
        if (o.cdkOut) {
          const { devDeployed } = await import("../../dev/deployed/command.ts");
          process.exitCode = await devDeployed({ ...o, cdkOut: o.cdkOut });
          return;
        }
        if (!mod) throw new ConfigurationError("aloft dev needs a task module, or --cdk-out <dir>");
        const { checkDevInstalled, dev } = await awsCli();
        checkDevInstalled();
        await loadModule(mod);
        await dev(o);
      },
    );

  cli
    .command("init")
    .description("write a starter project: a task module, its tests, a CDK app, tsconfig.json, scripts")
    .argument("[dir]", "where (created if missing; must hold none of the files it writes)", ".")
    .action((dir: string) => {
      process.stdout.write(initProject(dir));
    });

  cli
    .command("doctor")
    .description(
      "check what Aloft needs here (Node, the local store and its runs), or on the AWS stack with --aws",
    )
    .option("--aws", "check the AWS stack: configuration, table, queues and dead-letter queues, bucket")
    .option("--outputs <file>", "stack outputs file for --aws")
    .action(async (o: { aws?: boolean; outputs?: string }) => {
      const { doctorLocal, renderChecks } = await import("./doctor.ts");
      let checks = doctorLocal(cli.opts<{ store: string }>().store);
      if (o.aws) {
        const { configSource, doctorAws } = await import("./doctor-aws.ts");
        const source = configSource(o.outputs);
        let client;
        try {
          client = (await awsCli()).awsClient(o);
        } catch (e) {
          checks = [
            ...checks,
            { level: "problem", what: (e as Error).message, fix: "see Deploy to AWS in the README" },
          ];
        }
        if (client) {
          try {
            checks = [...checks, ...(await doctorAws(client, source))];
          } finally {
            client.destroy();
          }
        }
      }
      process.stdout.write(renderChecks(checks));
      process.exitCode = checks.some((c) => c.level === "problem") ? 1 : 0;
    });

  cli
    .command("result")
    .description("print a finished run's result as JSON")
    .argument("<run>", "run id")
    .action((id: string) => {
      const store = openRead(cli.opts<{ store: string }>().store);
      const row = findRun(store, id);
      store.close();
      if (row.status === "RUNNING") return fail(`run ${row.id} is still running`, 1);
      try {
        process.stdout.write(`${JSON.stringify(resultOf(row), jsonReplacer, 2)}\n`);
      } catch (e) {
        printError(e);
        process.exitCode = 1;
      }
    });
  return cli;
}

async function main(): Promise<void> {
  // The AWS SDK warns on stderr, before any output of ours, that its releases after January 2027
  // need Node 22: not the user's concern in a command's output (the Lambdas run Node 22). Its
  // documented switch; a user who sets the variable keeps their choice.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  try {
    await program().parseAsync(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode;
      return;
    }
    printError(e instanceof Error ? e : deserializeError(e as SerializedError));
    process.exitCode = 2;
    await shutdown().catch(() => undefined);
  }
}

await main();
