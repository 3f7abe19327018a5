"""The operations vault: deploy-only secrets live where the app's identity has no role.

main.bicep deploys modules/keyvault.bicep twice: `keyVault` (the app vault: exactly the secrets the
Function App reads; Key Vault Secrets User for its identity) and `opsKeyVault` (postgres-admin-password,
postgres-app-password; read only by the deploying principal). Every assertion traces a resource to
the main.bicep module that deployed its vault: a secret's `parent` or a role assignment's `scope` is
an `existing` vault named by a module parameter, and main.bicep says which vault output feeds it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from .bicep_model import INFRA, MAIN, accessor, app_settings, as_text, module_config, parsed, when
from .test_security_properties import ROLE_IDS, SECRET_SETTINGS

APP_VAULT, OPS_VAULT, TOOLS_VAULT = "keyVault", "opsKeyVault", "toolsKeyVault"
VAULT_MODULE = "modules/keyvault.bicep"
DEPLOY_ONLY = {"postgres-admin-password", "postgres-app-password"}
VAULT_TYPE = "Microsoft.KeyVault/vaults"
SECRET_TYPE = "Microsoft.KeyVault/vaults/secrets"


def _modules() -> dict[str, Any]:
    modules: dict[str, Any] = parsed(MAIN)["modules"]
    return modules


def _instances(module_path: str) -> dict[str, dict[str, Any]]:
    """main.bicep module symbol -> params, for every deployment of one module file."""
    return {
        symbol: module_config(module)["params"]
        for symbol, module in _modules().items()
        if module["detail"]["path"] == module_path
    }


def _vault_module(value: Any) -> str:
    """`keyVault` for a parameter value `keyVault.outputs.name` (or `.uri`); anything else fails."""
    text = accessor(value)
    match = re.fullmatch(r"(\w+)\.outputs\.(name|uri)", text)
    assert match, f"a vault parameter must come straight from a vault module's output, not {text!r}"
    assert _modules()[match.group(1)]["detail"]["path"] == VAULT_MODULE, text
    return match.group(1)


def _vault_of(module_path: str, params: dict[str, Any], vault_symbol: str) -> str:
    """The main.bicep vault module a vault symbol of a module file refers to, for one deployment."""
    resource = parsed(INFRA / module_path)["resources"][vault_symbol]
    assert resource["type"] == VAULT_TYPE, (module_path, vault_symbol)
    assert resource["existing"], f"{module_path}: {vault_symbol} must be an existing vault passed in by name"
    return _vault_module(params[resource["config"]["name"]])


def _accessor_or_none(value: Any) -> str | None:
    try:
        return accessor(value)
    except (KeyError, TypeError):
        return None


def _secret_placement() -> dict[str, set[str]]:
    """Key Vault secret name -> the main.bicep vault modules it is written into."""
    placement: dict[str, set[str]] = {}
    for symbol, module in _modules().items():
        path = module["detail"]["path"]
        params = module_config(module)["params"]
        for res in parsed(INFRA / path).get("resources", {}).values():
            if res["type"] != SECRET_TYPE or res.get("existing"):
                continue
            config = res["config"].get("config", res["config"])  # conditional resources unwrapped
            if path == VAULT_MODULE:
                # keyvault.bicep's own secrets: written only when their parameter is given.
                if config["properties"]["value"] in params:
                    placement.setdefault(config["name"], set()).add(symbol)
            else:
                placement.setdefault(config["name"], set()).add(_vault_of(path, params, config["parent"]))
    return placement


def _secrets_the_app_reads() -> set[str]:
    settings = app_settings()
    referenced = set(re.findall(r"secrets/([a-z0-9-]+)/", as_text(settings)))
    return referenced | {settings["JWT_KEYS_SECRET_NAME"]}


# --- the two vaults --------------------------------------------------------------------------


def test_main_deploys_an_app_vault_and_an_ops_vault_from_the_same_hardened_module():
    instances = _instances(VAULT_MODULE)
    assert set(instances) == {APP_VAULT, OPS_VAULT, TOOLS_VAULT}
    for symbol, purpose in ((APP_VAULT, "app"), (OPS_VAULT, "ops"), (TOOLS_VAULT, "tools")):
        params = instances[symbol]
        # scripts/deploy.sh finds each vault by this tag.
        assert params["tags"]["function"]["type"] == "union", symbol
        assert params["tags"]["function"]["parameters"]["arg_2"] == {"purpose": purpose}, symbol
        assert params["privateNetworking"] == "privateNetworking", symbol
    # RBAC, soft delete and purge protection come with the module (test_security_properties.py);
    # the module assigns no role to anyone, so the ops vault's only readers are granted outside
    # Bicep (the deploying principal, docs/infrastructure.md "Identity").
    vault_resources = parsed(INFRA / VAULT_MODULE)["resources"].values()
    assert not [r for r in vault_resources if r["type"].startswith("Microsoft.Authorization/")]
    names = {symbol: params["name"]["function"]["parameters"]["original_value"] for symbol, params in instances.items()}
    assert len(set(names.values())) == 3
    assert "operations vault" not in as_text(parsed(MAIN)["outputs"]).lower()
    assert accessor(parsed(MAIN)["outputs"]["opsKeyVaultName"]["value"]) == f"{OPS_VAULT}.outputs.name"


def test_the_ops_vault_gets_no_app_secret_parameter():
    vault_secret_params = {
        res["config"]["config"]["properties"]["value"]
        for res in parsed(INFRA / VAULT_MODULE)["resources"].values()
        if res["type"] == SECRET_TYPE
    }
    assert vault_secret_params, "keyvault.bicep writes the optional app secrets"
    assert not vault_secret_params & set(_instances(VAULT_MODULE)[OPS_VAULT])


def test_the_ops_vault_has_a_private_endpoint_in_the_key_vault_zone_with_private_networking():
    endpoint = _modules()["opsKeyVaultEndpoint"]
    assert endpoint["detail"]["path"] == "modules/private-endpoint.bicep"
    assert endpoint["config"]["condition"] == "privateNetworking"
    params = module_config(endpoint)["params"]
    assert accessor(params["privateLinkServiceId"]) == f"{OPS_VAULT}.outputs.id"
    assert params["groupId"] == "vault"
    assert accessor(params["privateDnsZoneId"]) == "network.outputs.keyVaultZoneId"
    props = parsed(INFRA / VAULT_MODULE)["resources"]["vault"]["config"]["properties"]
    assert when(props["publicNetworkAccess"], "privateNetworking", on=True) == "Disabled"


# --- the app's identity reads nothing in the ops vault ---------------------------------------


def test_app_identity_role_assignments_never_target_the_ops_vault():
    principal = "functionApp.outputs.principalId"
    granting = {
        symbol: module
        for symbol, module in _modules().items()
        if principal in as_text(list(map(_accessor_or_none, module_config(module)["params"].values())))
    }
    assert set(granting) == {"roles"}, "only roles.bicep receives the app's principal id"
    # Every role assignment in infra/ is in a module that main.bicep gives the app's principal.
    granting_files = {m["detail"]["path"] for m in granting.values()}
    for path in sorted(INFRA.rglob("*.bicep")):
        for symbol, res in parsed(path).get("resources", {}).items():
            if res["type"] == "Microsoft.Authorization/roleAssignments":
                assert path.relative_to(INFRA).as_posix() in granting_files, (path.name, symbol)

    for module in granting.values():
        path = module["detail"]["path"]
        params = module_config(module)["params"]
        assert OPS_VAULT not in as_text(params), "the app identity's role module is handed the ops vault"
        declared = parsed(INFRA / path)["resources"]
        key_vault_scopes = set()
        for symbol, res in declared.items():
            if res["type"] != "Microsoft.Authorization/roleAssignments":
                continue
            config = res["config"].get("config", res["config"])  # a conditional one unwrapped
            scope = config["scope"]
            if declared[scope]["type"] == VAULT_TYPE:
                vault = _vault_of(path, params, scope)
                assert vault != OPS_VAULT, f"{symbol} gives the app a role on the operations vault"
                key_vault_scopes.add(vault)
        # Secrets User on the app vault (references, signing keys); Secrets Officer on the tools vault
        # (a secret per MCP tool server, written at run time): test_security_properties.py.
        assert key_vault_scopes == {APP_VAULT, TOOLS_VAULT}
    assert ROLE_IDS["Key Vault Secrets User"] in as_text(parsed(INFRA / "modules/roles.bicep"))


def test_admin_password_is_only_in_the_ops_vault_and_the_app_vault_holds_only_what_the_app_reads():
    placement = _secret_placement()
    for name in DEPLOY_ONLY:
        assert placement.get(name) == {OPS_VAULT}, (name, placement.get(name))
    in_app_vault = {name for name, vaults in placement.items() if APP_VAULT in vaults}
    in_ops_vault = {name for name, vaults in placement.items() if OPS_VAULT in vaults}
    reads = _secrets_the_app_reads()
    assert in_app_vault <= reads, f"app vault holds secrets the app never reads: {in_app_vault - reads}"
    assert set(SECRET_SETTINGS.values()) <= in_app_vault | {"jwt-signing-keys", "anthropic-api-key", "openai-api-key"}
    assert in_ops_vault == DEPLOY_ONLY
    assert not reads & in_ops_vault, "the app references a secret kept in the operations vault"


def test_postgres_writes_the_app_url_to_the_app_vault_and_both_passwords_to_the_ops_vault():
    params = _instances("modules/postgres.bicep")["postgres"]
    assert _vault_module(params["keyVaultName"]) == APP_VAULT
    assert _vault_module(params["opsKeyVaultName"]) == OPS_VAULT
    secrets = {
        r["config"]["name"]: r["config"]["parent"]
        for r in parsed(INFRA / "modules/postgres.bicep")["resources"].values()
        if r["type"] == SECRET_TYPE
    }
    assert secrets == {
        "database-url": "vault",
        "postgres-app-password": "opsVault",
        "postgres-admin-password": "opsVault",
    }


# --- no app setting points at the ops vault --------------------------------------------------


def test_no_app_setting_references_the_ops_vault():
    app = module_config(_modules()["functionApp"])
    assert OPS_VAULT not in as_text(app), "the Function App module is handed the operations vault"
    assert _vault_module(app["params"]["keyVaultUri"]) == APP_VAULT
    settings = app_settings()
    assert settings["KEY_VAULT_URL"] == "keyVaultUri"
    for name, value in settings.items():
        text = as_text(value)
        if "Microsoft.KeyVault" in text:
            assert re.fullmatch(r"@Microsoft\.KeyVault\(SecretUri=\$\{keyVaultUri\}secrets/[a-z0-9-]+/\)", value), name
            assert not any(f"secrets/{s}/" in value for s in DEPLOY_ONLY), name
        assert OPS_VAULT not in text and "kvops" not in text, name
    site_params = set(parsed(INFRA / "modules/functionapp.bicep")["parameters"])
    assert not {p for p in site_params if "vault" in p.lower()} - {"keyVaultUri", "toolsVaultUri"}
    assert _vault_module(app["params"]["toolsVaultUri"]) == TOOLS_VAULT
    assert settings["TOOL_VAULT_URL"] == "toolsVaultUri"


@pytest.mark.parametrize("doc", ["docs/infrastructure.md", "docs/runbook.md"])
def test_docs_name_the_ops_vault_for_the_admin_password(doc):
    text = (Path(INFRA).parent / doc).read_text()
    assert "operations vault" in text and "postgres-admin-password" in text
