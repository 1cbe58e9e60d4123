#!/usr/bin/env bash
# CI check: on a fresh clone the CDK app synthesises with no AWS credentials and no Docker, with
# CloudFormation validation on (cdk.json enables @aws-cdk/core:validateAgainstDefaultRules, so a
# violation fails the synth), and quietly: no notices, no telemetry, no version check. The only
# output allowed is the CDK's "Bundling asset ..." progress lines.
set -euo pipefail
cd "$(dirname "$0")/.."

export CDK_DISABLE_CLI_TELEMETRY=true CDK_DISABLE_VERSION_CHECK=1 AWS_EC2_METADATA_DISABLED=true
# No credentials, whatever the machine has; a Docker call would fail loudly instead of bundling.
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE CDK_VALIDATION
export AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null CDK_DOCKER=/bin/false

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
start=$SECONDS
if ! npx cdk synth --quiet >"$log" 2>&1; then
  cat "$log" >&2
  echo "cdk synth failed" >&2
  exit 1
fi
if grep -v '^Bundling asset ' "$log" | grep -q .; then
  cat "$log" >&2
  echo "cdk synth succeeded but was not quiet (above); only 'Bundling asset' lines are expected" >&2
  exit 1
fi
# Belt and braces: the validation report must list no violations (warnings included).
node -e '
  const r = JSON.parse(require("fs").readFileSync("cdk.out/validation-report.json", "utf8"));
  const v = r.pluginReports.flatMap((p) => p.violations.map((x) => `${p.pluginName} ${x.ruleName} ${x.severity}: ${x.description}`));
  if (v.length) { console.error(v.join("\n")); process.exit(1); }
'
echo "cdk synth: ok in $((SECONDS - start)) s ($(ls cdk.out/*.template.json | wc -l) stack(s), validation clean)"
