#!/usr/bin/env bash
# Deploy Ghost Pirates to one environment (docs/runbook.md, "Deploy"):
#   1. provision/update infrastructure  (az deployment group create: infra/main.bicep + ENV.bicepparam);
#      the database passwords come from the operations vault (deploy-only secrets, no role for
#      the app); 1c warns if the app vault still holds them (an environment deployed before the split)
#   2. build the package                 (scripts/package_app.py, honoring .funcignore)
#   3. run database migrations once      (python -m shared.db.migrate as the server admin), then
#      apply shared/db/roles.sql            (scripts/apply_db_roles.py: the app's DML-only role)
#   4. keep the running package          (releases/ENV/current.zip in the runtime storage account)
#   5. zip-deploy the new package        (az functionapp deployment source config-zip, remote build)
#   6. wait for /api/health              (scripts/wait_healthy.py, bounded by HEALTH_TIMEOUT_SECONDS)
#   7. on failure roll back to the previous package and wait again; on success record the release
#   9. private networking only: close the deploy window (also on any failure, through a trap)
#
# Private networking (privateNetworking in infra/ENV.bicepparam; on for staging and prod): the
# Key Vaults, Storage and Postgres refuse public traffic, yet steps 1 (secret reads from the
# operations vault, and the app vault for 1c), 3 (migrations, roles) and 4/5/8 (packages) need
# their data planes. Unless GP_DEPLOY_FROM_VNET=1 (a runner inside
# the VNet or a peered network), the script opens a temporary deploy window for RUNNER_IP only:
# public access on with default action Deny and one IP rule (Postgres: one firewall rule), closed
# again on exit; the next Bicep deploy re-asserts the closed state whatever happened.
#
# Usage: scripts/deploy.sh dev|staging|prod [--dry-run]
# --dry-run prints every command (secrets stay as the commands that fetch them) and exits 0
# without calling az.
#
# Environment:
#   POSTGRES_ADMIN_PASSWORD  required by the bicepparam files; when unset it is read from the
#                            operations vault's postgres-admin-password secret (after the first
#                            deploy; from the app vault once if there is no operations vault yet)
#   POSTGRES_APP_PASSWORD    password of the app's database role ghost_pirates_app; when unset it
#                            is read from postgres-app-password (operations vault, same fallback),
#                            or generated on the first deploy
#   GP_ALERT_EMAIL           on-call address (required for prod)
#   GP_RESOURCE_GROUP        default rg-ghost-pirates-ENV
#   GP_LOCATION              default westeurope (used when the resource group is created)
#   GP_SUBSCRIPTION          optional subscription id or name
#   RUNNER_IP                public IP of this machine: a temporary Postgres firewall rule admits
#                            it for the migrations; with private networking it is required (the
#                            deploy window) unless GP_DEPLOY_FROM_VNET=1
#   GP_DEPLOY_FROM_VNET      1 when this runner reaches the private endpoints itself (no window)
#   GP_DIST                  where packages and deployment outputs go (default dist/)
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
dist="${GP_DIST:-$root/dist}"
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

# --- private networking: which data-plane path this run takes ---
app_role="ghost_pirates_app"  # shared/db/roles.sql, infra/modules/postgres.bicep (appRoleName)
private_networking=true       # main.bicep default; the parameter file may turn it off
if grep -Eq '^param privateNetworking = false' "infra/$env_name.bicepparam"; then private_networking=false; fi
window=false
if [[ "$private_networking" == true && "${GP_DEPLOY_FROM_VNET:-0}" != 1 ]]; then
  window=true
  if [[ -z "${RUNNER_IP:-}" ]]; then
    if [[ "$dry_run" == false ]]; then
      echo "private networking is on for $env_name: set RUNNER_IP (this runner's public IP) for the deploy window," >&2
      echo "or GP_DEPLOY_FROM_VNET=1 on a runner inside the VNet (docs/runbook.md, Deploy)" >&2
      exit 1
    fi
    RUNNER_IP="<RUNNER_IP>"
  fi
fi
window_vaults=""; window_storage=""; window_pg=""; firewall_rule="deploy-$stamp"

# Open the deploy window on one resource for RUNNER_IP (idempotent; each call prints its commands).
# Vaults: the app vault and the operations vault, each opened only when this run reads it.
open_vault_window() {
  case " $window_vaults " in *" $1 "*) ;; *) window_vaults="${window_vaults:+$window_vaults }$1" ;; esac
  run az keyvault update --resource-group "$resource_group" --name "$1" \
    --public-network-access Enabled --default-action Deny --bypass AzureServices -o none
  run az keyvault network-rule add --resource-group "$resource_group" --name "$1" --ip-address "$RUNNER_IP/32" -o none
}
open_storage_window() {
  window_storage="$1"
  run az storage account update --resource-group "$resource_group" --name "$1" \
    --public-network-access Enabled --default-action Deny --bypass AzureServices -o none
  run az storage account network-rule add --resource-group "$resource_group" --account-name "$1" --ip-address "$RUNNER_IP" -o none
}
open_postgres_window() {
  window_pg="$1"
  run az postgres flexible-server update --resource-group "$resource_group" --name "$1" --public-access Enabled -o none
}
wait_for_network_rules() {
  echo "+ sleep 30  # network rules take effect within about 30 s"
  if [[ "$dry_run" == false ]]; then sleep 30; fi
}
# Close whatever was opened; every command runs even if another fails (trap on EXIT).
close_window() {
  local status=0
  if [[ -n "$window_pg" ]]; then
    run az postgres flexible-server firewall-rule delete --resource-group "$resource_group" --name "$window_pg" \
      --rule-name "$firewall_rule" --yes -o none || status=1
    if [[ "$window" == true ]]; then
      run az postgres flexible-server update --resource-group "$resource_group" --name "$window_pg" --public-access Disabled -o none || status=1
    fi
  fi
  if [[ -n "$window_storage" ]]; then
    run az storage account network-rule remove --resource-group "$resource_group" --account-name "$window_storage" --ip-address "$RUNNER_IP" -o none || status=1
    run az storage account update --resource-group "$resource_group" --name "$window_storage" \
      --public-network-access Disabled --default-action Deny -o none || status=1
  fi
  local vault
  for vault in $window_vaults; do
    run az keyvault network-rule remove --resource-group "$resource_group" --name "$vault" --ip-address "$RUNNER_IP/32" -o none || status=1
    run az keyvault update --resource-group "$resource_group" --name "$vault" \
      --public-network-access Disabled --default-action Deny -o none || status=1
  done
  window_vaults=""; window_storage=""; window_pg=""
  if [[ "$status" != 0 ]]; then
    echo "DEPLOY WINDOW NOT FULLY CLOSED: run scripts/deploy.sh $env_name again or close it by hand (docs/runbook.md, Deploy)" >&2
  fi
}
on_exit() { local rc=$?; close_window; exit "$rc"; }
if [[ "$dry_run" == false ]]; then trap on_exit EXIT; fi

echo "Ghost Pirates deploy: environment=$env_name resource_group=$resource_group version=$version dry_run=$dry_run"
if [[ "$private_networking" == true && "$window" == true ]]; then
  echo "network: private networking ON; data-plane steps use a temporary deploy window for RUNNER_IP=$RUNNER_IP only"
  echo "         (Key Vaults, Storage: public access on, default Deny, one IP rule; Postgres: public access on, one"
  echo "         firewall rule), closed in step 9 and on any exit; the next Bicep deploy re-asserts the closed state"
elif [[ "$private_networking" == true ]]; then
  echo "network: private networking ON; GP_DEPLOY_FROM_VNET=1: data-plane steps go through the private endpoints (no window)"
else
  echo "network: private networking OFF ($env_name): public endpoints guarded by Entra ID, keys and TLS;"
  echo "         Postgres admits RUNNER_IP through a temporary firewall rule when RUNNER_IP is set"
fi
if [[ "$dry_run" == false ]]; then mkdir -p "$dist"; fi

step "0. preflight: signed-in Azure CLI and resource group"
if [[ -n "${GP_SUBSCRIPTION:-}" ]]; then run az account set --subscription "$GP_SUBSCRIPTION"; fi
run az account show --query "{subscription:name, user:user.name}" -o table
run az group create --name "$resource_group" --location "$location" --tags application=ghost-pirates "environment=$env_name" -o none

step "1. infrastructure: az deployment group create (infra/main.bicep + infra/$env_name.bicepparam)"
# Two vaults, told apart by their purpose tag (infra/main.bicep): the app vault (exactly what the
# app reads; its identity is Key Vault Secrets User there) and the operations vault (deploy-only:
# postgres-admin-password, postgres-app-password; no role for the app). After the first deploy the
# passwords are read from the operations vault so nothing is reset. An environment deployed before
# the split has no operations vault yet: the passwords are read once from the app vault (their
# legacy location), this deployment writes them into the new operations vault, and step 1c says
# what to remove from the app vault (docs/runbook.md, "Move deploy-only secrets to the operations vault").
vault_name=""; ops_vault_name=""; secrets_from=""
if [[ -z "${POSTGRES_ADMIN_PASSWORD:-}" || -z "${POSTGRES_APP_PASSWORD:-}" ]]; then
  ops_vault_name="$(capture "<opsKeyVaultName>" az keyvault list --resource-group "$resource_group" \
    --query "[?tags.purpose=='ops'].name | [0]" -o tsv)"
  if [[ -n "$ops_vault_name" ]]; then
    secrets_from="$ops_vault_name"
  else
    vault_name="$(capture "<keyVaultName>" az keyvault list --resource-group "$resource_group" \
      --query "[?tags.purpose!='ops'].name | [0]" -o tsv)"
    secrets_from="$vault_name"
    if [[ -n "$vault_name" ]]; then
      echo "no operations vault yet: reading the deploy-only secrets from the app vault $vault_name (legacy location, this once)" >&2
    fi
  fi
  if [[ "$dry_run" == true ]]; then
    echo "(dry run: an environment deployed before the operations vault existed reads them from <keyVaultName> once)"
  fi
  if [[ -n "$secrets_from" && "$window" == true ]]; then
    open_vault_window "$secrets_from"
    wait_for_network_rules
  fi
fi
# Read one deploy-only secret from $secrets_from (never printed). With an operations vault a failed
# read stops the deploy: falling back to a stale copy elsewhere would reset the password.
read_deploy_secret() {
  az keyvault secret show --vault-name "$secrets_from" --name "$1" --query value -o tsv
}
if [[ -z "${POSTGRES_ADMIN_PASSWORD:-}" ]]; then
  if [[ "$dry_run" == false && -z "$secrets_from" ]]; then
    echo "POSTGRES_ADMIN_PASSWORD is not set and no vault exists yet (first deploy): set it" >&2
    exit 1
  fi
  echo "+ export POSTGRES_ADMIN_PASSWORD=\$(az keyvault secret show --vault-name $secrets_from --name postgres-admin-password --query value -o tsv)"
  if [[ "$dry_run" == false ]]; then
    if ! POSTGRES_ADMIN_PASSWORD="$(read_deploy_secret postgres-admin-password)" || [[ -z "$POSTGRES_ADMIN_PASSWORD" ]]; then
      echo "cannot read postgres-admin-password from $secrets_from: the deploying identity needs Key Vault Secrets" >&2
      echo "User or Officer on it (docs/infrastructure.md, Identity), or set POSTGRES_ADMIN_PASSWORD" >&2
      exit 1
    fi
    export POSTGRES_ADMIN_PASSWORD
  fi
fi
if [[ -z "${POSTGRES_APP_PASSWORD:-}" ]]; then
  # The app role's password is generated once and then kept in the operations vault.
  echo "+ export POSTGRES_APP_PASSWORD=\$(az keyvault secret show --vault-name ${secrets_from:-<none yet>} --name postgres-app-password --query value -o tsv || python -c 'import secrets; print(secrets.token_urlsafe(32))')"
  if [[ "$dry_run" == false ]]; then
    POSTGRES_APP_PASSWORD=""
    if [[ -n "$ops_vault_name" ]]; then
      # The deployment that created the operations vault wrote it: a failure here is real.
      if ! POSTGRES_APP_PASSWORD="$(read_deploy_secret postgres-app-password)"; then
        echo "cannot read postgres-app-password from $ops_vault_name (set POSTGRES_APP_PASSWORD to keep the current one)" >&2
        exit 1
      fi
    elif [[ -n "$vault_name" ]]; then
      POSTGRES_APP_PASSWORD="$(read_deploy_secret postgres-app-password 2>/dev/null || true)"
    fi
    if [[ -z "$POSTGRES_APP_PASSWORD" ]]; then
      echo "no postgres-app-password yet: generating one (first deploy with the app role)"
      POSTGRES_APP_PASSWORD="$("$python_bin" -c 'import secrets; print(secrets.token_urlsafe(32))')"
    fi
    export POSTGRES_APP_PASSWORD
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
  ops_vault_name="<opsKeyVaultName>"
  storage_name="<storageAccountName>"; releases="<releasesContainerName>"; pg_server="<postgresServerName>"
  pg_fqdn="<postgresFqdn>"; pg_database="<postgresDatabaseName>"; pg_admin="<postgresAdminLoginName>"
else
  app_name="$(output_of functionAppName)"; app_host="$(output_of functionAppHostName)"
  vault_name="$(output_of keyVaultName)"; storage_name="$(output_of storageAccountName)"
  ops_vault_name="$(output_of opsKeyVaultName)"
  releases="$(output_of releasesContainerName)"; pg_server="$(output_of postgresServerName)"
  pg_fqdn="$(output_of postgresFqdn)"; pg_database="$(output_of postgresDatabaseName)"
  pg_admin="$(output_of postgresAdminLoginName)"
fi
if [[ "$window" == true ]]; then
  step "1b. deploy window for $RUNNER_IP (the deployment above closed everything again)"
  # Bicep set publicNetworkAccess Disabled and emptied the IP rules: open for this runner only.
  echo "(the operations vault stays closed: nothing after step 1 reads it)"
  window_vaults=""  # the app vault is re-opened below (step 1c); the earlier openings were undone by the deployment
  open_vault_window "$vault_name"
  open_storage_window "$storage_name"
  open_postgres_window "$pg_server"
  wait_for_network_rules
fi

step "1c. deploy-only secrets belong in the operations vault $ops_vault_name, not the app vault"
# An environment deployed before the operations vault existed keeps copies in the app vault,
# where the app's identity can read them. This deployment has written both into the operations
# vault; deleting the old copies is left to an operator (docs/runbook.md, "Move deploy-only
# secrets to the operations vault"): it is destructive and the admin password should be rotated.
legacy="$(capture "" az keyvault secret list --vault-name "$vault_name" \
  --query "[?name=='postgres-admin-password' || name=='postgres-app-password'].name" -o tsv)" || {
  echo "could not list the secrets of $vault_name: check by hand that it holds no postgres-*-password" >&2
  legacy=""
}
if [[ "$dry_run" == true ]]; then
  echo "(dry run: a real run warns here, with the delete commands, if the app vault still holds any of them)"
elif [[ -n "$legacy" ]]; then
  {
    echo "WARNING: the app vault $vault_name still holds deploy-only secret(s): ${legacy//$'\n'/ }"
    echo "  The app's identity can read them there. They are now in the operations vault $ops_vault_name."
    echo "  Remove them and rotate the admin password: docs/runbook.md, \"Move deploy-only secrets to the operations vault\":"
    for name in $legacy; do
      echo "    az keyvault secret delete --vault-name $vault_name --name $name"
    done
  } >&2
else
  echo "app vault holds no deploy-only secret"
fi

step "2. package: scripts/package_app.py (honors .funcignore)"
run "$python_bin" scripts/package_app.py "$package"

step "3. migrations as the server admin, then shared/db/roles.sql (app role $app_role: DML only)"
# The app's database-url is the least-privilege role, which cannot migrate: migrations and the
# role grants run with the admin login and POSTGRES_ADMIN_PASSWORD (never printed).
if [[ -n "${RUNNER_IP:-}" ]]; then
  window_pg="$pg_server"
  run az postgres flexible-server firewall-rule create --resource-group "$resource_group" --name "$pg_server" \
    --rule-name "$firewall_rule" --start-ip-address "$RUNNER_IP" --end-ip-address "$RUNNER_IP" -o none
fi
admin_url() {
  PGA_USER="$pg_admin" PGA_HOST="$pg_fqdn" PGA_DB="$pg_database" "$python_bin" -c '
import os, urllib.parse
q = lambda s: urllib.parse.quote(s, safe="")
e = os.environ
print("postgresql://%s:%s@%s:5432/%s?sslmode=require"
      % (q(e["PGA_USER"]), q(e["POSTGRES_ADMIN_PASSWORD"]), e["PGA_HOST"], q(e["PGA_DB"])))'
}
echo "+ DATABASE_URL=<postgresql://$pg_admin:\$POSTGRES_ADMIN_PASSWORD@$pg_fqdn:5432/$pg_database?sslmode=require> $python_bin -m shared.db.migrate"
echo "+ DATABASE_ADMIN_URL=<same admin URL> POSTGRES_APP_PASSWORD=<postgres-app-password> $python_bin scripts/apply_db_roles.py --role $app_role"
if [[ "$dry_run" == false ]]; then
  admin_dsn="$(admin_url)"
  DATABASE_URL="$admin_dsn" "$python_bin" -m shared.db.migrate
  DATABASE_ADMIN_URL="$admin_dsn" "$python_bin" scripts/apply_db_roles.py --role "$app_role"
fi
if [[ -n "${RUNNER_IP:-}" && "$window" == false ]]; then
  run az postgres flexible-server firewall-rule delete --resource-group "$resource_group" --name "$pg_server" \
    --rule-name "$firewall_rule" --yes -o none
  window_pg=""
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

if [[ "$window" == true ]]; then
  step "9. close the deploy window (public access Disabled again, IP rules removed)"
  close_window
fi

echo
if [[ "$dry_run" == true ]]; then
  echo "Dry run complete: nothing was called or changed."
else
  echo "Deployed $version to $env_name ($app_host)."
fi
