"""Pydantic models of tools over MCP: the API's schemas (API.md "Tools (MCP)") and the rows behind them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, field_validator

from shared.domain.models import BudgetMoney, Money, Strict
from shared.domain.tools import SERVER_NAME_PATTERN, ToolCallStatus

Approval = Literal["auto", "ask"]
#: Header names a server may be given (RFC 9110 token); values are secrets and never come back.
_HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$"


class ToolServerCreate(Strict):
    name: str = Field(pattern=SERVER_NAME_PATTERN, description="a slug: tools are named <name>.<tool>")
    url: str = Field(min_length=8, max_length=2000, description="the MCP endpoint (streamable HTTP)")
    headers: dict[str, str] | None = Field(default=None, max_length=20,
                                           description="sent with every request (e.g. an API key); never returned")
    approval: Approval = "auto"
    max_cost_usd: Decimal = Field(default=Decimal(0), ge=0, le=10_000, max_digits=12, decimal_places=4,
                                  description="the most one call may cost; held against the team's budget")

    @field_validator("headers")
    @classmethod
    def _header_names(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        import re

        for name, header in (value or {}).items():
            if not re.match(_HEADER_NAME, name):
                raise ValueError(f"{name!r} is not a valid header name")
            if len(header) > 8000 or "\r" in header or "\n" in header:
                raise ValueError(f"header {name!r}: at most 8000 characters, no line breaks")
        return value or None


class ToolPublic(BaseModel):
    name: str
    description: str = ""
    input_schema: dict[str, Any] = {}


class ToolServerPublic(BaseModel):
    id: UUID
    name: str
    url: str
    approval: Approval
    tools: list[ToolPublic]
    status: Literal["ready", "unreachable"]
    header_names: list[str] = Field(default_factory=list, description="the headers it is sent (values hidden)")
    max_cost_usd: BudgetMoney = Decimal(0)
    server_info: dict[str, Any] = {}
    created_at: datetime
    refreshed_at: datetime


class ToolServerRecord(ToolServerPublic):
    company_id: UUID
    secret_ref: str | None = None


class ToolCallPublic(BaseModel):
    id: UUID
    step_number: int
    server: str
    tool: str
    arguments: dict[str, Any]
    status: ToolCallStatus
    result: str | None
    error: str | None
    cost_usd: Money = Decimal(0)
    attempts: int = 0
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None = None
    escalation_id: UUID | None = None


class ToolCallRecord(ToolCallPublic):
    """A call as the services see it: who it belongs to and how it runs."""

    company_id: UUID
    team_id: UUID
    task_id: UUID
    member_id: UUID | None
    position: int
    server_id: UUID | None
    llm_call_id: str
    approval: Approval
    result_chars: int | None = None
    cost_call_id: UUID | None = None
    created_at: datetime


class ToolCallBrief(BaseModel):
    """What an approval escalation shows of its call."""

    id: UUID
    server: str
    tool: str
    arguments: dict[str, Any]
    status: ToolCallStatus
