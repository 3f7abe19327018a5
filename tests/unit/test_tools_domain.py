"""Pure rules of tools: the address policy (SSRF), names, cuts, the offline provider's arguments."""

from __future__ import annotations

import pytest

from shared.agents.llm import Message, ToolSpec, wire_name
from shared.agents.offline_tools import arguments_for, citations, offline_tool_calls
from shared.agents.schemas import TaskBrief
from shared.domain.tools import AddressPolicy, cut, reported_cost, split_qualified, unknown_tools

STRICT = AddressPolicy.for_environment("prod")
LOCAL = AddressPolicy.for_environment("local")
TASK = TaskBrief(title="Compare prices", description="d", acceptance_criteria=["c"])


@pytest.mark.parametrize("address", [
    "169.254.169.254", "168.63.129.16", "fd00:ec2::254",  # cloud metadata
    "10.0.0.1", "172.16.5.4", "192.168.1.1", "100.64.0.1", "fc00::1",  # private / shared ranges
    "127.0.0.1", "::1", "::ffff:127.0.0.1", "0.0.0.0", "169.254.10.10", "fe80::1", "224.0.0.1",
])
def test_outside_local_only_public_addresses_are_allowed(address):
    assert STRICT.refusal(address) is not None


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::6810:84e5", "1.1.1.1"])
def test_public_addresses_are_allowed_everywhere(address):
    assert STRICT.refusal(address) is None and LOCAL.refusal(address) is None


def test_locally_loopback_is_allowed_but_private_and_metadata_addresses_never_are():
    assert LOCAL.refusal("127.0.0.1") is None and LOCAL.refusal("::1") is None
    assert LOCAL.refusal("10.1.2.3") and LOCAL.refusal("169.254.169.254")


def test_outside_local_only_https_is_allowed():
    assert STRICT.scheme_refusal("https") is None
    assert STRICT.scheme_refusal("http") and STRICT.scheme_refusal("file") and STRICT.scheme_refusal("gopher")
    assert LOCAL.scheme_refusal("http") is None and LOCAL.scheme_refusal("ftp")


def test_an_allow_list_entry_is_server_dot_tool():
    assert split_qualified("everything.get-sum") == ("everything", "get-sum")
    assert split_qualified("files.read.v2") == ("files", "read.v2")
    for bad in ("nodot", "Upper.tool", ".tool", "server."):
        with pytest.raises(ValueError):
            split_qualified(bad)
    assert unknown_tools(["a.x", "a.y", "b.x"], {"a": ["x"], "b": []}) == ["a.y", "b.x"]


def test_a_long_result_is_cut_with_a_visible_marker():
    assert cut("short", 10) == "short"
    text = cut("x" * 50, 10)
    assert text.startswith("x" * 10) and "10 of 50 characters" in text


def test_wire_names_have_no_dots_and_fit_the_providers_limit():
    assert wire_name("everything.get-sum") == "everything__get-sum"
    assert len(wire_name("s." + "t" * 100)) == 64
    assert ToolSpec("time.get_current_time", "", {}).wire_name == "time__get_current_time"


def test_a_reported_cost_is_read_from_the_results_meta():
    assert reported_cost({"ghost_pirates/cost_usd": "0.25"}) == "0.25"
    assert reported_cost({"cost_usd": 0.5}) == "0.5"
    assert reported_cost({"cost_usd": True}) is None and reported_cost(None) is None


def test_offline_arguments_come_from_the_schema_and_the_task():
    schema = {"type": "object", "required": ["message", "timezone", "count", "mode", "flag"], "properties": {
        "message": {"type": "string"},
        "timezone": {"type": "string", "description": "IANA name (e.g., 'America/New_York', 'Europe/London')"},
        "count": {"type": "integer", "minimum": 3},
        "mode": {"type": "string", "enum": ["fast", "slow"]},
        "flag": {"type": "boolean"},
        "optional": {"type": "string"}}}
    assert arguments_for(schema, TASK) == {"message": "Compare prices", "timezone": "America/New_York",
                                           "count": 3, "mode": "fast", "flag": False}
    calls = offline_tool_calls([ToolSpec("a.x", "", schema), ToolSpec("a.y", "", {})], TASK)
    assert [c.name for c in calls] == ["a.x", "a.y"] and calls[1].arguments == {}


def test_the_offline_step_cites_each_tool_result():
    text = citations([Message("tool", "Echo: hello", tool_call_id="1", name="everything.echo")])
    assert "everything.echo answered: Echo: hello" in text
    assert citations([Message("user", "no tools")]) == ""
