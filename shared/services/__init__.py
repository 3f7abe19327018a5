"""Use cases of the application, grouped per aggregate; `Services` wires them to one database."""

from __future__ import annotations

from dataclasses import dataclass

from shared.db.database import Database
from shared.services.audit import AuditLog
from shared.services.auth import AuthService
from shared.services.checkpoints import CheckpointManager
from shared.services.control import OrchestrationSettings, RunControl
from shared.services.costs import CostTracker
from shared.services.escalations import EscalationService
from shared.services.events import EventStream
from shared.services.messages import MessageService
from shared.services.signals import SignalDispatcher
from shared.services.tasks import TaskService
from shared.services.teams import TeamService
from shared.services.tool_calls import ToolCallService
from shared.services.tool_servers import ToolServerService, ToolSettings


@dataclass(frozen=True)
class Services:
    db: Database
    teams: TeamService
    tasks: TaskService
    checkpoints: CheckpointManager
    costs: CostTracker
    audit: AuditLog
    escalations: EscalationService
    messages: MessageService
    events: EventStream
    auth: AuthService
    signals: SignalDispatcher
    control: RunControl
    tool_servers: ToolServerService
    tool_calls: ToolCallService

    @classmethod
    def build(
        cls, db: Database, *, manager_model: str = "offline-manager", worker_model: str = "offline-worker",
        orchestration: OrchestrationSettings | None = None, tools: ToolSettings | None = None,
    ) -> Services:
        tool_servers = ToolServerService(db, tools)
        teams = TeamService(db, manager_model=manager_model, worker_model=worker_model, tool_servers=tool_servers)
        tasks = TaskService(db)
        escalations = EscalationService(db)
        signals = SignalDispatcher(db)
        costs = CostTracker(db)
        return cls(
            db=db,
            teams=teams,
            tasks=tasks,
            checkpoints=CheckpointManager(db),
            costs=costs,
            audit=AuditLog(db),
            escalations=escalations,
            messages=MessageService(db),
            events=EventStream(db),
            auth=AuthService(db),
            signals=signals,
            control=RunControl(db, teams=teams, tasks=tasks, escalations=escalations, signals=signals,
                               settings=orchestration),
            tool_servers=tool_servers,
            tool_calls=ToolCallService(db, tool_servers, costs),
        )


__all__ = [
    "AuditLog", "AuthService", "CheckpointManager", "CostTracker", "EscalationService", "EventStream",
    "MessageService", "OrchestrationSettings", "RunControl", "Services", "SignalDispatcher", "TaskService",
    "TeamService", "ToolCallService", "ToolServerService", "ToolSettings",
]
