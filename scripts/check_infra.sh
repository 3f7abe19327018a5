#!/usr/bin/env bash
# Static checks of infra/: checkov security policies (always), and `bicep build` + `bicep lint`
# when a bicep binary is on PATH (a laptop or the deploy pipeline; it cannot be installed offline).
# Every skipped checkov policy is justified by a `// checkov:skip=CKV_...:reason` comment inside
# the resource it applies to. The fast structural tests live in tests/infra (pytest).
# Usage: scripts/check_infra.sh        (exit status non-zero on any failure)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

checkov_bin="${CHECKOV:-}"
if [[ -z "$checkov_bin" ]]; then
  if [[ -x .venv/bin/checkov ]]; then
    checkov_bin=.venv/bin/checkov
  elif command -v checkov >/dev/null 2>&1; then
    checkov_bin="$(command -v checkov)"
  else
    echo "check_infra: checkov not found (pip install checkov into .venv)" >&2
    exit 2
  fi
fi

echo "check_infra: checkov --framework bicep --skip-download -d infra"
"$checkov_bin" --framework bicep --skip-download -d infra --compact --quiet

# `bicep X file` (standalone CLI) and `az bicep X --file file` (Azure CLI) take the same actions.
bicep_run() {
  local action="$1" file="$2"
  shift 2
  if command -v bicep >/dev/null 2>&1; then
    bicep "$action" "$file" "$@"
  else
    az bicep "$action" --file "$file" "$@"
  fi
}

if ! command -v bicep >/dev/null 2>&1 && ! { command -v az >/dev/null 2>&1 && az bicep version >/dev/null 2>&1; }; then
  echo "check_infra: no bicep binary on PATH: bicep build and bicep lint SKIPPED"
  exit 0
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
echo "check_infra: bicep build / lint / build-params"
bicep_run build infra/main.bicep --outdir "$out"
bicep_run lint infra/main.bicep
for params in infra/*.bicepparam; do
  # Secure parameters are read from the environment; placeholders are enough to compile.
  POSTGRES_ADMIN_PASSWORD="${POSTGRES_ADMIN_PASSWORD:-placeholder-not-deployed}" \
  POSTGRES_APP_PASSWORD="${POSTGRES_APP_PASSWORD:-placeholder-not-deployed}" \
  GP_ALERT_EMAIL="${GP_ALERT_EMAIL:-oncall@example.com}" \
    bicep_run build-params "$params" --outfile "$out/$(basename "$params").json"
done
echo "check_infra: OK"
