"""Load infra/ for the tests: tree-sitter syntax errors, pycep JSON per file, bicepparam values.

pycep renders identifiers and string literals alike (``"name": "name"``), so assertions compare
against the exact source form: a parameter reference is its bare name, an interpolated string
keeps its ``${...}`` text."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tree_sitter
import tree_sitter_bicep
from pycep import BicepParser

INFRA = Path(__file__).resolve().parents[2] / "infra"
MAIN = INFRA / "main.bicep"
ENVIRONMENTS = ("dev", "staging", "prod")


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


@functools.cache
def _parser() -> tree_sitter.Parser:
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_bicep.language()))


def syntax_problems(source: bytes) -> list[str]:
    """Every ERROR or MISSING node as 'line:col kind text' (1-based lines)."""
    problems: list[str] = []

    def walk(node: tree_sitter.Node) -> None:
        if node.type == "ERROR" or node.is_missing:
            kind = "MISSING " + node.type if node.is_missing else "ERROR"
            text = (node.text or b"")[:40].decode(errors="replace")
            problems.append(f"{node.start_point[0] + 1}:{node.start_point[1] + 1} {kind} {text!r}")
        for child in node.children:
            walk(child)

    walk(_parser().parse(source).root_node)
    return problems


@functools.cache
def _bicep_parser() -> BicepParser:
    return BicepParser()


@functools.cache
def parsed(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = dict(_bicep_parser().parse(text=path.read_text()))
    return result


@dataclass(frozen=True)
class Resource:
    file: str
    symbol: str
    type: str
    config: dict[str, Any]

    @property
    def properties(self) -> dict[str, Any]:
        props: dict[str, Any] = self.config.get("properties", {})
        return props


def resources(type_: str | None = None) -> list[Resource]:
    """Every declared (not `existing`) resource, conditional ones unwrapped."""
    found: list[Resource] = []
    for path in bicep_files():
        for symbol, res in parsed(path).get("resources", {}).items():
            if res.get("existing"):
                continue
            config = res["config"]
            if "condition" in config and "config" in config:
                config = config["config"]
            if type_ is None or res["type"] == type_:
                found.append(Resource(path.relative_to(INFRA).as_posix(), symbol, res["type"], config))
    return found


def one(type_: str) -> Resource:
    (resource,) = resources(type_)
    return resource


def app_settings() -> dict[str, Any]:
    site = one("Microsoft.Web/sites")
    return {s["name"]: s["value"] for s in site.properties["siteConfig"]["appSettings"]}


def secure_params(path: Path) -> dict[str, Any]:
    return {
        name: p
        for name, p in parsed(path).get("parameters", {}).items()
        if any(d.get("type") == "secure" for d in p.get("decorators", []))
    }


def as_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


_PARAM_LINE = re.compile(r"^param\s+(\w+)\s*=\s*(.+)$")


def bicepparam_assignments(env: str) -> dict[str, str]:
    """`param name = <expression>` lines of infra/<env>.bicepparam (one line each here)."""
    assignments: dict[str, str] = {}
    for line in (INFRA / f"{env}.bicepparam").read_text().splitlines():
        match = _PARAM_LINE.match(line.strip())
        if match:
            assignments[match.group(1)] = match.group(2).strip()
    return assignments


def module_config(module: dict[str, Any]) -> dict[str, Any]:
    """A module's config, a conditional module (`= if (...) {...}`) unwrapped."""
    config: dict[str, Any] = module["config"]
    if "condition" in config and "config" in config:
        inner: dict[str, Any] = config["config"]
        return inner
    return config


def module_condition(module: dict[str, Any]) -> Any:
    return module["config"].get("condition")


def accessor(node: Any) -> str:
    """`network.outputs.appSubnetId` from pycep's nested property_accessor operators."""
    if isinstance(node, str):
        return node
    operands = node["operator"]["operands"]
    return f"{accessor(operands['operand_1'])}.{accessor(operands['operand_2'])}"


def when(value: Any, flag: str, on: bool) -> Any:
    """The branch of `flag ? a : b` taken when the bool parameter `flag` is `on`; a value
    that is not such a conditional is returned as is."""
    if isinstance(value, dict) and value.get("operator", {}).get("type") == "conditional":
        operands = value["operator"]["operands"]
        if operands["condition"] == flag:
            return operands["true_value"] if on else operands["false_value"]
    return value
