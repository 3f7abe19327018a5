"""A scripted stand-in for the Durable orchestration context, driven by the SDK's own
`orchestrator_generator_wrapper` (the replay loop that sends results and throws failures back)."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.durable_functions.testing import orchestrator_generator_wrapper

PENDING = object()


class FakeTask:
    def __init__(self, kind: str, name: str, value: Any = PENDING, error: Exception | None = None) -> None:
        self.kind = kind
        self.name = name
        self._value = value
        self._error = error
        self.cancelled = False

    @property
    def ready(self) -> bool:
        return self._error is not None or self._value is not PENDING

    @property
    def result(self) -> Any:
        if self._error is not None:
            raise self._error
        return None if self._value is PENDING else self._value

    def cancel(self) -> None:
        self.cancelled = True


class FakeContext:
    """Activities answer from `activities[name](payload)` (raise to fail); events are queued per name and
    delivered when waited for; timers fire at once (so an un-queued event times out)."""

    def __init__(self, input_: dict[str, Any], activities: dict[str, Callable[[dict[str, Any]], Any]],
                 *, sub_orchestrators: Callable[[str, dict[str, Any]], Any] | None = None,
                 events: dict[str, list[Any]] | None = None, instance_id: str = "inst-1") -> None:
        self._input = input_
        self.activities = activities
        self.sub_orchestrators = sub_orchestrators
        self.events: dict[str, deque[Any]] = defaultdict(deque, {k: deque(v) for k, v in (events or {}).items()})
        self.instance_id = instance_id
        self.current_utc_datetime = datetime(2026, 1, 1, tzinfo=UTC)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.timers: list[float] = []
        self.sub_calls: list[dict[str, Any]] = []
        self.custom_status: Any = None

    def get_input(self) -> Any:
        return self._input

    def set_custom_status(self, status: Any) -> None:
        self.custom_status = status

    def call_activity(self, name: str, payload: dict[str, Any]) -> FakeTask:
        self.calls.append((name, payload))
        try:
            return FakeTask("activity", name, self.activities[name](payload))
        except Exception as exc:
            return FakeTask("activity", name, error=exc)

    def call_sub_orchestrator(self, name: str, payload: dict[str, Any], instance_id: str | None = None) -> FakeTask:
        self.sub_calls.append({**payload, "instance_id": instance_id})
        assert self.sub_orchestrators is not None
        return FakeTask("sub", name, self.sub_orchestrators(name, payload))

    def create_timer(self, fire_at: datetime) -> FakeTask:
        self.timers.append((fire_at - self.current_utc_datetime).total_seconds())
        self.current_utc_datetime = max(self.current_utc_datetime, fire_at) + timedelta(milliseconds=1)
        return FakeTask("timer", "timer", None)

    def wait_for_external_event(self, name: str) -> FakeTask:
        if self.events[name]:
            return FakeTask("event", name, self.events[name].popleft())
        return FakeTask("event", name)

    def task_any(self, tasks: list[FakeTask]) -> FakeTask:
        winner = next((t for t in tasks if t.ready), None)
        assert winner is not None, "the orchestrator would wait forever"
        return FakeTask("any", "any", winner)

    def activity_names(self) -> list[str]:
        return [name for name, _ in self.calls]


def run(orchestrator: Any, context: FakeContext) -> Any:
    """Drive the orchestrator to completion and return its output."""
    user_function = getattr(orchestrator, "_function", None) or orchestrator
    steps = list(orchestrator_generator_wrapper(user_function(context)))
    return steps[-1]
