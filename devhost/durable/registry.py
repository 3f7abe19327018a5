"""The orchestrators and activities of an app, read from its indexed Functions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from azure.functions.decorators.function_app import Function

ORCHESTRATION_TRIGGER = "orchestrationTrigger"
ACTIVITY_TRIGGER = "activityTrigger"


@dataclass(frozen=True)
class ActivityFunction:
    """An activity: the user function and the name of its trigger parameter."""

    name: str
    func: Callable[..., Any]
    input_name: str
    function_name: str = ""  #: the Functions name (differs from `name` when `activity=` is set)


@dataclass
class DurableFunctions:
    """Orchestrator handles (SDK `Orchestrator.create` results) and activities, by durable name."""

    orchestrators: dict[str, Callable[..., Any]] = field(default_factory=dict)
    activities: dict[str, ActivityFunction] = field(default_factory=dict)

    @classmethod
    def from_functions(cls, functions: list[Function]) -> DurableFunctions:
        """Index the result of `FunctionApp.get_functions()` (callable only once per app).

        The durable name is the trigger's `orchestration`/`activity` property when set, else the
        function name, as the Durable extension does.
        """
        found = cls()
        for function in functions:
            trigger = function.get_trigger()
            if trigger is None:
                continue
            binding = trigger.get_dict_repr()
            kind = binding.get("type")
            if kind == ORCHESTRATION_TRIGGER:
                name = str(binding.get("orchestration") or function.get_function_name())
                found.orchestrators[name] = function.get_user_function()
            elif kind == ACTIVITY_TRIGGER:
                name = str(binding.get("activity") or function.get_function_name())
                found.activities[name] = ActivityFunction(
                    name=name, func=function.get_user_function(), input_name=str(binding["name"]),
                    function_name=function.get_function_name() or name,
                )
        return found
