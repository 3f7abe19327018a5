"""Tools: names, the tool-call lifecycle, limits, prompt truncation, and which addresses a tool server
may have (the SSRF rule). Pure: no I/O."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

#: Server names are short slugs: they prefix tool names in allow-lists (`<server>.<tool>`).
SERVER_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,39}$"
#: What a tool name may be (MCP names: letters, digits, `_`, `-`, `.`, `/`).
TOOL_NAME_PATTERN = r"^[A-Za-z0-9_./-]{1,128}$"
#: One allow-list entry: `<server>.<tool>` (the server name has no dot, so the first dot splits).
QUALIFIED_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,39}\.[A-Za-z0-9_./-]{1,128}$"
_QUALIFIED = re.compile(QUALIFIED_PATTERN)
#: The `_meta` key of every `tools/call` the app sends (API.md "Tools (MCP)").
CALL_ID_META_KEY = "ghost_pirates/call_id"
#: Where a server may report what a call cost, in the result's `_meta` (USD, a decimal string).
COST_META_KEYS = ("ghost_pirates/cost_usd", "cost_usd")
#: How a cut text ends, in storage and in prompts.
CUT_MARKER = "\n[… cut: {shown} of {total} characters shown]"


class ToolCallStatus(StrEnum):
    REQUESTED = "requested"  #: recorded with the step's checkpoint, not started
    AWAITING_APPROVAL = "awaiting_approval"  #: a tool_approval escalation is open
    APPROVED = "approved"  #: a person approved it, not started
    RUNNING = "running"  #: started; a crash retries it with the same call id
    SUCCEEDED = "succeeded"  #: result recorded: never executed again
    FAILED = "failed"  #: the tool's error (or a limit) recorded: the model sees it
    DENIED = "denied"  #: refused by a person or the approval timeout: never executed


FINISHED = frozenset({ToolCallStatus.SUCCEEDED, ToolCallStatus.FAILED, ToolCallStatus.DENIED})
#: Statuses from which the call may be started.
STARTABLE = frozenset({ToolCallStatus.REQUESTED, ToolCallStatus.APPROVED, ToolCallStatus.RUNNING})


def qualified(server: str, tool: str) -> str:
    return f"{server}.{tool}"


def split_qualified(name: str) -> tuple[str, str]:
    """(server, tool) of `<server>.<tool>`; ValueError when it is not one."""
    if not _QUALIFIED.match(name):
        raise ValueError(f"{name!r} is not <server>.<tool> (server: lowercase letters, digits, - and _)")
    server, _, tool = name.partition(".")
    return server, tool


def unknown_tools(requested: Iterable[str], available: Mapping[str, Iterable[str]]) -> list[str]:
    """The allow-list entries that name no tool of the company's servers (`available`: server -> tools)."""
    known = {qualified(server, tool) for server, tools in available.items() for tool in tools}
    return [name for name in requested if name not in known]


@dataclass(frozen=True)
class ToolLimits:
    """Per task: how many calls, how much time in tools, and how much of a result the prompt and
    the database keep."""

    max_calls_per_task: int = 20
    max_seconds_per_task: float = 300.0
    result_prompt_chars: int = 4_000
    result_store_chars: int = 100_000
    max_tool_turns_per_step: int = 3  #: tool rounds within one worker step before it must answer


def cut(text: str, limit: int) -> str:
    """`text` whole when it fits in `limit` characters, else its start and a visible marker."""
    if len(text) <= limit:
        return text
    marker = CUT_MARKER.format(shown=limit, total=len(text))
    return text[: max(0, limit)] + marker


def reported_cost(meta: Mapping[str, Any] | None) -> str | None:
    """The cost a server reported in a result's `_meta`, as the decimal text it sent, if any."""
    if not meta:
        return None
    for key in COST_META_KEYS:
        value = meta.get(key)
        if isinstance(value, int | float | str) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return None


# --- which addresses a tool server may have ---------------------------------------------------------

#: Cloud metadata endpoints (Azure IMDS and wire server, AWS/GCP, Alibaba, Oracle): refused everywhere.
METADATA_ADDRESSES = frozenset({
    ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("168.63.129.16"),
    ipaddress.ip_address("100.100.100.200"), ipaddress.ip_address("192.0.0.192"),
    ipaddress.ip_address("fd00:ec2::254"),
})


@dataclass(frozen=True)
class AddressPolicy:
    """Outside ENVIRONMENT=local/test: `https` only, and only public addresses. Locally loopback (and
    `http`) is allowed for the test servers; private, link-local and metadata addresses never are."""

    allow_loopback: bool = False
    require_https: bool = True

    @classmethod
    def for_environment(cls, environment: str) -> AddressPolicy:
        local = environment in ("local", "test")
        return cls(allow_loopback=local, require_https=not local)

    def refusal(self, address: str) -> str | None:
        """Why a connection to `address` (an IP literal) is refused, or None when it is allowed."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return f"{address!r} is not an IP address"
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip in METADATA_ADDRESSES:
            return f"{ip} is a cloud metadata address"
        if ip.is_loopback:
            return None if self.allow_loopback else f"{ip} is a loopback address"
        if ip.is_link_local:
            return f"{ip} is a link-local address"
        if ip.is_private or ip.is_reserved or ip.is_multicast or ip.is_unspecified or not ip.is_global:
            return f"{ip} is a private or reserved address"
        return None

    def scheme_refusal(self, scheme: str) -> str | None:
        if scheme == "https" or (scheme == "http" and not self.require_https):
            return None
        if scheme == "http":
            return "only https tool servers are allowed here"
        return f"the URL scheme {scheme!r} is not allowed (https only)"
