"""Every Bicep file parses (tree-sitter-bicep, pycep); modules and parameter files line up."""

from __future__ import annotations

import re

import pytest

from .bicep_model import (
    ENVIRONMENTS,
    INFRA,
    MAIN,
    bicep_files,
    bicepparam_assignments,
    module_config,
    parsed,
    secure_params,
    syntax_problems,
)


def test_infra_has_main_modules_and_a_parameter_file_per_environment():
    assert MAIN.exists()
    assert len(list((INFRA / "modules").glob("*.bicep"))) >= 8
    assert sorted(p.stem for p in INFRA.glob("*.bicepparam")) == sorted(ENVIRONMENTS)


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_bicep_file_has_no_syntax_errors(path):
    assert syntax_problems(path.read_bytes()) == []
    parsed(path)  # pycep (checkov's parser) accepts it too


def test_syntax_check_reports_a_broken_file():
    broken = b"resource kv 'Microsoft.KeyVault/vaults@2023-07-01' = {\n  name: 'x'\n  properties: {\n}\n"
    assert syntax_problems(broken)


def test_every_module_is_deployed_by_main_and_no_module_path_dangles():
    used = {m["detail"]["path"] for m in parsed(MAIN)["modules"].values()}
    on_disk = {p.relative_to(INFRA).as_posix() for p in (INFRA / "modules").glob("*.bicep")}
    assert used == on_disk


def test_main_passes_every_required_module_param_and_no_unknown_one():
    for symbol, module in parsed(MAIN)["modules"].items():
        declared = parsed(INFRA / module["detail"]["path"])["parameters"]
        given = set(module_config(module)["params"])
        required = {name for name, p in declared.items() if p.get("default") is None}
        assert given <= set(declared), f"{symbol}: unknown params {given - set(declared)}"
        assert required <= given, f"{symbol}: missing params {required - given}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_parameter_file_uses_main_and_sets_only_declared_params(env):
    text = (INFRA / f"{env}.bicepparam").read_text()
    assert re.search(r"^using 'main\.bicep'$", text, re.MULTILINE)
    declared = parsed(MAIN)["parameters"]
    assigned = bicepparam_assignments(env)
    assert set(assigned) <= set(declared), set(assigned) - set(declared)
    required = {name for name, p in declared.items() if p.get("default") is None}
    assert required <= set(assigned), required - set(assigned)
    assert assigned["environmentName"] == f"'{env}'"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_parameter_values_are_valid_bicep_expressions(env):
    # tree-sitter-bicep has no .bicepparam grammar; each value is checked as a variable value.
    for name, expression in bicepparam_assignments(env).items():
        assert syntax_problems(f"var {name} = {expression}\n".encode()) == [], name


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_secrets_in_parameter_files_come_only_from_the_environment(env):
    assigned = bicepparam_assignments(env)
    for name in secure_params(MAIN):
        if name in assigned:
            assert assigned[name].startswith("readEnvironmentVariable("), name
