"""Security properties of the declared infrastructure, asserted on pycep's parse of infra/."""

from __future__ import annotations

import re

import pytest

from .bicep_model import (
    INFRA,
    MAIN,
    app_settings,
    as_text,
    bicep_files,
    bicepparam_assignments,
    one,
    parsed,
    resources,
    secure_params,
)

SECRET_SETTINGS = {
    "DATABASE_URL": "database-url",
    "REDIS_URL": "redis-url",
    "JWT_SIGNING_KEYS": "jwt-signing-keys",
    "WEBPUBSUB_CONNECTION_STRING": "webpubsub-connection-string",
    "ANTHROPIC_API_KEY": "anthropic-api-key",
    "OPENAI_API_KEY": "openai-api-key",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "applicationinsights-connection-string",
}
KV_REFERENCE = re.compile(r"^@Microsoft\.KeyVault\(SecretUri=\$\{keyVaultUri\}secrets/([a-z0-9-]+)/\)$")

ROLE_IDS = {
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "Durable Task Data Contributor": "0ad04412-c4d5-4796-b79c-f76d14c8d402",
}
#: Settings named like secrets that hold none: identity-based connections (an endpoint, no key).
IDENTITY_CONNECTIONS = {"DURABLE_TASK_SCHEDULER_CONNECTION_STRING"}
BROAD_ROLE_IDS = {
    "Owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "Contributor": "b24988ac-6180-42a0-ab88-20f7382ad24d",
    "Key Vault Administrator": "00482a5a-887f-4fb3-b363-3b7fe8e74483",
}
#: Writes secrets: granted on the tools vault only (a secret per MCP tool server), never the app vault.
SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"


# --- Function App ----------------------------------------------------------------------------


def test_every_secret_bearing_app_setting_is_a_key_vault_reference_to_a_written_secret():
    settings = app_settings()
    written = {r.config["name"] for r in resources("Microsoft.KeyVault/vaults/secrets")}
    for name, secret_name in SECRET_SETTINGS.items():
        match = KV_REFERENCE.match(settings[name])
        assert match, f"{name} is not a Key Vault reference: {settings[name]!r}"
        assert match.group(1) == secret_name
        assert secret_name in written, f"no Key Vault secret resource writes {secret_name}"


def test_no_other_app_setting_carries_a_secret():
    secret_looking = re.compile(r"(?i)(PASSWORD|SECRET|API_KEY|CONNECTION_STRING|_KEYS?$|DATABASE_URL|REDIS_URL)")
    for name, value in app_settings().items():
        if name in IDENTITY_CONNECTIONS:
            variables = parsed(INFRA / "modules/functionapp.bicep")["variables"]
            text = as_text(variables[value]["value"] if value in variables else value)
            assert "Authentication=ManagedIdentity" in text and "Key=" not in text, name
        elif secret_looking.search(name) and not name.endswith(("_NAME", "__connectionStringName")):
            assert name in SECRET_SETTINGS, f"{name} looks secret but is not a Key Vault reference"
        assert "AccountKey=" not in str(value) and "listKeys" not in as_text(value), name


def test_the_app_trusts_exactly_the_functions_front_end_for_client_addresses():
    # The app refuses TRUSTED_PROXY_HOPS=0 outside local/test (tests/unit/test_settings_security.py).
    settings = app_settings()
    assert settings["TRUSTED_PROXY_HOPS"] == "1" and settings["ENVIRONMENT"] == "environmentName"


def test_runtime_storage_is_identity_based():
    settings = app_settings()
    assert settings["AzureWebJobsStorage__accountName"] == "storageAccountName"
    assert "AzureWebJobsStorage" not in settings
    deployment = one("Microsoft.Web/sites").properties["functionAppConfig"]["deployment"]["storage"]
    assert deployment["authentication"]["type"] == "SystemAssignedIdentity"


def test_function_app_is_https_only_tls12_no_ftp_with_system_identity_on_python_311():
    site = one("Microsoft.Web/sites")
    assert site.config["identity"]["type"] == "SystemAssigned"
    assert site.properties["httpsOnly"] is True
    site_config = site.properties["siteConfig"]
    assert site_config["minTlsVersion"] == "1.2"
    assert site_config["scmMinTlsVersion"] == "1.2"
    assert site_config["ftpsState"] == "Disabled"
    assert site.properties["functionAppConfig"]["runtime"] == {"name": "python", "version": "3.11"}
    assert site.properties["keyVaultReferenceIdentity"] == "SystemAssigned"


def test_function_app_runs_on_flex_consumption():
    plan = one("Microsoft.Web/serverfarms")
    assert plan.config["sku"] == {"name": "FC1", "tier": "FlexConsumption"}


def test_basic_publishing_credentials_are_disabled():
    policies = resources("Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    assert {p.config["name"]: p.properties["allow"] for p in policies} == {"ftp": False, "scm": False}


# --- data stores -----------------------------------------------------------------------------


def test_storage_refuses_shared_keys_public_blobs_and_old_tls():
    props = one("Microsoft.Storage/storageAccounts").properties
    assert props["allowSharedKeyAccess"] is False
    assert props["allowBlobPublicAccess"] is False
    assert props["supportsHttpsTrafficOnly"] is True
    assert props["minimumTlsVersion"] == "TLS1_2"


def test_key_vault_uses_rbac_with_soft_delete_and_purge_protection():
    props = one("Microsoft.KeyVault/vaults").properties
    assert props["enableRbacAuthorization"] is True
    assert props["enableSoftDelete"] is True
    assert props["enablePurgeProtection"] is True


def test_redis_accepts_tls_12_only():
    props = one("Microsoft.Cache/redis").properties
    assert props["enableNonSslPort"] is False
    assert props["minimumTlsVersion"] == "1.2"


def test_postgres_keeps_backups_for_point_in_time_restore_and_requires_tls():
    server = one("Microsoft.DBforPostgreSQL/flexibleServers")
    backup = server.properties["backup"]
    assert backup["backupRetentionDays"] == "backupRetentionDays"
    params = parsed(INFRA / "modules/postgres.bicep")["parameters"]
    min_days = [d["argument"] for d in params["backupRetentionDays"]["decorators"] if d["type"] == "min_value"]
    assert min_days == [7]
    assert backup["geoRedundantBackup"]["operator"]["operands"]["condition"] == "geoRedundantBackup"
    assert server.properties["highAvailability"]["mode"]["operator"]["operands"]["condition"] == "highAvailability"
    configs = {
        c.config["name"]: c.properties["value"]
        for c in resources("Microsoft.DBforPostgreSQL/flexibleServers/configurations")
    }
    assert configs["require_secure_transport"] == "ON"
    assert configs["ssl_min_protocol_version"] == "TLSv1.2"


def test_prod_turns_on_geo_redundant_backups_high_availability_and_long_retention():
    prod = bicepparam_assignments("prod")
    assert prod["postgresGeoRedundantBackup"] == "true"
    assert prod["postgresHighAvailability"] == "true"
    assert int(prod["postgresBackupRetentionDays"]) == 35


# --- Web PubSub ------------------------------------------------------------------------------


def test_web_pubsub_hub_sends_connection_and_user_events_to_the_app():
    hub = one("Microsoft.SignalRService/webPubSub/hubs")
    assert parsed(INFRA / "modules/webpubsub-hub.bicep")["parameters"]["hubName"]["default"] == "ghost_pirates"
    (handler,) = hub.properties["eventHandlers"]
    assert handler["urlTemplate"] == "https://${appHostName}/api/realtime/events"
    assert handler["userEventPattern"] == "*"
    assert set(handler["systemEvents"]) == {"connect", "connected", "disconnected"}
    assert hub.properties["anonymousConnectPolicy"] == "deny"


# --- identity and roles ----------------------------------------------------------------------


def test_identity_gets_each_needed_role_and_nothing_broad():
    assignments = resources("Microsoft.Authorization/roleAssignments")
    text = as_text(parsed(INFRA / "modules/roles.bicep"))
    for role, role_id in ROLE_IDS.items():
        assert role_id in text, f"missing role assignment: {role}"
    for role, role_id in BROAD_ROLE_IDS.items():
        assert role_id not in text, f"over-broad role assigned: {role}"
    assert len(assignments) == len(ROLE_IDS) + 1
    officers = [a for a in assignments if "keyVaultSecretsOfficer" in as_text(a.properties["roleDefinitionId"])]
    assert [a.config["scope"] for a in officers] == ["toolsVault"], "Secrets Officer only on the tools vault"
    for assignment in assignments:
        assert assignment.properties["principalId"] == "principalId", assignment.symbol
        assert assignment.properties["principalType"] == "ServicePrincipal"
        assert "scope" in assignment.config, f"{assignment.symbol} is not scoped to one resource"


def test_application_insights_accepts_only_entra_authenticated_telemetry():
    props = one("Microsoft.Insights/components").properties
    assert props["DisableLocalAuth"] is True
    assert app_settings()["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "Authorization=AAD"


# --- secrets never leak ----------------------------------------------------------------------


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_no_output_exposes_a_secret(path):
    secure = set(secure_params(path))
    for name, output in parsed(path).get("outputs", {}).items():
        value = as_text(output["value"])
        assert not re.search(r"(?i)password|secret|connectionstring", name), name
        assert "list" not in re.findall(r'"type": "(list\w*)"', value)
        assert "listKeys" not in value and "ConnectionString" not in value, name
        for param in secure:
            assert f'"{param}"' not in value and "${" + param + "}" not in value, (name, param)


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_secure_params_have_no_value_defaults(path):
    for name, param in secure_params(path).items():
        assert param.get("default") in (None, ""), name


def test_secure_params_flow_only_into_key_vault_or_the_database_admin_password():
    allowed_sinks = ("value", "administratorLoginPassword")
    for path in bicep_files():
        secure = set(secure_params(path))
        for res_symbol, res in parsed(path).get("resources", {}).items():
            config = res["config"].get("config", res["config"])
            for key_path, leaf in _leaves(config):
                for param in secure:
                    if leaf == param or "${" + param + "}" in leaf or f"({param})" in leaf:
                        assert key_path[-1] in allowed_sinks, (path.name, res_symbol, key_path)
                        if key_path[-1] == "value":
                            assert res["type"] == "Microsoft.KeyVault/vaults/secrets", (path.name, res_symbol)


def _leaves(node, prefix=()):
    """(key path, string) for every string in a parsed resource; a secure parameter used as a
    function argument ends under the argument's key, which is not an allowed sink."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*prefix, key))
    elif isinstance(node, list):
        for value in node:
            yield from _leaves(value, prefix)
    elif isinstance(node, str):
        yield prefix, node


def test_every_checkov_skip_states_a_reason():
    for path in bicep_files():
        for line in path.read_text().splitlines():
            if "checkov:skip=" in line:
                assert re.search(r"checkov:skip=CKV2?_AZURE_\d+:\S.{15,}", line), f"{path.name}: {line.strip()}"


# --- alerts ----------------------------------------------------------------------------------


def test_alerts_cover_5xx_latency_orchestrations_budget_and_database_cpu():
    queries = " ".join(
        r.properties["criteria"]["allOf"][0]["query"] for r in resources("Microsoft.Insights/scheduledQueryRules")
    )
    assert "resultCode" in queries and ">= 500" in queries
    assert "percentile(duration, 95)" in queries
    assert 'prop__state"]) == "Failed"' in queries
    assert "budget_exceeded" in queries
    metrics = [
        r.properties["criteria"]["allOf"][0]["metricName"]
        for r in resources("Microsoft.Insights/metricAlerts")
        if "allOf" in r.properties["criteria"]
    ]
    assert "cpu_percent" in metrics
    runbook = (INFRA.parent / "docs/runbook.md").read_text()
    anchors = {_anchor(line.lstrip("#")) for line in runbook.splitlines() if line.startswith("#")}
    for rule in resources("Microsoft.Insights/scheduledQueryRules") + resources("Microsoft.Insights/metricAlerts"):
        link = re.search(r"docs/runbook\.md#([\w-]+)", rule.properties["description"])
        assert link, f"{rule.symbol} does not link its runbook section"
        assert link.group(1) in anchors, f"{rule.symbol} links a missing runbook section #{link.group(1)}"


def _anchor(heading: str) -> str:
    """GitHub-style heading anchor: lowercase, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_main_outputs_only_names_and_endpoints():
    for name in parsed(MAIN)["outputs"]:
        assert re.search(r"(Name|HostName|Uri|Fqdn)$", name), name
