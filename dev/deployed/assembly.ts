/**
 * A `cdk synth --output <dir>` folder (a cloud assembly): its stacks, one stack's template, and the
 * asset folder each Lambda function's code was bundled into.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ConfigurationError } from "../../sdk/errors.ts";

export interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
  Metadata?: Record<string, unknown>;
}

export interface Template {
  Resources: Record<string, CfnResource>;
  Outputs?: Record<string, { Value: unknown }>;
}

export interface StackArtifact {
  /** The stack's name (its artifact id, which `cdk deploy` also takes). */
  name: string;
  template: Template;
  /** The assembly folder, where `asset.<hash>` folders live. */
  dir: string;
}

interface Manifest {
  artifacts?: Record<string, { type: string; properties?: { templateFile?: string } }>;
}

/** Reads the stack named `stack`, or the only stack of the assembly. */
export function readStack(cdkOut: string, stack?: string): StackArtifact {
  const dir = resolve(cdkOut);
  const manifestFile = join(dir, "manifest.json");
  if (!existsSync(manifestFile))
    throw new ConfigurationError(
      `--cdk-out ${cdkOut}: no manifest.json in ${dir}; run cdk synth --output ${cdkOut}`,
    );
  const manifest = JSON.parse(readFileSync(manifestFile, "utf8")) as Manifest;
  const stacks = Object.entries(manifest.artifacts ?? {}).filter(
    ([, a]) => a.type === "aws:cloudformation:stack" && a.properties?.templateFile,
  );
  const names = stacks.map(([n]) => n);
  const chosen = stack ? stacks.find(([n]) => n === stack) : stacks.length === 1 ? stacks[0] : undefined;
  if (!chosen) {
    throw new ConfigurationError(
      stack
        ? `--stack ${stack}: the assembly in ${dir} has no such stack (it has: ${names.join(", ") || "none"})`
        : `the assembly in ${dir} has ${names.length} stacks (${names.join(", ")}); choose one with --stack`,
    );
  }
  const [name, artifact] = chosen;
  const template = JSON.parse(
    readFileSync(join(dir, artifact.properties!.templateFile!), "utf8"),
  ) as Template;
  return { name, template, dir };
}

/** The folder holding a function's bundled code (its `aws:asset:path` metadata). */
export function assetDir(stack: StackArtifact, logicalId: string): string {
  const r = stack.template.Resources[logicalId];
  const rel = r?.Metadata?.["aws:asset:path"];
  if (typeof rel !== "string")
    throw new ConfigurationError(
      `${logicalId}: no aws:asset:path metadata (inline or image code is not supported)`,
    );
  const dir = join(stack.dir, rel);
  if (!existsSync(dir)) throw new ConfigurationError(`${logicalId}: asset folder ${dir} is missing`);
  return dir;
}

/** The ids of the resources of `type`, in template order. */
export function resourcesOf(template: Template, type: string): string[] {
  return Object.entries(template.Resources)
    .filter(([, r]) => r.Type === type)
    .map(([id]) => id);
}
