"""Rules of a plan, in one place: unique keys, known dependencies, no cycles, the order tasks run in,
and which tasks are ready. The planner's output schema (`shared.agents.schemas.Plan`), plan edits and
the team orchestrator all use these.

Order and readiness come from `graphlib` (the standard library's topological sorter); the only
addition here is stability: among tasks that are ready together, plan order wins, so positions and
orchestrations are the same on every run.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from graphlib import CycleError, TopologicalSorter
from typing import Protocol

from shared.domain.errors import Invalid


class PlanItem(Protocol):
    @property
    def key(self) -> str: ...

    @property
    def dependencies(self) -> list[str]: ...


def check_graph(graph: Mapping[str, Sequence[str]]) -> list[str]:
    """The keys in a dependency-respecting order (plan order among equals); raise Invalid when the
    dependencies name unknown or own keys, or form a cycle."""
    for key, dependencies in graph.items():
        unknown = [d for d in dependencies if d not in graph]
        if unknown:
            raise Invalid(f"task {key!r} depends on unknown task(s) {', '.join(unknown)}")
        if key in dependencies:
            raise Invalid(f"task {key!r} depends on itself")
    position = {key: i for i, key in enumerate(graph)}
    sorter: TopologicalSorter[str] = TopologicalSorter({k: list(v) for k, v in graph.items()})
    try:
        sorter.prepare()
    except CycleError as exc:
        raise Invalid("task dependencies form a cycle: " + " -> ".join(exc.args[1])) from None
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=position.__getitem__)
        order.extend(ready)
        sorter.done(*ready)
    return order


def validate_plan(items: Sequence[PlanItem], *, min_tasks: int = 1, max_tasks: int = 12) -> list[str]:
    """Return the keys in a dependency-respecting order; raise Invalid when the plan is unusable."""
    if not min_tasks <= len(items) <= max_tasks:
        raise Invalid(f"a plan has {min_tasks} to {max_tasks} tasks, not {len(items)}")
    keys = [item.key for item in items]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise Invalid(f"task keys must be unique; repeated: {', '.join(duplicates)}")
    return check_graph({item.key: list(item.dependencies) for item in items})


def ready_tasks(dependencies: Mapping[str, Sequence[str]], done: Collection[str],
                excluded: Collection[str] = ()) -> list[str]:
    """Tasks whose dependencies are all done, that are not done and not `excluded` (running, failed),
    in plan order. Dependencies on tasks outside the mapping never become ready."""
    position = {key: i for i, key in enumerate(dependencies)}
    sorter: TopologicalSorter[str] = TopologicalSorter({k: list(v) for k, v in dependencies.items()})
    sorter.prepare()
    ready: list[str] = []
    while sorter.is_active():
        batch = sorter.get_ready()
        if not batch:
            break
        finished = [k for k in batch if k in done]
        ready.extend(k for k in batch if k not in done and k in position and k not in excluded)
        if not finished:
            break
        sorter.done(*finished)
    return sorted(dict.fromkeys(ready), key=position.__getitem__)
