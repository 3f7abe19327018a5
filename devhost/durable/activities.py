"""Running one activity call the way the Functions host does, and encoding its completion."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import traceback
from concurrent.futures import Executor
from typing import Any

from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

from .history import EventType, as_new, event, utc_now
from .registry import ActivityFunction
from .store import ClaimedActivity

RPC_EXCEPTION = "Microsoft.Azure.WebJobs.Script.Workers.Rpc.RpcException"


async def run_activity(
    activity: ActivityFunction | None, claim: ClaimedActivity, executor: Executor
) -> str:
    """Run the call and return its TaskCompleted/TaskFailed event (JSON text) for the inbox.

    Async functions run on the loop; sync ones in `executor` so they never block it.
    """
    if activity is None:
        reason = (
            f"The function '{claim.name}' doesn't exist, is disabled, or is not an activity function."
        )
        return _failed(claim, reason, {"ClassName": "System.InvalidOperationException", "Message": reason})
    try:
        value = _decode_input(claim.input)
        call = functools.partial(activity.func, **{activity.input_name: value})
        if inspect.iscoroutinefunction(activity.func):
            result = await call()
        else:
            result = await asyncio.get_running_loop().run_in_executor(executor, call)
        encoded = ActivityTriggerConverter.encode(result, expected_type=None).value
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # an activity failure is data for the orchestrator, not a crash
        message = f"{type(exc).__name__}: {exc}"
        details = {
            "ClassName": RPC_EXCEPTION,
            "Message": message,
            "StackTraceString": "".join(traceback.format_exception(exc)),
        }
        return _failed(claim, f"Activity function '{claim.name}' failed: {message}", details)
    completed = event(EventType.TASK_COMPLETED, utc_now(), TaskScheduledId=claim.task_id, Result=encoded)
    return as_new(completed)


def _decode_input(raw: str | None) -> Any:
    """The host hands the activity `df_loads` of the action's JSON input (protocol §4)."""
    if raw is None:
        return None
    return ActivityTriggerConverter.decode(meta.Datum(raw, "string"), trigger_metadata=None)


def _failed(claim: ClaimedActivity, reason: str, details: dict[str, Any]) -> str:
    failed = event(
        EventType.TASK_FAILED, utc_now(), TaskScheduledId=claim.task_id, Reason=reason,
        Details=json.dumps(details),
    )
    return as_new(failed)
