"""Running one activity call the way the Functions host does, and encoding its completion."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import traceback
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import datetime, timedelta
from typing import Any

from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

from devhost.timespan import format_timespan

from .history import EventType, as_new, event, utc_now
from .registry import ActivityFunction
from .store import ClaimedActivity

RPC_EXCEPTION = "Microsoft.Azure.WebJobs.Script.Workers.Rpc.RpcException"
FUNCTION_TIMEOUT_EXCEPTION = "Microsoft.Azure.WebJobs.Host.FunctionTimeoutException"


async def run_activity(
    activity: ActivityFunction | None,
    claim: ClaimedActivity,
    executor: Executor,
    now: Callable[[], datetime] = utc_now,
) -> str:
    """Run the call and return its TaskCompleted/TaskFailed event (JSON text) for the inbox.

    Async functions run on the loop; sync ones in `executor` so they never block it. `now`
    stamps the event (the backend passes the database's clock).
    """
    if activity is None:
        reason = (
            f"The function '{claim.name}' doesn't exist, is disabled, or is not an activity function."
        )
        details = {"ClassName": "System.InvalidOperationException", "Message": reason}
        return _failed(claim, reason, details, now())
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
        return _failed(claim, f"Activity function '{claim.name}' failed: {message}", details, now())
    completed = event(EventType.TASK_COMPLETED, now(), TaskScheduledId=claim.task_id, Result=encoded)
    return as_new(completed)


def timed_out(
    activity: ActivityFunction | None, claim: ClaimedActivity, timeout: float, moment: datetime
) -> str:
    """The TaskFailed the host records when an activity exceeds `functionTimeout`.

    The WebJobs executor throws `FunctionTimeoutException("Timeout value of {TimeSpan} was
    exceeded by function: Functions.{name}")`; the Durable extension's TaskActivityShim reports
    it like any activity failure: `Activity function '{activity}' failed: {message}`.
    """
    function_name = (activity.function_name if activity else "") or claim.name
    message = (
        f"Timeout value of {format_timespan(timedelta(seconds=timeout))} was exceeded by function: "
        f"Functions.{function_name}"
    )
    details = {"ClassName": FUNCTION_TIMEOUT_EXCEPTION, "Message": message}
    return _failed(claim, f"Activity function '{claim.name}' failed: {message}", details, moment)


def _decode_input(raw: str | None) -> Any:
    """The host hands the activity `df_loads` of the action's JSON input (protocol §4)."""
    if raw is None:
        return None
    return ActivityTriggerConverter.decode(meta.Datum(raw, "string"), trigger_metadata=None)


def _failed(claim: ClaimedActivity, reason: str, details: dict[str, Any], moment: datetime) -> str:
    failed = event(
        EventType.TASK_FAILED, moment, TaskScheduledId=claim.task_id, Reason=reason,
        Details=json.dumps(details),
    )
    return as_new(failed)
