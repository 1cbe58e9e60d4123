/**
 * The `aloft` command. Local (embedded engine) by default.
 *
 * This module holds the commands' definitions and little else: each command loads what it needs
 * when it runs (local-runs.ts, local-store.ts, aws.ts, ...), so `aloft --help` loads commander
 * alone and `aloft run` loads no AWS SDK, UI server or store reader (docs/performance.md).
 */
import { Command, CommanderError } from "commander";
import { ConfigurationError, deserializeError } from "../errors.ts";
import type { SerializedError } from "../errors.ts";
import { follow, parseArgs, printError } from "./output.ts";
import type { Task } from "../task.ts";

/** The `--aws` side, loaded only by a command that uses it: local commands never load the AWS SDK. */
const awsCli = (): Promise<typeof import("./aws.ts")> => import("./aws.ts");
/** The local engine's side of run, resume, recover: loaded before the task module (local-runs.ts). */
const localRuns = (): Promise<typeof import("./local-runs.ts")> => import("./local-runs.ts");
/** The local side of the commands that read or write a run in the store. */
const localStore = (): Promise<typeof import("./local-store.ts")> => import("./local-store.ts");

const DEFAULT_STORE = ".aloft/aloft.db";
const UI_PORT = 7433; // sdk/cli/ui/command.ts DEFAULT_UI_PORT (not imported: the UI loads on use)

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
        // The engine's modules before the task module's: see local-runs.ts.
        const local = o.aws ? undefined : await localRuns();
        if (local) await local.startRun(cli.opts<{ store: string }>().store, mod, o);
        else await (await import("./load-module.ts")).loadModule(mod);
        const { resolveTask } = await import("../registry.ts");
        const task = resolveTask(taskName) as Task<(...a: unknown[]) => unknown>;
        if (!local) {
          const client = (await awsCli()).awsClient(o);
          const { serializeArgs } = await import("../core/calls.ts");
          try {
            const r = await client.start(task.taskName, serializeArgs(task.taskName, args));
            if (!o.json) process.stderr.write(`run ${r.id} (${task.taskName}) on ${client.config.table}\n`);
            process.exitCode = await follow(r, true);
          } finally {
            client.destroy();
          }
          return;
        }
        await local.runLocal(task, args, o);
      },
    );

  cli
    .command("resume")
    .description("continue a run whose process stopped (crash, kill) from its recorded history")
    .argument("<run>", "run id (a unique prefix is enough)")
    .option("--workers <n>", "worker threads")
    .action(async (id: string, o: { workers?: string }) => {
      await (await localRuns()).resumeLocal(cli.opts<{ store: string }>().store, id, o);
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
      await (await localRuns()).recoverLocal(cli.opts<{ store: string }>().store, id, o);
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
      (await localStore()).status(cli.opts<{ store: string }>().store, id, Boolean(o.json));
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
      (await localStore()).runs(cli.opts<{ store: string }>().store, Number(o.limit));
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
      await (await localStore()).cancel(cli.opts<{ store: string }>().store, id);
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
        const { checkSignalName } = await import("../core/durable-waits.ts");
        checkSignalName(name, "aloft signal");
        const [payload] = json === undefined ? [null] : parseArgs([json]);
        if (o.aws) {
          process.stdout.write(await (await awsCli()).awsSignal(id, name, payload, o));
          return;
        }
        (await localStore()).signal(cli.opts<{ store: string }>().store, id, name, payload);
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
        const { parseCallbackId } = await import("../core/callbacks.ts");
        const { shownId } = await import("../core/durable-waits.ts");
        const { run, secret } = parseCallbackId(id);
        if (o.aws) await (await awsCli()).awsCallback(id, payload, o.fail, o);
        else await (await localStore()).callback(cli.opts<{ store: string }>().store, id, payload, o.fail);
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
      await (await localStore()).watch(cli.opts<{ store: string }>().store, id, Number(o.interval));
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
          const { printAwsLogs } = await import("./logs.ts");
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
        await (await localStore()).logs(storePath, id, action, Boolean(o.follow), write);
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
      if (!o.aws) (await localRuns()).openRead(storePath).close(); // says so if there is no store yet
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
        await (await import("./load-module.ts")).loadModule(mod);
        await dev(o);
      },
    );

  cli
    .command("init")
    .description("write a starter project: a task module, its tests, a CDK app, tsconfig.json, scripts")
    .argument("[dir]", "where (created if missing; must hold none of the files it writes)", ".")
    .action(async (dir: string) => {
      process.stdout.write((await import("./init.ts")).initProject(dir));
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
    .action(async (id: string) => {
      (await localStore()).result(cli.opts<{ store: string }>().store, id);
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
    // An engine the command started stops (run.ts is loaded by then; on a usage error, loaded here).
    await (await import("../run.ts")).shutdown().catch(() => undefined);
  }
}

await main();
