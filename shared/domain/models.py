"""Pydantic models: the API's schemas and the services' return types in one place."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from shared.domain.passwords import MIN_PASSWORD_LENGTH, password_problem
from shared.domain.states import TaskStatus, TeamStatus
from shared.domain.tools import QUALIFIED_PATTERN


def _fixed(places: int) -> PlainSerializer:
    """Money in JSON: a plain decimal string with `places` places (API.md "Money"), never "0E-8"."""
    quantum = Decimal(1).scaleb(-places)
    return PlainSerializer(lambda value: format(Decimal(value).quantize(quantum), "f"), return_type=str,
                           when_used="json")


#: Amounts spent and costs (`numeric(16, 8)`).
Money = Annotated[Decimal, _fixed(8)]
#: Budgets (`numeric(12, 4)`).
BudgetMoney = Annotated[Decimal, _fixed(4)]

ActorType = Literal["user", "agent", "system"]
MemberRole = Literal["manager", "worker"]
#: approve / deny decide a tool call's approval (failure_type "tool_approval"); the others every other kind.
EscalationAction = Literal["retry", "skip", "fail", "provide_input", "approve", "deny"]


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(v) for v in value)
    return False


class Strict(BaseModel):
    """Request bodies: unknown fields are an error, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul_characters(cls, data: Any) -> Any:
        # PostgreSQL text cannot hold U+0000: refuse it here as invalid input, not later as a 500.
        if _contains_nul(data):
            raise ValueError("text must not contain NUL (U+0000) characters")
        return data


# --- auth -----------------------------------------------------------------------------------------


def _acceptable_password(value: str) -> str:
    problem = password_problem(value)
    if problem:
        raise ValueError(f"the password {problem}")
    return value


#: A password being set (registration, change): the rule of shared/domain/passwords.py.
NewPassword = Annotated[str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=256),
                        AfterValidator(_acceptable_password)]


class RegisterRequest(Strict):
    company_name: str = Field(min_length=1, max_length=200)
    email: EmailStr
    password: NewPassword
    full_name: str = Field(min_length=1, max_length=200)


class PasswordChange(Strict):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: NewPassword


class LoginRequest(Strict):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=256)


class UserPublic(BaseModel):
    id: UUID
    company_id: UUID
    email: str
    full_name: str
    role: Literal["admin", "member"]


class TokenResponse(BaseModel):
    token: str
    expires_at: datetime
    user: UserPublic


# --- teams ----------------------------------------------------------------------------------------


class TeamCreate(Strict):
    goal: str = Field(min_length=1, max_length=10_000)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    budget_usd: Decimal | None = Field(default=None, ge=0, le=1_000_000, max_digits=12, decimal_places=4)
    workers: int = Field(default=3, ge=1, le=12)
    approve_plan: bool = False
    auto_start: bool = False
    tools: list[Annotated[str, Field(pattern=QUALIFIED_PATTERN)]] = Field(
        default_factory=list, max_length=100,
        description="the tools its workers may call: <server name>.<tool name> of the company's tool servers")

    @field_validator("tools")
    @classmethod
    def _tools_once_each(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class MemberPublic(BaseModel):
    id: UUID
    team_id: UUID
    role: MemberRole
    name: str
    specialization: str
    model: str
    status: Literal["idle", "busy", "offline"]


class TaskPublic(BaseModel):
    id: UUID
    team_id: UUID
    title: str
    description: str
    acceptance_criteria: list[str]
    dependencies: list[UUID] = []
    specialization: str = "general"
    status: TaskStatus
    assigned_to: UUID | None
    revision_count: int
    max_revisions: int
    feedback: str | None
    output: str | None
    created_at: datetime
    started_at: datetime | None
    completion_time: datetime | None
    version: int


class TaskRecord(TaskPublic):
    """A task as the services see it: the public fields and where it sits in its team's plan."""

    company_id: UUID
    plan_key: str
    position: int


class CostTotals(BaseModel):
    total_usd: Money
    input_tokens: int
    output_tokens: int
    calls: int


class TeamPublic(BaseModel):
    id: UUID
    company_id: UUID
    name: str
    goal: str
    status: TeamStatus
    budget_usd: BudgetMoney | None
    spent_usd: Money
    workers: int
    approve_plan: bool
    awaiting_plan_approval: bool
    instance_id: str | None
    created_by: UUID | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    result: str | None
    version: int
    tools: list[str] = []
    members: list[MemberPublic] | None = None
    tasks: list[TaskPublic] | None = None
    costs: CostTotals | None = None


class TeamScope(BaseModel):
    """Who owns a team and where it stands: what orchestration steps and controls decide on."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    company_id: UUID
    status: TeamStatus
    version: int
    budget_usd: Decimal | None
    spent_usd: Decimal
    reserved_usd: Decimal = Decimal(0)
    instance_id: str | None
    approve_plan: bool
    awaiting_plan_approval: bool
    goal: str = ""
    tools: list[str] = []


class PlannedTaskIn(Strict):
    """A task of a plan, as the planner produced it or a human edited it before approval."""

    key: str = Field(min_length=1, max_length=80)
    title: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=20_000)
    acceptance_criteria: list[str] = Field(min_length=1, max_length=20)
    dependencies: list[str] = Field(default_factory=list, max_length=12)
    specialization: str = Field(default="general", max_length=80)


class PlanApproval(Strict):
    tasks: list[PlannedTaskIn] | None = Field(default=None, min_length=1, max_length=12)


class StartResponse(BaseModel):
    id: UUID
    status: TeamStatus
    instance_id: str | None


# --- tasks, checkpoints, messages, costs ----------------------------------------------------------


class CheckpointPublic(BaseModel):
    step_number: int
    checkpoint_type: str
    step_output: dict[str, Any]
    created_at: datetime


class CheckpointRecord(CheckpointPublic):
    """A checkpoint with the step's bookkeeping (revision round, prompt version, context cuts)."""

    state: dict[str, Any] = {}


class MessagePublic(BaseModel):
    id: UUID
    team_id: UUID
    task_id: UUID | None
    member_id: UUID | None
    sender: str
    kind: str
    content: str
    created_at: datetime


class CostBreakdown(BaseModel):
    key: str
    total_usd: Money
    input_tokens: int
    output_tokens: int
    calls: int


class TeamCosts(BaseModel):
    total_usd: Money
    budget_usd: BudgetMoney | None
    reserved_usd: Money = Decimal(0)
    by_model: list[CostBreakdown]
    by_member: list[CostBreakdown]


# --- audit, escalations, events -------------------------------------------------------------------


class AuditEventPublic(BaseModel):
    id: UUID
    team_id: UUID | None
    task_id: UUID | None
    actor_type: ActorType
    actor_id: str | None
    event_type: str
    payload: dict[str, Any]
    created_at: datetime


class EscalationPublic(BaseModel):
    id: UUID
    team_id: UUID
    task_id: UUID | None
    reason: str
    failure_type: str
    status: Literal["open", "resolved"]
    action: EscalationAction | None = None
    note: str | None = None
    input: str | None = None
    created_at: datetime
    resolved_at: datetime | None = None
    #: For a tool approval: the call waiting for it (tool, arguments), else null.
    tool_call: dict[str, Any] | None = None


class EscalationRecord(EscalationPublic):
    """An escalation with its company and the orchestration instance that waits for the decision."""

    company_id: UUID
    instance_id: str | None = None
    tool_call_id: UUID | None = None


class EscalationResolve(Strict):
    action: EscalationAction
    note: str | None = Field(default=None, max_length=5_000)
    input: str | None = Field(default=None, max_length=50_000)

    @field_validator("input")
    @classmethod
    def _input_not_blank(cls, value: str | None) -> str | None:
        return value if value else None


class TeamEventPublic(BaseModel):
    type: str
    seq: int
    team_id: UUID
    task_id: UUID | None
    at: datetime
    data: dict[str, Any]


class Actor(BaseModel):
    """Who caused a change: recorded on every audit row."""

    model_config = ConfigDict(frozen=True)

    type: ActorType
    id: str | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls(type="system", id="system")


class Principal(BaseModel):
    """The authenticated caller of a request."""

    model_config = ConfigDict(frozen=True)

    user_id: UUID
    company_id: UUID
    role: Literal["admin", "member"] = "member"
    #: The user's token version the token was issued under (a newer one revokes it).
    token_version: int = 1
    #: When the password was last typed for this session (renewals keep it).
    auth_time: datetime | None = None

    @property
    def actor(self) -> Actor:
        return Actor(type="user", id=str(self.user_id))
