"""Running one orchestrator episode through the SDK's own replay code and reading its reply.

Protocol: ../../shared/protocols/DURABLE_BACKEND.md §1-§2. The context announces replay schemas
V2/V3 and omits the long-timer durations, so timers are never split.

Sessions (the host's "extended sessions"): after an episode, the SDK's executor and context,
with the orchestrator's generator suspended in them, are exactly what a replay of the stored
history would rebuild, so the next episode of the instance feeds them only its new events
instead of replaying the whole history: the episode's cost no longer grows with the history.
The SDK offers no public call for that, so `continue_session` drives the executor method
`TaskOrchestrationExecutor.execute` drives (`process_event` per event, as for events past the
last OrchestratorStarted), and reads the reply from the executor and context as
`get_orchestrator_state_str` does, except that it converts only the actions added in this
episode: the SDK's reply lists every action since the execution started, and serialising,
parsing and comparing that list was what still grew with the history. The recorded prefix needs
no non-determinism check (it is the very objects recorded); cancelled timers are found through
the session's open timer actions. A session is only ever used for the next episode of the
history it was built from (the worker's cache checks the execution and history length) and is
dropped when that episode is not committed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from azure.durable_functions.models.DurableOrchestrationContext import DurableOrchestrationContext
from azure.durable_functions.models.history.HistoryEvent import HistoryEvent
from azure.durable_functions.models.TaskOrchestrationExecutor import TaskOrchestrationExecutor
from azure.durable_functions.orchestrator import Orchestrator

FAILURE_LABEL = "\n\n$OutOfProcData$:"

#: actionType values (SDK `ActionType`).
CALL_ACTIVITY = 0
CALL_ACTIVITY_WITH_RETRY = 1
CALL_SUB_ORCHESTRATOR = 2
CALL_SUB_ORCHESTRATOR_WITH_RETRY = 3
CONTINUE_AS_NEW = 4
CREATE_TIMER = 5
WAIT_FOR_EXTERNAL_EVENT = 6
CALL_ENTITY = 7
CALL_HTTP = 8
SIGNAL_ENTITY = 9
WHEN_ANY = 11
WHEN_ALL = 12

SUPPORTED_ACTIONS = frozenset(
    {
        CALL_ACTIVITY,
        CALL_ACTIVITY_WITH_RETRY,
        CALL_SUB_ORCHESTRATOR,
        CALL_SUB_ORCHESTRATOR_WITH_RETRY,
        CONTINUE_AS_NEW,
        CREATE_TIMER,
        WAIT_FOR_EXTERNAL_EVENT,
    }
)
ACTION_NAMES = {
    CALL_ACTIVITY: "CallActivity",
    CALL_ACTIVITY_WITH_RETRY: "CallActivityWithRetry",
    CALL_SUB_ORCHESTRATOR: "CallSubOrchestrator",
    CALL_SUB_ORCHESTRATOR_WITH_RETRY: "CallSubOrchestratorWithRetry",
    CONTINUE_AS_NEW: "ContinueAsNew",
    CREATE_TIMER: "CreateTimer",
    WAIT_FOR_EXTERNAL_EVENT: "WaitForExternalEvent",
    CALL_ENTITY: "CallEntity",
    CALL_HTTP: "CallHttp",
    SIGNAL_ENTITY: "SignalEntity",
}


@dataclass(frozen=True)
class Reply:
    """What one replay produced: the cumulative atomic actions, and how the execution stands."""

    actions: list[dict[str, Any]]
    done: bool
    output: Any = None
    custom_status: Any = None
    error: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    #: None: `actions` is the cumulative list. From a session: how many actions were recorded
    #: before, and `actions` are only the new ones.
    base: int | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


def build_context(
    *,
    instance_id: str,
    parent_instance_id: str | None,
    raw_input: str | None,
    history: Sequence[str],
) -> str:
    """The orchestration trigger's JSON, built by concatenation: history items are JSON texts."""
    head = {
        "instanceId": instance_id,
        "isReplaying": False,
        "parentInstanceId": parent_instance_id,
        # ExecutionStarted.Input is JSON text; the host hands the SDK its parsed value.
        "input": json.loads(raw_input) if raw_input else None,
        "upperSchemaVersion": 1,
        "upperSchemaVersionNew": 2,
    }
    return '{"history":[' + ",".join(history) + "]," + json.dumps(head)[1:]


@dataclass
class Session:
    """A live orchestration between episodes: the SDK's executor and context after the last one.

    `seen`: how many top-level actions of the context were already read (the rest are new);
    `recorded`: how many atomic actions those were; `timers`: the timer actions by task id, to
    see cancellations (the decider registers them as it gives them ids).
    """

    executor: TaskOrchestrationExecutor
    context: DurableOrchestrationContext
    seen: int = 0
    recorded: int = 0
    timers: dict[int, Any] = field(default_factory=dict)
    new_objects: list[Any] = field(default_factory=list)  #: the last episode's new atomic actions

    def canceled(self, timer_id: int) -> bool:
        action = self.timers.get(timer_id)
        return bool(action is not None and action.is_cancelled)

    def note_timer(self, index: int, timer_id: int) -> None:
        """Action `index` of the last reply's `actions` is the open timer `timer_id`."""
        self.timers[timer_id] = self.new_objects[index]


def start_session(handle: Callable[[str], str], context_json: str) -> tuple[Reply, Session | None]:
    """Replay the whole history, as the SDK handle does; keep the session if the orchestration
    goes on (a handle that is not the SDK's `Orchestrator.create` result gets none)."""
    fn = getattr(handle, "orchestrator_function", None)
    if fn is None:
        return run_orchestrator(handle, context_json), None
    # what the handle does (orchestrator.py `Orchestrator.create`), keeping the objects
    context = DurableOrchestrationContext.from_json(context_json)
    context._input_expected_type = getattr(handle, "_df_input_type", None)
    orchestrator = Orchestrator(fn)
    reply = run_orchestrator(lambda _: orchestrator.handle(context), context_json)
    if reply.done or reply.failed:
        return reply, None
    context._histories = []  # read only by the replay above: free it
    session = Session(orchestrator.task_orchestration_executor, context)
    session.new_objects = _new_objects(session)  # all of them: they align with `reply.actions`
    return reply, session


def _new_objects(session: Session) -> list[Any]:
    """The atomic action objects added since the session was last read (depth-first)."""
    top = session.context._action_payload_v2  # schema V2+: the context announces it
    added = list(flatten_objects(top[session.seen:]))
    session.seen = len(top)
    session.recorded += len(added)
    return added


def flatten_objects(actions: Sequence[Any]) -> Iterator[Any]:
    """`flatten` for the SDK's action objects."""
    for action in actions:
        if action.action_type in (WHEN_ALL, WHEN_ANY):
            yield from flatten_objects(action.compound_tasks)
        else:
            yield action


def continue_session(session: Session, new_events: Sequence[str]) -> Reply:
    """Run one episode's new events (JSON texts, OrchestratorStarted first) in a live session;
    the reply's actions are only the new ones (`base` = how many were recorded before)."""
    executor, context = session.executor, session.context
    base = session.recorded
    try:
        events = [HistoryEvent(**json.loads(text)) for text in new_events]
        executor._is_processing_new_events = True  # as execute() past the last OrchestratorStarted
        for item in events:
            executor.process_event(item)
            if executor.has_execution_completed:
                break
        # what get_orchestrator_state_str() checks and reports, for the new actions only
        if executor.output is not None:
            try:
                json.dumps(executor.output)
            except Exception as exc:  # the SDK's own rule: an unserialisable output fails
                executor.output, executor.exception = None, exc
        objects = _new_objects(session)
        session.new_objects = objects
        actions = json.loads(json.dumps([a.to_json() for a in objects]))
        output = json.loads(json.dumps(executor.output))
        custom = context.custom_status
        custom = json.loads(json.dumps(custom)) if custom else None
    except Exception as exc:  # the SDK's machinery itself failed: like a handle raising without state
        return _reply({}, error=str(exc) or type(exc).__name__)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # as in run_orchestrator: the instance fails, the worker's lane lives on
        return _reply({}, error=f"{type(exc).__name__}: {exc}")
    failure = executor.exception
    error = None if failure is None else (str(failure) or "Exception")
    return Reply(
        actions=actions, done=bool(executor.orchestration_invocation_succeeded) and error is None,
        output=output, custom_status=custom, error=error, raw={"session": True}, base=base,
    )


def run_orchestrator(handle: Callable[[str], str], context_json: str) -> Reply:
    """Call the SDK handle; it returns the state JSON, or raises with the state after a label."""
    try:
        state_text = handle(context_json)
    except Exception as exc:  # the SDK's only failure channel: an exception carrying the state
        message = str(exc)
        error, found, state_part = message.partition(FAILURE_LABEL)
        state = json.loads(state_part) if found else {}
        return _reply(state, error=error or type(exc).__name__)
    except KeyboardInterrupt:  # Ctrl-C while replaying belongs to the process
        raise
    except BaseException as exc:
        # Orchestrator code raising a BaseException (SystemExit, a custom one), which the SDK's
        # replay loop does not catch, fails its instance instead of unwinding the worker. The
        # call is synchronous, so nothing raised here is a cancellation of the episode itself.
        return _reply({}, error=f"{type(exc).__name__}: {exc}")
    return _reply(json.loads(state_text), error=None)


def _reply(state: dict[str, Any], *, error: str | None) -> Reply:
    groups = state.get("actions") or []
    return Reply(
        actions=list(flatten(groups)),
        done=bool(state.get("isDone")) and error is None,
        output=state.get("output"),
        custom_status=state.get("customStatus"),
        error=error,
        raw=state,
    )


def flatten(actions: Any) -> Iterator[dict[str, Any]]:
    """Atomic actions depth-first, the order in which the SDK allocates sequence numbers."""
    if isinstance(actions, list):
        for item in actions:
            yield from flatten(item)
    elif isinstance(actions, dict):
        if actions.get("actionType") in (WHEN_ALL, WHEN_ANY):
            yield from flatten(actions.get("compoundActions") or [])
        else:
            yield actions


def signature(action: dict[str, Any]) -> list[Any]:
    """What must not change between replays: the kind of action and what it targets."""
    kind = int(action["actionType"])
    if kind == WAIT_FOR_EXTERNAL_EVENT:
        return [kind, action.get("externalEventName")]
    if kind in (CALL_SUB_ORCHESTRATOR, CALL_SUB_ORCHESTRATOR_WITH_RETRY):
        return [kind, action.get("functionName"), action.get("instanceId")]
    return [kind, action.get("functionName")]


def describe(sig: Sequence[Any]) -> str:
    """Human text for a signature, used in the non-determinism failure reason."""
    kind = int(sig[0])
    label = ACTION_NAMES.get(kind, f"action type {kind}")
    return f"{label} '{sig[1]}'" if len(sig) > 1 and sig[1] else label


def consumes_sequence_number(kind: int) -> bool:
    """Every atomic action but WaitForExternalEvent takes the next EventId (protocol §3)."""
    return kind != WAIT_FOR_EXTERNAL_EVENT
