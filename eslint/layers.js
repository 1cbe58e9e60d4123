// The layers (docs/architecture.md), as import-x/no-restricted-paths zones: a file in `target` may
// not import from `from` (type-only imports included). Inner to outer:
//   core      sdk/core, sdk/errors.ts, sdk/serde.ts     pure: no I/O, no clock
//   api       sdk/*.ts authoring modules                  core
//   engine    sdk/local                                   api, core
//   aws       sdk/aws (store, transport, client)          api, core
//   handlers  lambdas                                     aws, api, core
//   cdk       cdk                                         aws (names, table schema), api, core
//   dev       dev (emulators, poller, dev stack)          handlers, aws, api, core
//   testing   sdk/testing (aloft/testing)                 api, core
//   entries   sdk/run.ts, sdk/index.ts, sdk/client.ts, sdk/cli   anything
const API = [
  "sdk/task.ts",
  "sdk/map.ts",
  "sdk/group.ts",
  "sdk/trace.ts",
  "sdk/options.ts",
  "sdk/registry.ts",
  "sdk/result.ts",
  "sdk/run-handle.ts",
  "sdk/map-rules.ts",
  "sdk/trace-generator.ts",
  "sdk/log-capture.ts",
  "sdk/callback.ts",
];
const CORE = ["sdk/core", "sdk/errors.ts", "sdk/serde.ts"];
const ENTRIES = ["sdk/run.ts", "sdk/index.ts", "sdk/client.ts", "sdk/cli"];
const ADAPTERS = ["sdk/local", "sdk/aws", "lambdas", "cdk", "dev"];

const zone = (target, from, message) => ({ target, from, message });

export const layers = [
  zone(CORE, [...API, ...ADAPTERS, ...ENTRIES], "the core depends on nothing outside it"),
  zone(API, [...ADAPTERS, ...ENTRIES, "sdk/testing"], "the authoring API depends only on the core"),
  zone("sdk/testing", [...ADAPTERS, ...ENTRIES], "aloft/testing replays with the core alone, no engine"),
  zone(
    "sdk/local",
    ["sdk/aws", "lambdas", "cdk", "dev", ...ENTRIES],
    "the embedded engine depends inward only",
  ),
  zone("sdk/aws", ["sdk/local", "lambdas", "cdk", "dev", ...ENTRIES], "the AWS adapter depends inward only"),
  zone("sdk/aws/store", ["sdk/aws/transport", "sdk/aws/client.ts"], "storage never sends"),
  zone("lambdas", ["sdk/local", "cdk", "dev", ...ENTRIES], "the handlers depend inward only"),
  zone("cdk", ["sdk/local", "lambdas", "dev", ...ENTRIES], "the construct depends inward only"),
  zone("dev", ["cdk", ...ENTRIES], "dev tooling depends on the handlers and inward"),
];
