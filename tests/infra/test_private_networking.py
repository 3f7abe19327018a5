"""Private networking (privateNetworking, on in staging and prod): VNet integration of the Flex
Consumption app, a private endpoint + linked private DNS zone per service, public access off."""

from __future__ import annotations

from typing import Any

import pytest

from .bicep_model import (
    INFRA,
    MAIN,
    accessor,
    bicepparam_assignments,
    module_condition,
    module_config,
    one,
    parsed,
    resources,
    when,
)

FLAG = "privateNetworking"
NETWORK = INFRA / "modules/network.bicep"

# main.bicep module symbol -> (service module symbol, Private Link groupId, network zone output, zone name)
ENDPOINTS = {
    "keyVaultEndpoint": ("keyVault", "vault", "keyVaultZoneId", "privatelink.vaultcore.azure.net"),
    "opsKeyVaultEndpoint": ("opsKeyVault", "vault", "keyVaultZoneId", "privatelink.vaultcore.azure.net"),
    "toolsKeyVaultEndpoint": ("toolsKeyVault", "vault", "keyVaultZoneId", "privatelink.vaultcore.azure.net"),
    "storageBlobEndpoint": ("storage", "blob", "blobZoneId", "privatelink.blob.${environment().suffixes.storage}"),
    "storageQueueEndpoint": ("storage", "queue", "queueZoneId", "privatelink.queue.${environment().suffixes.storage}"),
    "storageTableEndpoint": ("storage", "table", "tableZoneId", "privatelink.table.${environment().suffixes.storage}"),
    "redisEndpoint": ("redis", "redisCache", "redisZoneId", "privatelink.redis.cache.windows.net"),
    "webPubSubEndpoint": ("webPubSub", "webpubsub", "webPubSubZoneId", "privatelink.webpubsub.azure.com"),
    "postgresEndpoint": ("postgres", "postgresqlServer", "postgresZoneId", "privatelink.postgres.database.azure.com"),
}

# Resources whose public endpoint closes with private networking (module file, resource type).
CLOSED = {
    "keyVault": "Microsoft.KeyVault/vaults",
    "storage": "Microsoft.Storage/storageAccounts",
    "redis": "Microsoft.Cache/redis",
}


def _modules() -> dict[str, Any]:
    modules: dict[str, Any] = parsed(MAIN)["modules"]
    return modules


def test_private_networking_defaults_on_and_is_on_in_staging_and_prod_off_in_dev():
    param = parsed(MAIN)["parameters"][FLAG]
    assert param["type"] == "bool" and param["default"] is True
    assert bicepparam_assignments("staging")[FLAG] == "true"
    assert bicepparam_assignments("prod")[FLAG] == "true"
    assert bicepparam_assignments("dev")[FLAG] == "false"


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_private_environments_use_a_web_pubsub_sku_with_private_endpoints(env):
    assert bicepparam_assignments(env)["webPubSubSkuName"].strip("'") in {"Standard_S1", "Premium_P1"}


def test_network_module_is_deployed_only_with_private_networking():
    network = _modules()["network"]
    assert network["detail"]["path"] == "modules/network.bicep"
    assert module_condition(network) == FLAG


def test_app_subnet_is_delegated_for_the_plan_in_use_and_endpoints_have_their_own_subnet():
    plan = one("Microsoft.Web/serverfarms")
    expected = (
        "Microsoft.App/environments" if plan.config["sku"]["tier"] == "FlexConsumption" else "Microsoft.Web/serverFarms"
    )
    vnet = one("Microsoft.Network/virtualNetworks")
    subnets = {s["name"]: s["properties"] for s in vnet.properties["subnets"]}
    assert set(subnets) == {"snet-app", "snet-pe"}
    assert [d["properties"]["serviceName"] for d in subnets["snet-app"]["delegations"]] == [expected]
    assert not subnets["snet-pe"].get("delegations")
    for name, subnet in subnets.items():
        assert accessor(subnet["networkSecurityGroup"]["id"]) == "nsg.id", name
    outputs = parsed(NETWORK)["outputs"]
    assert "snet-app" in str(outputs["appSubnetId"]["value"])
    assert "snet-pe" in str(outputs["privateEndpointSubnetId"]["value"])


def test_every_private_dns_zone_is_linked_to_the_vnet():
    variables = parsed(NETWORK)["variables"]["zoneNames"]["value"]
    zones = {
        r.symbol: variables[accessor(r.config["name"]).split(".", 1)[1]]
        for r in resources("Microsoft.Network/privateDnsZones")
    }
    assert set(zones.values()) == {zone for *_, zone in ENDPOINTS.values()}
    links = {r.config["parent"]: r for r in resources("Microsoft.Network/privateDnsZones/virtualNetworkLinks")}
    assert set(links) == set(zones), "a zone without a VNet link resolves nothing"
    for symbol, link in links.items():
        assert accessor(link.properties["virtualNetwork"]["id"]) == "vnet.id", symbol
        assert link.properties["registrationEnabled"] is False, symbol


@pytest.mark.parametrize("symbol", sorted(ENDPOINTS))
def test_each_service_gets_a_private_endpoint_registered_in_its_zone(symbol):
    service, group_id, zone_output, zone_name = ENDPOINTS[symbol]
    module = _modules()[symbol]
    assert module["detail"]["path"] == "modules/private-endpoint.bicep"
    assert module_condition(module) == FLAG
    params = module_config(module)["params"]
    assert accessor(params["privateLinkServiceId"]) == f"{service}.outputs.id"
    assert params["groupId"] == group_id
    assert accessor(params["subnetId"]) == "network.outputs.privateEndpointSubnetId"
    assert accessor(params["privateDnsZoneId"]) == f"network.outputs.{zone_output}"
    # ... and that output is the id of the zone with the right name.
    network = parsed(NETWORK)
    zone_symbol = accessor(network["outputs"][zone_output]["value"]).removesuffix(".id")
    zone_key = accessor(network["resources"][zone_symbol]["config"]["name"]).split(".", 1)[1]
    assert network["variables"]["zoneNames"]["value"][zone_key] == zone_name


def test_private_endpoint_module_registers_a_dns_zone_group():
    endpoint = one("Microsoft.Network/privateEndpoints")
    connection = endpoint.properties["privateLinkServiceConnections"][0]["properties"]
    assert connection["groupIds"] == ["groupId"]
    assert connection["privateLinkServiceId"] == "privateLinkServiceId"
    (group,) = resources("Microsoft.Network/privateEndpoints/privateDnsZoneGroups")
    assert group.properties["privateDnsZoneConfigs"][0]["properties"]["privateDnsZoneId"] == "privateDnsZoneId"


@pytest.mark.parametrize("module_symbol", ["keyVault", "opsKeyVault", "toolsKeyVault", "storage", "redis",
                                           "webPubSub", "postgres"])
def test_main_passes_the_flag_to_every_data_store(module_symbol):
    assert module_config(_modules()[module_symbol])["params"][FLAG] == FLAG


@pytest.mark.parametrize("module_symbol", sorted(CLOSED))
def test_public_network_access_is_disabled_with_private_networking(module_symbol):
    props = one(CLOSED[module_symbol]).properties
    assert when(props["publicNetworkAccess"], FLAG, on=True) == "Disabled"
    assert when(props["publicNetworkAccess"], FLAG, on=False) == "Enabled"
    if "networkAcls" in props:
        assert when(props["networkAcls"]["defaultAction"], FLAG, on=True) == "Deny"
        assert props["networkAcls"]["ipRules"] == [], "a leftover deploy-window rule must be removed by the next deploy"


def test_postgres_is_private_and_admits_no_azure_wide_firewall_rule():
    server = one("Microsoft.DBforPostgreSQL/flexibleServers")
    assert when(server.properties["network"]["publicNetworkAccess"], FLAG, on=True) == "Disabled"
    rule = parsed(INFRA / "modules/postgres.bicep")["resources"]["allowAzureServices"]
    assert rule["config"]["condition"] == {"operator": {"type": "not", "operands": {"bool_value": FLAG}}}


def test_web_pubsub_keeps_client_connections_public_and_server_traffic_private():
    props = one("Microsoft.SignalRService/webPubSub").properties
    assert props["publicNetworkAccess"] == "Enabled"  # browsers connect from the Internet
    acls = when(props["networkACLs"], FLAG, on=True)
    assert acls["publicNetwork"]["allow"] == ["ClientConnection"]
    assert {"ServerConnection", "RESTAPI", "Trace"} <= set(acls["publicNetwork"]["deny"])
    assert acls["defaultAction"] == "Allow"  # i.e. the private endpoint connections carry everything


def test_function_app_joins_the_integration_subnet_and_routes_all_outbound_traffic_through_it():
    site = one("Microsoft.Web/sites").properties
    subnet = site["virtualNetworkSubnetId"]["operator"]["operands"]
    assert subnet["false_value"] == "virtualNetworkSubnetId"
    assert subnet["condition"] == {
        "function": {"type": "empty", "parameters": {"item_to_test": "virtualNetworkSubnetId"}}
    }
    route_all = site["vnetRouteAllEnabled"]["operator"]
    assert route_all["type"] == "not"
    assert route_all["operands"]["bool_value"]["function"]["parameters"]["item_to_test"] == "virtualNetworkSubnetId"

    app = module_config(_modules()["functionApp"])
    assert accessor(when(app["params"]["virtualNetworkSubnetId"], FLAG, on=True)) == "network.outputs.appSubnetId"
    assert when(app["params"]["virtualNetworkSubnetId"], FLAG, on=False) == ""
    # The app starts only once every endpoint it uses (and so its Key Vault references) resolves;
    # the operations vault's endpoint serves the deployer only.
    assert set(ENDPOINTS) - {"opsKeyVaultEndpoint"} <= set(app["dependsOn"])


def test_the_app_reads_a_database_url_for_the_least_privilege_role_not_the_admin():
    secrets = {r.config["name"]: r for r in resources("Microsoft.KeyVault/vaults/secrets")}
    url = secrets["database-url"].properties["value"]
    assert "${uriComponent(appRoleName)}:${uriComponent(appRolePassword)}@" in url
    assert "administrator" not in url
    assert secrets["postgres-app-password"].properties["value"] == "appRolePassword"
    assert module_config(_modules()["postgres"])["params"]["appRolePassword"] == "postgresAppPassword"
    for env in ("dev", "staging", "prod"):
        assert bicepparam_assignments(env)["postgresAppPassword"] == "readEnvironmentVariable('POSTGRES_APP_PASSWORD')"
