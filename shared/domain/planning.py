"""Rules a plan must satisfy before it is persisted: unique keys, known dependencies, no cycles."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from shared.domain.errors import Invalid


class PlanItem(Protocol):
    @property
    def key(self) -> str: ...

    @property
    def dependencies(self) -> list[str]: ...


def validate_plan(items: Sequence[PlanItem], *, min_tasks: int = 1, max_tasks: int = 12) -> list[str]:
    """Return the keys in a dependency-respecting order; raise Invalid when the plan is unusable."""
    if not min_tasks <= len(items) <= max_tasks:
        raise Invalid(f"a plan has {min_tasks} to {max_tasks} tasks, not {len(items)}")
    keys = [item.key for item in items]
    if len(set(keys)) != len(keys):
        raise Invalid("task keys must be unique")
    known = set(keys)
    for item in items:
        unknown = [d for d in item.dependencies if d not in known]
        if unknown:
            raise Invalid(f"task {item.key!r} depends on unknown task(s) {', '.join(unknown)}")
        if item.key in item.dependencies:
            raise Invalid(f"task {item.key!r} depends on itself")
    return topological_order({item.key: list(item.dependencies) for item in items})


def topological_order(graph: dict[str, list[str]]) -> list[str]:
    """Kahn's algorithm, stable in the given order; raises Invalid on a cycle."""
    remaining = {k: set(v) for k, v in graph.items()}
    order: list[str] = []
    while remaining:
        ready = [k for k in graph if k in remaining and not remaining[k]]
        if not ready:
            raise Invalid("task dependencies form a cycle: " + ", ".join(sorted(remaining)))
        for key in ready:
            order.append(key)
            del remaining[key]
        for deps in remaining.values():
            deps.difference_update(ready)
    return order


def ready_tasks(dependencies: dict[str, list[str]], done: set[str], started: set[str]) -> list[str]:
    """Tasks whose dependencies are all done and that have not been started, in plan order."""
    return [k for k, deps in dependencies.items() if k not in started and all(d in done for d in deps)]
