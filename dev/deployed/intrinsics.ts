/**
 * CloudFormation's intrinsic functions, resolved against the local resources: Ref, Fn::GetAtt,
 * Fn::Join, Fn::Sub, Fn::Select, Fn::Split and the pseudo parameters. Anything else is a
 * ConfigurationError naming where it was met, so an unsupported template fails loudly.
 */
import { ConfigurationError } from "../../sdk/errors.ts";

export interface Physical {
  /** What `Ref` gives (a table's name, a queue's URL, a function's name). */
  ref: string;
  /** What `Fn::GetAtt` gives, by attribute name. */
  attributes: Record<string, string>;
}

export interface Scope {
  region: string;
  account: string;
  stackName: string;
  resources: Map<string, Physical>;
}

export function resolve(value: unknown, scope: Scope, where = "template"): unknown {
  if (Array.isArray(value)) return value.map((v, i) => resolve(v, scope, `${where}[${i}]`));
  if (value === null || typeof value !== "object") return value;
  const entries = Object.entries(value);
  if (entries.length === 1) {
    const [fn, arg] = entries[0]!;
    if (fn === "Ref") return ref(String(arg), scope, where);
    if (fn === "Fn::GetAtt") {
      const [id, attr] = Array.isArray(arg) ? arg.map(String) : String(arg).split(/\.(.*)/);
      return getAtt(id!, attr!, scope, where);
    }
    if (fn === "Fn::Join") {
      const [sep, parts] = arg as [string, unknown[]];
      return (resolve(parts, scope, where) as unknown[]).map(String).join(sep);
    }
    if (fn === "Fn::Select") {
      const [i, list] = arg as [unknown, unknown];
      return (resolve(list, scope, where) as unknown[])[Number(resolve(i, scope, where))];
    }
    if (fn === "Fn::Split") {
      const [sep, s] = arg as [string, unknown];
      return String(resolve(s, scope, where)).split(sep);
    }
    if (fn === "Fn::Sub") return sub(arg, scope, where);
    if (fn.startsWith("Fn::") || fn === "Condition")
      throw new ConfigurationError(
        `${where}: intrinsic ${fn} is not supported by the deployed-shape harness`,
      );
  }
  return Object.fromEntries(entries.map(([k, v]) => [k, resolve(v, scope, `${where}.${k}`)]));
}

/** A string after resolution; a ConfigurationError if it is something else. */
export function resolveString(value: unknown, scope: Scope, where: string): string {
  const v = resolve(value, scope, where);
  if (typeof v !== "string" && typeof v !== "number")
    throw new ConfigurationError(`${where}: expected a string, got ${JSON.stringify(v)}`);
  return String(v);
}

function ref(name: string, scope: Scope, where: string): string {
  const pseudo: Record<string, string> = {
    "AWS::Region": scope.region,
    "AWS::AccountId": scope.account,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": scope.stackName,
    "AWS::StackId": `arn:aws:cloudformation:${scope.region}:${scope.account}:stack/${scope.stackName}/local`,
  };
  if (name in pseudo) return pseudo[name]!;
  const r = scope.resources.get(name);
  if (!r) throw new ConfigurationError(`${where}: Ref to ${name}, which the harness did not create`);
  return r.ref;
}

function getAtt(id: string, attr: string, scope: Scope, where: string): string {
  const r = scope.resources.get(id);
  const v = r?.attributes[attr];
  if (v === undefined)
    throw new ConfigurationError(`${where}: Fn::GetAtt ${id}.${attr}, which the harness does not provide`);
  return v;
}

function sub(arg: unknown, scope: Scope, where: string): string {
  const [text, vars] = Array.isArray(arg) ? (arg as [string, Record<string, unknown>]) : [String(arg), {}];
  return text.replace(/\$\{([^}!][^}]*)\}/g, (_, name: string) => {
    if (name in vars) return resolveString(vars[name], scope, where);
    const dot = name.indexOf(".");
    return dot > 0 && !name.startsWith("AWS::")
      ? getAtt(name.slice(0, dot), name.slice(dot + 1), scope, where)
      : ref(name, scope, where);
  });
}
