# mypy: disable-error-code="untyped-decorator"
"""A small Durable app exercising every orchestration shape the backend supports."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from devhost.durable import DurableFunctions
from shared.domain.failures import parse_failure_type

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

#: Attempts per key of the `flaky` activity (the activity runs in the test process).
FLAKY_ATTEMPTS: dict[str, int] = {}


def decode(value: Any) -> Any:
    """Events raised through the Python client arrive as JSON text (SDK issue #295)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


@app.activity_trigger(input_name="name")
def greet(name: str) -> str:
    return f"Hello {name}"


@app.activity_trigger(input_name="n")
async def double(n: int) -> int:
    await asyncio.sleep(0)
    return n * 2


@app.activity_trigger(input_name="seconds")
def slow(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@app.activity_trigger(input_name="key")
def flaky(key: str) -> str:
    FLAKY_ATTEMPTS[key] = FLAKY_ATTEMPTS.get(key, 0) + 1
    if FLAKY_ATTEMPTS[key] < 3:
        raise ConnectionError(f"attempt {FLAKY_ATTEMPTS[key]} failed")
    return f"ok after {FLAKY_ATTEMPTS[key]}"


@app.activity_trigger(input_name="why")
def always_fails(why: str) -> None:
    raise ValueError(why)


#: Released by a test to end the hung sync activity; `HUNG_RETURNS` counts the calls that ended.
RELEASE_HUNG = threading.Event()
HUNG_RETURNS: list[str] = []


@app.activity_trigger(input_name="key", activity="hang")
def hang_forever(key: str) -> str:
    """A sync activity that hangs (until the test releases it): only functionTimeout ends it."""
    RELEASE_HUNG.wait(30)
    HUNG_RETURNS.append(key)
    return f"late {key}"


@app.activity_trigger(input_name="key")
async def hang_async(key: str) -> str:
    await asyncio.sleep(3600)
    return f"late {key}"


class Abort(BaseException):
    """Not an Exception: the SDK's replay machinery does not catch it."""


@app.orchestration_trigger(context_name="context")
def aborting(context: df.DurableOrchestrationContext):
    yield context.call_activity("greet", "before the abort")
    raise Abort("orchestrator aborted the replay")


@app.orchestration_trigger(context_name="context")
def hung_with_retry(context: df.DurableOrchestrationContext):
    """Calls a hung activity with two attempts, catches the timeout, then does more work."""
    activity = context.get_input()
    options = df.RetryOptions(first_retry_interval_in_milliseconds=50, max_number_of_attempts=2)
    try:
        yield context.call_activity_with_retry(activity, options, context.instance_id)
    except Exception as exc:
        after = yield context.call_activity("greet", "after the timeout")
        return {"caught": str(exc).split("\n")[0], "failure_type": parse_failure_type(str(exc)).value,
                "then": after}
    return "not reached"


@app.orchestration_trigger(context_name="context")
def supervise_approval(context: df.DurableOrchestrationContext):
    """A parent that reports how its `approval` child ended."""
    try:
        yield context.call_sub_orchestrator("approval", None, instance_id=f"{context.instance_id}-child")
    except Exception as exc:
        return {"child_failed": str(exc).split("\n")[0]}
    return "child completed"


@app.orchestration_trigger(context_name="context")
def fail_fast(context: df.DurableOrchestrationContext):
    """Fails while a slow call is still running: its completion arrives after the end."""
    yield context.task_all([context.call_activity("always_fails", "fast"), context.call_activity("slow", 0.5)])
    return "not reached"


@app.orchestration_trigger(context_name="context")
def sequence(context: df.DurableOrchestrationContext):
    names = context.get_input() or ["Tokyo", "Seattle", "London"]
    results = []
    for name in names:
        results.append((yield context.call_activity("greet", name)))
    return results


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):
    count = context.get_input()
    doubled = yield context.task_all([context.call_activity("double", n) for n in range(count)])
    return sum(doubled)


@app.orchestration_trigger(context_name="context")
def timer(context: df.DurableOrchestrationContext):
    started = context.current_utc_datetime
    yield context.create_timer(started + timedelta(milliseconds=300))
    return (context.current_utc_datetime - started).total_seconds()


@app.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext):
    context.set_custom_status({"stage": "waiting for approval"})
    decision = yield context.wait_for_external_event("Approve")
    context.set_custom_status({"stage": "decided"})
    return {"approved": decode(decision)}


@app.orchestration_trigger(context_name="context")
def approval_or_timeout(context: df.DurableOrchestrationContext):
    deadline = context.create_timer(context.current_utc_datetime + timedelta(seconds=30))
    event = context.wait_for_external_event("Approve")
    winner = yield context.task_any([event, deadline])
    if winner == event:
        deadline.cancel()
        return "approved"
    return "timed out"


@app.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext):
    first = yield context.call_sub_orchestrator("sequence", ["Ada"])
    second = yield context.call_sub_orchestrator("fan_out", 4, instance_id=f"{context.instance_id}-child")
    return {"sequence": first, "fan_out": second}


@app.orchestration_trigger(context_name="context")
def retrying(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=50, max_number_of_attempts=3)
    result = yield context.call_activity_with_retry("flaky", options, context.instance_id)
    return result


@app.orchestration_trigger(context_name="context")
def retry_exhausted(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=20, max_number_of_attempts=2)
    try:
        yield context.call_activity_with_retry("always_fails", options, "disk full")
    except Exception as exc:
        after = yield context.call_activity("greet", "recovery")
        return {"caught": str(exc).split("\n")[0], "then": after}
    return "not reached"


@app.orchestration_trigger(context_name="context")
def failing(context: df.DurableOrchestrationContext):
    yield context.call_activity("greet", "doomed")
    raise RuntimeError("orchestrator gave up")


@app.orchestration_trigger(context_name="context")
def slow_steps(context: df.DurableOrchestrationContext):
    steps = context.get_input()
    total = 0.0
    for _ in range(steps):
        total += yield context.call_activity("slow", 0.05)
    return round(total, 2)


@app.orchestration_trigger(context_name="context")
def drifting(context: df.DurableOrchestrationContext):
    first = yield context.call_activity("greet", "before")
    yield context.wait_for_external_event("Go")
    second = yield context.call_activity("greet", "after")
    return [first, second]


@app.schedule(schedule="0 0 * * * *", arg_name="timer_info", run_on_startup=False)
@app.durable_client_input(client_name="client")
async def nightly_kickoff(timer_info: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    """A non-HTTP function that starts an orchestration through its client binding."""
    await client.start_new("sequence", "nightly", ["night"])


FUNCTIONS_LIST = app.get_functions()
FUNCTIONS = DurableFunctions.from_functions(FUNCTIONS_LIST)

# The same orchestrator name with different code: what a deploy during a run looks like.
drift_app = df.DFApp()


@drift_app.orchestration_trigger(context_name="context", orchestration="drifting")
def drifting_changed(context: df.DurableOrchestrationContext):
    doubled = yield context.call_activity("double", 21)
    yield context.wait_for_external_event("Go")
    return doubled


DRIFTED = DurableFunctions(
    orchestrators={
        **FUNCTIONS.orchestrators,
        **DurableFunctions.from_functions(drift_app.get_functions()).orchestrators,
    },
    activities=FUNCTIONS.activities,
)
