#!/usr/bin/env bash
# Deploy Ghost Pirates to one environment (docs/runbook.md, "Deploy"):
#   1. provision/update infrastructure  (az deployment group create: infra/main.bicep + ENV.bicepparam)
#   2. build the package                 (scripts/package_app.py, honoring .funcignore)
#   3. run database migrations once      (python -m shared.db.migrate, DATABASE_URL from Key Vault)
#   4. keep the running package          (releases/ENV/current.zip in the runtime storage account)
#   5. zip-deploy the new package        (az functionapp deployment source config-zip, remote build)
#   6. wait for /api/health              (scripts/wait_healthy.py, bounded by HEALTH_TIMEOUT_SECONDS)
#   7. on failure roll back to the previous package and wait again; on success record the release
#
# Usage: scripts/deploy.sh dev|staging|prod [--dry-run]
# --dry-run prints every command (secrets stay as the commands that fetch them) and exits 0
# without calling az.
#
# Environment:
#   POSTGRES_ADMIN_PASSWORD  required by the bicepparam files; when unset it is read from the
#                            vault's postgres-admin-password secret (after the first deploy)
#   GP_ALERT_EMAIL           on-call address (required for prod)
#   GP_RESOURCE_GROUP        default rg-ghost-pirates-ENV
#   GP_LOCATION              default westeurope (used when the resource group is created)
#   GP_SUBSCRIPTION          optional subscription id or name
#   RUNNER_IP                optional public IP of this machine: a temporary Postgres firewall
#                            rule admits it for the migration and is removed afterwards
#   HEALTH_TIMEOUT_SECONDS   default 300
#   HEALTH_ACCEPT_DEGRADED   1 to accept a 200 "degraded" health answer (Web PubSub down)
#   JWT_SIGNING_KEYS, ANTHROPIC_API_KEY, OPENAI_API_KEY  optional: written to Key Vault when set
set -euo pipefail

usage() { echo "usage: $0 dev|staging|prod [--dry-run]" >&2; exit 2; }

env_name="${1:-}"
[[ "$env_name" =~ ^(dev|staging|prod)$ ]] || usage
dry_run=false
if [[ $# -ge 2 ]]; then
  [[ "$2" == "--dry-run" ]] || usage
  dry_run=true
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python_bin="${PYTHON:-$root/.venv/bin/python}"
[[ -x "$python_bin" ]] || python_bin="$(command -v python3)"

resource_group="${GP_RESOURCE_GROUP:-rg-ghost-pirates-$env_name}"
location="${GP_LOCATION:-westeurope}"
health_timeout="${HEALTH_TIMEOUT_SECONDS:-300}"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
version="$(git rev-parse --short HEAD 2>/dev/null || echo "nogit")-$stamp"
dist="$root/dist"
package="$dist/ghost-pirates-$env_name-$version.zip"
previous="$dist/ghost-pirates-$env_name-previous.zip"

step() { echo; echo "==> $*"; }

# Print a command; run it unless --dry-run. Arguments are quoted exactly as they would run.
run() {
  printf '+'; printf ' %q' "$@"; printf '\n'
  if [[ "$dry_run" == false ]]; then "$@"; fi
}

# Like run, with stdout written to a file.
run_to_file() {
  local file="$1"; shift
  printf '+'; printf ' %q' "$@"; printf ' > %q\n' "$file"
  if [[ "$dry_run" == false ]]; then "$@" > "$file"; fi
}

# Like run, but captures stdout (the dry run yields the placeholder given first).
capture() {
  local placeholder="$1"; shift
  printf '+' >&2; printf ' %q' "$@" >&2; printf '\n' >&2
  if [[ "$dry_run" == true ]]; then echo "$placeholder"; else "$@"; fi
}

output_of() {  # read one deployment output from the JSON saved in step 1
  "$python_bin" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["value"])' \
    "$dist/outputs-$env_name.json" "$1"
}

echo "Ghost Pirates deploy: environment=$env_name resource_group=$resource_group version=$version dry_run=$dry_run"
if [[ "$dry_run" == false ]]; then mkdir -p "$dist"; fi

step "0. preflight: signed-in Azure CLI and resource group"
if [[ -n "${GP_SUBSCRIPTION:-}" ]]; then run az account set --subscription "$GP_SUBSCRIPTION"; fi
run az account show --query "{subscription:name, user:user.name}" -o table
run az group create --name "$resource_group" --location "$location" --tags application=ghost-pirates "environment=$env_name" -o none

step "1. infrastructure: az deployment group create (infra/main.bicep + infra/$env_name.bicepparam)"
if [[ -z "${POSTGRES_ADMIN_PASSWORD:-}" ]]; then
  # After the first deploy the password lives in Key Vault; reuse it so the server is not reset.
  vault_name="$(capture "<keyVaultName>" az keyvault list --resource-group "$resource_group" --query "[0].name" -o tsv)"
  if [[ "$dry_run" == false && -z "$vault_name" ]]; then
    echo "POSTGRES_ADMIN_PASSWORD is not set and no vault exists yet (first deploy): set it" >&2
    exit 1
  fi
  echo "+ export POSTGRES_ADMIN_PASSWORD=\$(az keyvault secret show --vault-name $vault_name --name postgres-admin-password --query value -o tsv)"
  if [[ "$dry_run" == false ]]; then
    POSTGRES_ADMIN_PASSWORD="$(az keyvault secret show --vault-name "$vault_name" --name postgres-admin-password --query value -o tsv)"
    export POSTGRES_ADMIN_PASSWORD
  fi
fi
run_to_file "$dist/outputs-$env_name.json" az deployment group create \
  --resource-group "$resource_group" \
  --name "ghost-pirates-$env_name-$stamp" \
  --template-file infra/main.bicep \
  --parameters "infra/$env_name.bicepparam" \
  --query properties.outputs -o json
if [[ "$dry_run" == true ]]; then
  app_name="<functionAppName>"; app_host="<functionAppHostName>"; vault_name="<keyVaultName>"
  storage_name="<storageAccountName>"; releases="<releasesContainerName>"; pg_server="<postgresServerName>"
else
  app_name="$(output_of functionAppName)"; app_host="$(output_of functionAppHostName)"
  vault_name="$(output_of keyVaultName)"; storage_name="$(output_of storageAccountName)"
  releases="$(output_of releasesContainerName)"; pg_server="$(output_of postgresServerName)"
fi

step "2. package: scripts/package_app.py (honors .funcignore)"
run "$python_bin" scripts/package_app.py "$package"

step "3. migrations: python -m shared.db.migrate with DATABASE_URL from Key Vault (run once, before the code)"
firewall_rule="deploy-$stamp"
if [[ -n "${RUNNER_IP:-}" ]]; then
  run az postgres flexible-server firewall-rule create --resource-group "$resource_group" --name "$pg_server" \
    --rule-name "$firewall_rule" --start-ip-address "$RUNNER_IP" --end-ip-address "$RUNNER_IP" -o none
  if [[ "$dry_run" == false ]]; then
    trap 'az postgres flexible-server firewall-rule delete --resource-group "$resource_group" --name "$pg_server" --rule-name "$firewall_rule" --yes -o none || true' EXIT
  fi
fi
echo "+ DATABASE_URL=\$(az keyvault secret show --vault-name $vault_name --name database-url --query value -o tsv) $python_bin -m shared.db.migrate"
if [[ "$dry_run" == false ]]; then
  DATABASE_URL="$(az keyvault secret show --vault-name "$vault_name" --name database-url --query value -o tsv)" \
    "$python_bin" -m shared.db.migrate
fi
if [[ -n "${RUNNER_IP:-}" ]]; then
  run az postgres flexible-server firewall-rule delete --resource-group "$resource_group" --name "$pg_server" \
    --rule-name "$firewall_rule" --yes -o none
  trap - EXIT
fi

step "4. keep the running package for rollback: $releases/$env_name/current.zip"
have_previous=false
if [[ "$dry_run" == true ]]; then
  run az storage blob download --auth-mode login --account-name "$storage_name" --container-name "$releases" \
    --name "$env_name/current.zip" --file "$previous" -o none
  have_previous=true
elif az storage blob exists --auth-mode login --account-name "$storage_name" --container-name "$releases" \
    --name "$env_name/current.zip" --query exists -o tsv | grep -qi true; then
  run az storage blob download --auth-mode login --account-name "$storage_name" --container-name "$releases" \
    --name "$env_name/current.zip" --file "$previous" -o none
  have_previous=true
else
  echo "no previous release recorded (first deploy): rollback will not be possible"
fi

deploy_zip() {
  run az functionapp deployment source config-zip --resource-group "$resource_group" --name "$app_name" \
    --src "$1" --build-remote true --timeout 900
}

wait_healthy() {
  local extra=()
  if [[ "${HEALTH_ACCEPT_DEGRADED:-0}" == 1 ]]; then extra=(--accept-degraded); fi
  run "$python_bin" scripts/wait_healthy.py "https://$app_host/api/health" \
    --timeout "$health_timeout" --interval 10 "${extra[@]}"
}

step "5. deploy: zip-deploy $package to $app_name"
deployed=true
deploy_zip "$package" || deployed=false

step "6. health: poll https://$app_host/api/health until healthy (timeout ${health_timeout}s)"
healthy=false
if [[ "$deployed" == true ]] && wait_healthy; then healthy=true; fi

if [[ "$healthy" == false || "$dry_run" == true ]]; then
  step "7. rollback (on failure only): redeploy $previous and wait for health"
  if [[ "$dry_run" == true ]]; then
    echo "(dry run: printed for reference; a real run rolls back only when step 5 or 6 fails)"
    deploy_zip "$previous"
    wait_healthy
  elif [[ "$have_previous" == true ]]; then
    echo "deploy of $version failed; rolling back to the previous package" >&2
    if deploy_zip "$previous" && wait_healthy; then
      echo "rolled back: the previous release is serving; investigate $version (docs/runbook.md, Rollback)" >&2
    else
      echo "ROLLBACK FAILED: the app is unhealthy; follow docs/runbook.md, 5xx spike" >&2
    fi
    exit 1
  else
    echo "deploy of $version failed and there is no previous package to roll back to" >&2
    exit 1
  fi
fi

step "8. record the release: $releases/$env_name/$version.zip and current.zip"
run az storage blob upload --auth-mode login --account-name "$storage_name" --container-name "$releases" \
  --name "$env_name/$version.zip" --file "$package" --overwrite true -o none
run az storage blob upload --auth-mode login --account-name "$storage_name" --container-name "$releases" \
  --name "$env_name/current.zip" --file "$package" --overwrite true -o none

echo
if [[ "$dry_run" == true ]]; then
  echo "Dry run complete: nothing was called or changed."
else
  echo "Deployed $version to $env_name ($app_host)."
fi
