/**
 * A function's permissions as its role's policies in the template state them, and IAM's verdict on
 * one request: an explicit Deny wins, else any Allow whose Action and Resource patterns (with `*`
 * and `?`) match, else an implicit deny. Conditions, NotAction/NotResource, permission boundaries,
 * resource policies and managed policies are not evaluated (docs/deployed.md says so); a statement
 * using them is reported at startup.
 */
import { ConfigurationError } from "../../sdk/errors.ts";
import type { Template } from "./assembly.ts";
import { resolve, type Scope } from "./intrinsics.ts";

export interface Grant {
  effect: "Allow" | "Deny";
  action: string;
  resource: string;
}

export interface FunctionPolicy {
  roleArn: string;
  grants: Grant[];
  /** What the harness could not evaluate for this role (conditions, managed policies, ...). */
  unsupported: string[];
}

export interface Verdict {
  allowed: boolean;
  /** The Allow grants that matched (to find the granted permissions no request used). */
  matched: Grant[];
}

const list = (v: unknown): string[] =>
  v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)];

/** The grants of the role `roleLogicalId`: its inline policies and every AWS::IAM::Policy attached to it. */
export function rolePolicy(template: Template, roleLogicalId: string, scope: Scope): FunctionPolicy {
  const role = template.Resources[roleLogicalId];
  if (role?.Type !== "AWS::IAM::Role")
    throw new ConfigurationError(`${roleLogicalId}: not an AWS::IAM::Role in the template`);
  const documents: Array<[string, unknown]> = [];
  const rp = role.Properties ?? {};
  for (const p of (rp["Policies"] as Array<{ PolicyName: string; PolicyDocument: unknown }> | undefined) ??
    [])
    documents.push([`${roleLogicalId}/${p.PolicyName}`, p.PolicyDocument]);
  for (const [id, r] of Object.entries(template.Resources)) {
    if (r.Type !== "AWS::IAM::Policy" && r.Type !== "AWS::IAM::RolePolicy") continue;
    const p = r.Properties ?? {};
    const roles = r.Type === "AWS::IAM::Policy" ? ((p["Roles"] as unknown[]) ?? []) : [p["RoleName"]];
    if (roles.some((x) => JSON.stringify(x) === JSON.stringify({ Ref: roleLogicalId })))
      documents.push([id, p["PolicyDocument"]]);
  }
  const unsupported: string[] = list(resolveSafe(rp["ManagedPolicyArns"], scope)).map(
    (arn) => `managed policy ${arn} (not evaluated)`,
  );
  if (rp["PermissionsBoundary"]) unsupported.push("permissions boundary (not evaluated)");
  const grants: Grant[] = [];
  for (const [where, doc] of documents) {
    const resolved = resolve(doc, scope, where) as { Statement?: unknown };
    const statements = Array.isArray(resolved.Statement) ? resolved.Statement : [resolved.Statement];
    for (const s of statements as Array<Record<string, unknown>>) {
      const effect = s["Effect"] === "Deny" ? "Deny" : "Allow";
      for (const k of ["Condition", "NotAction", "NotResource", "NotPrincipal"])
        if (s[k] !== undefined)
          unsupported.push(`${where}: a statement with ${k} (ignored: ${k} not evaluated)`);
      if (s["NotAction"] !== undefined || s["NotResource"] !== undefined) continue;
      for (const action of list(s["Action"]))
        for (const resource of list(s["Resource"])) grants.push({ effect, action, resource });
    }
  }
  return { roleArn: String(resolve({ "Fn::GetAtt": [roleLogicalId, "Arn"] }, scope)), grants, unsupported };
}

function resolveSafe(v: unknown, scope: Scope): unknown {
  try {
    return resolve(v, scope);
  } catch {
    return JSON.stringify(v);
  }
}

const patterns = new Map<string, RegExp>();
/** IAM's wildcard match: `*` any run of characters (`/` and `:` included), `?` one character. */
export function wildcard(pattern: string, value: string, ignoreCase = false): boolean {
  const key = `${ignoreCase ? "i" : "s"}${pattern}`;
  let re = patterns.get(key);
  if (!re) {
    const body = pattern
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, ".*")
      .replace(/\?/g, ".");
    re = new RegExp(`^${body}$`, ignoreCase ? "is" : "s");
    patterns.set(key, re);
  }
  return re.test(value);
}

export function authorize(policy: FunctionPolicy, action: string, resource: string): Verdict {
  const applies = (g: Grant) => wildcard(g.action, action, true) && wildcard(g.resource, resource);
  if (policy.grants.some((g) => g.effect === "Deny" && applies(g))) return { allowed: false, matched: [] };
  const matched = policy.grants.filter((g) => g.effect === "Allow" && applies(g));
  return { allowed: matched.length > 0, matched };
}
