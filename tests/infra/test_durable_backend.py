"""The Durable backend in Azure: the Durable Task Scheduler declared, wired to the app by identity and
selected by host.json, with the storage account kept as the `durableBackend = 'storage'` choice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devhost.app_index import read_host_settings

from .bicep_model import (
    ENVIRONMENTS,
    INFRA,
    MAIN,
    accessor,
    app_settings,
    as_text,
    bicepparam_assignments,
    module_condition,
    module_config,
    one,
    parsed,
    when,
)

REPO = INFRA.parent
HOST_JSON = json.loads((REPO / "host.json").read_text())
DURABLE_TASK_DATA_CONTRIBUTOR = "0ad04412-c4d5-4796-b79c-f76d14c8d402"
QUEUE_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
TABLE_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
BLOB_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
PROVIDER_TYPE = "AzureFunctionsJobHost__extensions__durableTask__storageProvider__type"
PROVIDER_CONNECTION = "AzureFunctionsJobHost__extensions__durableTask__storageProvider__connectionStringName"


def _variables(path: str) -> dict[str, Any]:
    found: dict[str, Any] = {name: v["value"] for name, v in parsed(INFRA / path).get("variables", {}).items()}
    return found


def _setting(name: str, *, scheduler: bool) -> Any:
    """An app setting's value with the backend chosen (a variable followed, its ternary taken)."""
    value = app_settings()[name]
    variables = _variables("modules/functionapp.bicep")
    return when(variables.get(value, value), "useScheduler", scheduler)


def _condition(resource: dict[str, Any]) -> Any:
    return resource["config"].get("condition")


def test_the_scheduler_and_its_task_hub_are_declared_on_the_ga_api():
    scheduler = one("Microsoft.DurableTask/schedulers")
    hub = one("Microsoft.DurableTask/schedulers/taskHubs")
    declared = parsed(INFRA / "modules/durabletask.bicep")["resources"]
    assert {r["api_version"] for r in declared.values()} == {"2025-11-01"}
    assert hub.config["parent"] == scheduler.symbol and hub.config["name"] == "taskHubName"
    assert scheduler.properties["ipAllowlist"] == "ipAllowlist"
    params = parsed(INFRA / "modules/durabletask.bicep")["parameters"]
    # The provider refuses every caller when the list is empty: never allow that.
    assert {"type": "min_length", "argument": 1} in params["ipAllowlist"]["decorators"]
    # Capacity is sent only for Dedicated (Consumption has none to size).
    assert when(scheduler.properties["sku"], "dedicated", True) == {"name": "skuName", "capacity": "capacity"}
    assert when(scheduler.properties["sku"], "dedicated", False) == {"name": "skuName"}
    (policy,) = one("Microsoft.DurableTask/schedulers/retentionPolicies").properties["retentionPolicies"]
    assert policy == {"retentionPeriodInDays": "retentionDays"}


def test_main_deploys_the_scheduler_only_for_the_scheduler_backend_and_defaults_to_it():
    params = parsed(MAIN)["parameters"]
    assert params["durableBackend"]["default"] == "scheduler"
    allowed = [d["argument"] for d in params["durableBackend"]["decorators"] if d["type"] == "allowed"]
    assert allowed == [["scheduler", "storage"]]
    module = parsed(MAIN)["modules"]["durableTask"]
    assert module_condition(module) == "useScheduler"
    assert as_text(_variables("main.bicep")["useScheduler"]) == as_text(
        {"operator": {"type": "equals", "operands": {"operand_1": "durableBackend", "operand_2": "scheduler"}}})
    function_app = module_config(parsed(MAIN)["modules"]["functionApp"])["params"]
    assert function_app["durableBackend"] == "durableBackend"
    endpoint = when(function_app["durableTaskSchedulerEndpoint"], "useScheduler", True)
    assert accessor(endpoint) == "durableTask.outputs.endpoint"


def test_host_json_selects_the_scheduler_and_names_the_task_hub_bicep_creates():
    durable = HOST_JSON["extensions"]["durableTask"]
    assert durable["storageProvider"] == {"type": "azureManaged",
                                          "connectionStringName": "DURABLE_TASK_SCHEDULER_CONNECTION_STRING"}
    hub_name = _variables("main.bicep")["durableTaskHubName"]
    assert durable["hubName"] == hub_name == "ghostpirates"
    module = module_config(parsed(MAIN)["modules"]["durableTask"])["params"]
    roles = module_config(parsed(MAIN)["modules"]["roles"])["params"]
    assert module["taskHubName"] == roles["durableTaskHubName"] == "durableTaskHubName"
    assert module["name"] == roles["durableTaskSchedulerName"] == "durableTaskSchedulerName"


def test_devhost_still_reads_the_hub_name_and_route_prefix_and_ignores_the_provider(tmp_path: Path):
    settings = read_host_settings(REPO)
    assert settings.hub_name == "ghostpirates" and settings.route_prefix == ""
    # Whatever the provider says (a type devhost has never heard of), devhost reads the same.
    other = json.loads(json.dumps(HOST_JSON))
    other["extensions"]["durableTask"]["storageProvider"] = {"type": "netherite", "whatever": 1}
    (tmp_path / "host.json").write_text(json.dumps(other))
    assert read_host_settings(tmp_path) == settings


@pytest.mark.parametrize("scheduler", [True, False], ids=["scheduler", "storage"])
def test_app_settings_point_the_extension_at_the_chosen_backend(scheduler: bool):
    assert _setting(PROVIDER_TYPE, scheduler=scheduler) == ("azureManaged" if scheduler else "AzureStorage")
    connection = _setting(PROVIDER_CONNECTION, scheduler=scheduler)
    assert connection == ("DURABLE_TASK_SCHEDULER_CONNECTION_STRING" if scheduler else "AzureWebJobsStorage")
    value = _setting("DURABLE_TASK_SCHEDULER_CONNECTION_STRING", scheduler=scheduler)
    if scheduler:
        # The system identity (no ClientID) and no key: the role assignment is the whole access.
        assert value == "Endpoint=${durableTaskSchedulerEndpoint};Authentication=ManagedIdentity"
    else:
        assert value == ""
        # The storage backend connects with the identity too (AzureWebJobsStorage__accountName).
        assert app_settings()["AzureWebJobsStorage__accountName"] == "storageAccountName"


def test_the_identity_gets_the_durable_role_of_the_backend_in_use_and_only_that():
    declared = parsed(INFRA / "modules/roles.bicep")["resources"]
    role_ids = _variables("modules/roles.bicep")["roles"]
    by_role: dict[str, dict[str, Any]] = {}
    for res in declared.values():
        if res["type"] == "Microsoft.Authorization/roleAssignments":
            config = res["config"].get("config", res["config"])
            variable = _role_variable(as_text(config["properties"]["roleDefinitionId"]))
            assert variable is not None
            by_role[role_ids[variable]] = res
    scheduler_only = {"operator": {"type": "equals", "operands": {"operand_1": "durableBackend",
                                                                  "operand_2": "scheduler"}}}
    storage_only = {"operator": {"type": "equals", "operands": {"operand_1": "durableBackend",
                                                                "operand_2": "storage"}}}
    assert _condition(by_role[DURABLE_TASK_DATA_CONTRIBUTOR]) == scheduler_only
    scope = by_role[DURABLE_TASK_DATA_CONTRIBUTOR]["config"]["config"]["scope"]
    assert scope == "taskHub", "the task hub, not the whole scheduler"
    assert declared["taskHub"]["existing"] and declared["taskHub"]["config"]["parent"] == "scheduler"
    assert _condition(by_role[QUEUE_CONTRIBUTOR]) == storage_only
    assert _condition(by_role[TABLE_CONTRIBUTOR]) == storage_only
    assert _condition(by_role[BLOB_OWNER]) is None, "the Functions host itself always needs its blobs"


def _role_variable(role_definition: str) -> str | None:
    """`roles.<name>` inside a subscriptionResourceId(...) expression, as pycep renders it."""
    marker = '"operand_1": "roles", "operand_2": "'
    start = role_definition.find(marker)
    if start < 0:
        return None
    rest = role_definition[start + len(marker):]
    return rest[: rest.index('"')]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_uses_the_scheduler_within_its_sku_limits(env: str):
    values = bicepparam_assignments(env)
    assert values["durableBackend"] == "'scheduler'"
    sku = values["durableTaskSchedulerSkuName"].strip("'")
    days = int(values["durableTaskRetentionDays"])
    # Consumption keeps history up to 30 days, Dedicated up to 90 (docs/infrastructure.md).
    assert days <= (30 if sku == "Consumption" else 90)
    if sku == "Dedicated":
        assert 1 <= int(values["durableTaskSchedulerCapacity"]) <= 3
    assert env != "prod" or sku == "Dedicated", "prod runs on reserved capacity"


def test_main_outputs_the_task_hub_dashboard_but_no_connection_string():
    outputs = parsed(MAIN)["outputs"]
    assert accessor(when(outputs["durableTaskDashboardUri"]["value"], "useScheduler", True)) == (
        "durableTask.outputs.dashboardUrl")
    assert "DURABLE_TASK_SCHEDULER_CONNECTION_STRING" not in as_text(outputs)
