"""The pure domain: lifecycles, failure policy, prices, plans, ids, settings."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.config import ConfigError, Settings
from shared.domain.costs import compute_cost, price_for
from shared.domain.errors import IllegalTransition, Invalid
from shared.domain.failures import (
    ClassifiedFailure,
    Escalate,
    ExponentialBackoff,
    Fail,
    FailureHandler,
    FailureType,
    Retry,
    parse_failure_type,
)
from shared.domain.ids import uuid7
from shared.domain.models import PlannedTaskIn
from shared.domain.planning import check_graph, ready_tasks, validate_plan
from shared.domain.states import (
    TASK_TRANSITIONS,
    TERMINAL_TASK,
    TERMINAL_TEAM,
    TaskStatus,
    TeamStatus,
    check_task_transition,
    check_team_transition,
)


def test_terminal_states_have_no_way_out():
    assert {TeamStatus.COMPLETED, TeamStatus.FAILED, TeamStatus.CANCELLED} == TERMINAL_TEAM
    assert {TaskStatus.COMPLETED, TaskStatus.FAILED} == TERMINAL_TASK


def test_every_open_task_state_can_fail_or_escalate():
    for status in set(TaskStatus) - TERMINAL_TASK - {TaskStatus.ESCALATED}:
        assert {TaskStatus.FAILED, TaskStatus.ESCALATED} <= TASK_TRANSITIONS[status]


def test_lifecycles_from_api_md_are_allowed():
    for a, b in [("pending", "planning"), ("planning", "active"), ("active", "completed"), ("active", "paused"),
                 ("paused", "active"), ("pending", "cancelled")]:
        check_team_transition(TeamStatus(a), TeamStatus(b))
    for a, b in [("pending", "assigned"), ("assigned", "in_progress"), ("in_progress", "review"),
                 ("review", "completed"), ("review", "revision_requested"), ("revision_requested", "review"),
                 ("revision_requested", "in_progress"), ("escalated", "in_progress"), ("escalated", "completed")]:
        check_task_transition(TaskStatus(a), TaskStatus(b))


def test_illegal_transitions_raise():
    with pytest.raises(IllegalTransition):
        check_team_transition(TeamStatus.COMPLETED, TeamStatus.ACTIVE)
    with pytest.raises(IllegalTransition):
        check_task_transition(TaskStatus.PENDING, TaskStatus.COMPLETED)


def test_network_timeout_is_retried_with_exponential_backoff():
    handler = FailureHandler()
    delays = [handler.decide(FailureType.NETWORK_TIMEOUT, attempt, seed="i").delay for attempt in (1, 2, 3)]
    assert all(isinstance(handler.decide(FailureType.NETWORK_TIMEOUT, a), Retry) for a in (1, 2, 3))
    assert delays[0] < delays[1] < delays[2]
    assert 0.9 <= delays[0] <= 1.1 and 1.8 <= delays[1] <= 2.2


def test_repeated_failures_escalate():
    decision = FailureHandler().decide(FailureType.NETWORK_TIMEOUT, 4)
    assert isinstance(decision, Escalate) and "4 attempts" in decision.reason


def test_auth_failure_fails_at_once():
    assert isinstance(FailureHandler().decide(FailureType.AUTH_FAILED, 1), Fail)


def test_budget_exceeded_escalates_at_once():
    assert isinstance(FailureHandler().decide(FailureType.BUDGET_EXCEEDED, 1), Escalate)


def test_rate_limit_honours_retry_after():
    decision = FailureHandler().decide(FailureType.RATE_LIMITED, 1, retry_after=30)
    assert isinstance(decision, Retry) and decision.delay >= 30


def test_backoff_jitter_is_deterministic_per_seed_and_capped():
    backoff = ExponentialBackoff(base=1, factor=2, max=10, jitter=0.2)
    assert backoff.delay(3, "a") == backoff.delay(3, "a")
    assert backoff.delay(3, "a") != backoff.delay(3, "b")
    assert backoff.delay(30, "a") <= 10


def test_failure_type_survives_the_durable_boundary_as_text():
    error = ClassifiedFailure(FailureType.RATE_LIMITED, "slow down")
    crossed = f"Activity function 'x' failed: ClassifiedFailure: {error} \n {{...}}"
    assert parse_failure_type(crossed) is FailureType.RATE_LIMITED
    assert parse_failure_type("boom") is FailureType.UNKNOWN


def test_a_host_function_timeout_is_a_network_timeout():
    crossed = ("Activity function 'execute_step' failed: Timeout value of 00:10:00 was exceeded by "
               "function: Functions.execute_step \n {...}")
    assert parse_failure_type(crossed) is FailureType.NETWORK_TIMEOUT


def test_cost_uses_the_price_table_and_dated_model_names():
    assert compute_cost("claude-sonnet-4-5", 1_000_000, 1_000_000) == Decimal("18.00000000")
    assert price_for("claude-sonnet-4-5-20250929") == price_for("claude-sonnet-4-5")
    assert compute_cost("unknown-model", 1_000_000, 0) >= compute_cost("gpt-4o", 1_000_000, 0)
    with pytest.raises(ValueError):
        compute_cost("gpt-4o", -1, 0)


def _item(key, deps=()):
    return PlannedTaskIn(key=key, title=key, acceptance_criteria=["ok"], dependencies=list(deps))


def test_plan_order_respects_dependencies_and_rejects_cycles():
    assert validate_plan([_item("b", ["a"]), _item("a")]) == ["a", "b"]
    with pytest.raises(Invalid):
        validate_plan([_item("a", ["b"]), _item("b", ["a"])])
    with pytest.raises(Invalid):
        validate_plan([_item("a", ["zzz"])])
    with pytest.raises(Invalid):
        validate_plan([_item("a"), _item("a")])


def test_ready_tasks_wait_for_their_dependencies():
    deps = {"a": [], "b": ["a"], "c": ["a", "b"]}
    assert ready_tasks(deps, done=set()) == ["a"]
    assert ready_tasks(deps, done={"a"}) == ["b"]
    assert ready_tasks(deps, done={"a", "b"}) == ["c"]
    assert ready_tasks(deps, done={"a", "b", "c"}) == []


def test_ready_tasks_skip_running_and_failed_ones_and_what_waits_on_them():
    deps = {"a": [], "b": [], "c": ["a"], "d": ["b"], "e": ["c", "d"]}
    assert ready_tasks(deps, done=set(), excluded={"a"}) == ["b"]
    assert ready_tasks(deps, done={"a"}, excluded={"b"}) == ["c"]
    assert ready_tasks(deps, done={"a", "b"}) == ["c", "d"]


def test_plan_order_keeps_plan_order_among_tasks_ready_together():
    assert check_graph({"z": [], "y": [], "x": ["z"], "w": []}) == ["z", "y", "w", "x"]


@given(st.dictionaries(st.text("abcdef", min_size=1, max_size=2), st.lists(st.text("abcdef", min_size=1, max_size=2)),
                       max_size=6))
def test_topological_order_is_a_valid_order_or_a_cycle(graph):
    graph = {k: [d for d in v if d in graph and d != k] for k, v in graph.items()}
    try:
        order = check_graph(graph)
    except Invalid:
        return
    position = {k: i for i, k in enumerate(order)}
    assert sorted(order) == sorted(graph)
    assert all(position[d] < position[k] for k, deps in graph.items() for d in deps)


def test_uuid7_is_time_ordered_and_version_7():
    ids = [uuid7() for _ in range(2000)]
    assert ids == sorted(ids)
    assert all(i.version == 7 for i in ids)


def test_unresolved_key_vault_reference_fails_naming_the_setting(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/x/)")
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        Settings()


def test_signing_keys_must_be_long_enough(monkeypatch):
    monkeypatch.setenv("JWT_SIGNING_KEYS", '{"k1": "short"}')
    with pytest.raises(ValueError):
        Settings()


def test_money_is_a_plain_decimal_with_fixed_places_never_exponent_notation():
    from datetime import UTC, datetime
    from uuid import uuid4

    from shared.domain.models import TeamCosts, TeamPublic

    team = TeamPublic(id=uuid4(), company_id=uuid4(), name="n", goal="g", status="pending",
                      budget_usd=Decimal("1.5"), spent_usd=Decimal("0E-8"), workers=1, approve_plan=False,
                      awaiting_plan_approval=False, instance_id=None, created_by=None,
                      created_at=datetime.now(UTC), started_at=None, completed_at=None, result=None, version=1)
    body = json.loads(team.model_dump_json())
    assert body["spent_usd"] == "0.00000000" and body["budget_usd"] == "1.5000"
    costs = TeamCosts(total_usd=Decimal("1E+1"), budget_usd=None, by_model=[], by_member=[])
    assert json.loads(costs.model_dump_json())["total_usd"] == "10.00000000"
