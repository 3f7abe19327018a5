"""A company's MCP tool servers: register (after `initialize` + `tools/list`), refresh, list, delete,
and which of their tools a team's allow-list gives its workers."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID

from shared.agents.llm import ToolSpec
from shared.db import journal
from shared.db.database import Database, Tx
from shared.db.repositories import tools as repo
from shared.domain.errors import Conflict, Forbidden, Invalid, NotFound
from shared.domain.ids import uuid7
from shared.domain.models import Principal
from shared.domain.tool_models import ToolServerCreate, ToolServerPublic, ToolServerRecord
from shared.domain.tools import AddressPolicy, ToolLimits, qualified, unknown_tools
from shared.tools.mcp_client import McpConnector, ServerListing, ToolServerError, ToolTimeouts
from shared.tools.secrets import SecretStore, SecretUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ToolSettings:
    """How tools are reached and bounded (from the settings; the strict address policy by default)."""

    policy: AddressPolicy = field(default_factory=AddressPolicy)
    timeouts: ToolTimeouts = field(default_factory=ToolTimeouts)
    limits: ToolLimits = field(default_factory=ToolLimits)
    secrets: SecretStore | None = None
    connector: McpConnector | None = field(default=None, compare=False)

    def build_connector(self) -> McpConnector:
        return self.connector or McpConnector(self.policy, timeouts=self.timeouts)


@dataclass(frozen=True)
class TeamTool:
    """One tool a team may call: how the model sees it, and where it is served."""

    spec: ToolSpec
    server: ToolServerRecord
    tool: str


def _public(record: ToolServerRecord) -> ToolServerPublic:
    return ToolServerPublic.model_validate(record.model_dump(exclude={"company_id", "secret_ref"}))


def _tools_json(listing: ServerListing) -> list[dict[str, object]]:
    return [{"name": t.name, "description": t.description, "input_schema": t.input_schema} for t in listing.tools]


class ToolServerService:
    def __init__(self, db: Database, settings: ToolSettings | None = None) -> None:
        self.db = db
        self.settings = settings or ToolSettings()
        self.connector = self.settings.build_connector()
        self.secrets = self.settings.secrets

    @staticmethod
    def _require_admin(principal: Principal) -> None:
        if principal.role != "admin":
            raise Forbidden("only an admin of the company manages its tool servers")

    async def _listing(self, url: str, headers: dict[str, str]) -> ServerListing:
        try:
            return await self.connector.list_tools(url, headers)
        except ToolServerError as exc:
            raise Invalid(f"the tool server cannot be used: {exc}") from None

    async def register(self, principal: Principal, body: ToolServerCreate) -> ToolServerPublic:
        """Registered only after a successful `initialize` + `tools/list`; its headers go to the secret store."""
        self._require_admin(principal)
        async with self.db.connection() as conn:
            if await repo.server_by_name(conn, principal.company_id, body.name) is not None:
                raise Conflict(f"the company already has a tool server named {body.name!r}")
        headers = body.headers or {}
        if headers and self.secrets is None:
            raise Invalid("this deployment has no store for tool header secrets"
                          " (set TOOL_SECRETS_KEY or TOOL_VAULT_URL)")
        listing = await self._listing(body.url, headers)
        server_id = uuid7()
        secret_ref = await self.secrets.put(server_id, headers) if headers and self.secrets else None

        async def work(tx: Tx) -> ToolServerRecord | None:
            created = await repo.insert_server(
                tx.conn, id=server_id, company_id=principal.company_id, name=body.name, url=body.url,
                approval=body.approval, header_names=sorted(headers), secret_ref=secret_ref,
                tools=_tools_json(listing), server_info=listing.server_info, max_cost_usd=body.max_cost_usd,
                created_by=principal.user_id)
            if created is not None:
                await journal.audit(tx, company_id=principal.company_id, actor=principal.actor,
                                    event_type="tool_server.registered",
                                    payload={"id": str(server_id), "name": body.name, "url": body.url,
                                             "approval": body.approval, "tools": [t.name for t in listing.tools],
                                             "header_names": sorted(headers)})
            return created

        created = await self.db.atomic(work)
        if created is None:
            if secret_ref and self.secrets:
                await self.secrets.delete(secret_ref)
            raise Conflict(f"the company already has a tool server named {body.name!r}")
        return _public(created)

    async def list_for(self, company_id: UUID) -> list[ToolServerPublic]:
        async with self.db.connection() as conn:
            return [_public(s) for s in await repo.servers(conn, company_id)]

    async def refresh(self, principal: Principal, server_id: UUID) -> ToolServerPublic:
        """`initialize` + `tools/list` again; a server that cannot be reached is marked `unreachable`."""
        self._require_admin(principal)
        server = await self._get(principal.company_id, server_id)
        try:
            listing = await self.connector.list_tools(server.url, await self.headers(server))
        except ToolServerError as exc:
            log.warning("tool server refresh failed: %s", exc, extra={"tool_server": server.name})
            tools, info, status = [t.model_dump() for t in server.tools], server.server_info, "unreachable"
        else:
            tools, info, status = _tools_json(listing), listing.server_info, "ready"

        async def work(tx: Tx) -> ToolServerRecord | None:
            updated = await repo.update_listing(tx.conn, server_id, principal.company_id, tools=tools,
                                                server_info=info, status=status)
            if updated is not None:
                await journal.audit(tx, company_id=principal.company_id, actor=principal.actor,
                                    event_type="tool_server.refreshed",
                                    payload={"id": str(server_id), "status": status,
                                             "tools": [t["name"] for t in tools]})
            return updated

        updated = await self.db.atomic(work)
        if updated is None:
            raise NotFound("tool server not found")
        return _public(updated)

    async def delete(self, principal: Principal, server_id: UUID) -> None:
        self._require_admin(principal)

        async def work(tx: Tx) -> ToolServerRecord | None:
            removed = await repo.delete_server(tx.conn, server_id, principal.company_id)
            if removed is not None:
                await journal.audit(tx, company_id=principal.company_id, actor=principal.actor,
                                    event_type="tool_server.deleted",
                                    payload={"id": str(server_id), "name": removed.name})
            return removed

        removed = await self.db.atomic(work)
        if removed is None:
            raise NotFound("tool server not found")
        if removed.secret_ref and self.secrets:
            try:
                await self.secrets.delete(removed.secret_ref)
            except SecretUnavailable:
                log.warning("the deleted tool server's secret could not be removed",
                            extra={"tool_server": removed.name})

    async def _get(self, company_id: UUID, server_id: UUID) -> ToolServerRecord:
        async with self.db.connection() as conn:
            server = await repo.server(conn, server_id, company_id)
        if server is None:
            raise NotFound("tool server not found")
        return server

    async def headers(self, server: ToolServerRecord) -> dict[str, str]:
        """The server's headers, read from the secret store (never logged)."""
        if not server.secret_ref:
            return {}
        if self.secrets is None:
            raise SecretUnavailable("no secret store is configured")
        return await self.secrets.get(server.secret_ref)

    async def check_allow_list(self, tx: Tx, company_id: UUID, names: Sequence[str]) -> None:
        """Invalid (422) when an allow-list entry names no tool of the company's servers."""
        if not names:
            return
        available = {s.name: [t.name for t in s.tools] for s in await repo.servers(tx.conn, company_id)}
        missing = unknown_tools(names, available)
        if missing:
            raise Invalid("tools: no registered tool server offers " + ", ".join(missing),
                          errors=[{"loc": ["body", "tools"], "msg": f"unknown tool {name!r}"} for name in missing])

    async def team_tools(self, company_id: UUID, names: Sequence[str]) -> list[TeamTool]:
        """The allowed tools that the company's servers still offer, in allow-list order."""
        if not names:
            return []
        async with self.db.connection() as conn:
            servers = {s.name: s for s in await repo.servers(conn, company_id)}
        found: list[TeamTool] = []
        for name in names:
            server_name, _, tool_name = name.partition(".")
            server = servers.get(server_name)
            tool = next((t for t in server.tools if t.name == tool_name), None) if server else None
            if server is None or tool is None:
                continue
            spec = ToolSpec(name=qualified(server.name, tool.name), description=tool.description,
                            input_schema=tool.input_schema or {"type": "object", "properties": {}})
            found.append(TeamTool(spec=spec, server=server, tool=tool.name))
        return found
