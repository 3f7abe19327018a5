"""The peer baseline (`loadtests.bench_peer`): its team is the issue's, its table judges the targets,
and the LangGraph side runs a small team on the real PostgreSQL with sane figures."""

from __future__ import annotations

import importlib.util

import pytest

from loadtests.bench_peer import GOAL, Figures, peer_rows, render, team_shape
from loadtests.peer_common import SMALL

LANGGRAPH = importlib.util.find_spec("langgraph") is not None and (
    importlib.util.find_spec("langgraph.checkpoint.postgres") is not None)


def test_the_benchmark_goal_plans_the_issues_team_of_34_llm_calls() -> None:
    shape = team_shape(GOAL)
    by_key = {t.key: t for t in shape.tasks}
    roots = [t.key for t in shape.tasks if not t.dependencies]
    fan_out = [t.key for t in shape.tasks if t.dependencies == ("implement",)]
    assert len(shape.tasks) == 7 and len(roots) == 2 and len(fan_out) == 3
    assert by_key["design"].dependencies == tuple(roots) and by_key["implement"].dependencies == ("design",)
    steps = sum(t.steps + t.revise for t in shape.tasks)
    reviews = sum(1 + t.revise for t in shape.tasks)
    assert (steps, reviews, shape.calls) == (23, 9, 34)


def _figures(system: str, overhead: float, rate: float, commits: float, recovery: float, cpu: float) -> Figures:
    return Figures(system, overhead_ms=[overhead, overhead + 1, overhead - 1], cpu_ms=cpu, calls_per_team=34,
                   calls_per_s=[rate], commits_per_team=commits, recovery_s=[recovery], restart_s=[recovery / 2],
                   progress_s=[recovery / 2 + 1], idle_commits_per_s=2.0, team_seconds=overhead * 34 / 1000)


def test_the_peer_table_marks_each_target_and_says_why_one_is_missed() -> None:
    lg = _figures("LangGraph + Postgres", overhead=6.7, rate=148, commits=186, recovery=2.6, cpu=5)
    slow = _figures("Ghost Pirates", overhead=41, rate=35.5, commits=870, recovery=33, cpu=27)
    rows = peer_rows(slow, lg, concurrent=20, crash_teams=5)
    assert [r.met for r in rows] == [False, False, False, False]
    assert all(r.why for r in rows)
    assert rows[0].ratio == "6.12x" and "27.0 ms" in rows[0].why
    assert "lease" in rows[3].why and "up after 16.5 s" in rows[3].why and "first LLM call after 17.5 s" in rows[3].why
    assert "background" in rows[2].why
    lean = _figures("Ghost Pirates", overhead=6, rate=150, commits=170, recovery=4, cpu=4)
    rows = peer_rows(lean, lg, concurrent=20, crash_teams=5)
    assert [r.met for r in rows] == [True, True, True, True] and not any(r.why for r in rows)
    lines = render(rows, lean, lg)
    assert lines[0].startswith("| figure | Ghost Pirates | LangGraph + Postgres |") and len(lines) >= 6
    assert sum(line.endswith("| met |  |") for line in lines) == 4


def test_a_side_that_was_not_measured_is_said_so_not_judged() -> None:
    lg = Figures("LangGraph + Postgres", skipped="langgraph is not installed")
    gp = _figures("Ghost Pirates", overhead=41, rate=35.5, commits=870, recovery=33, cpu=27)
    rows = peer_rows(gp, lg, concurrent=20, crash_teams=5)
    assert [r.met for r in rows] == [None, None, False, False]  # the ratios need both; the absolutes do not
    assert any("not measured: langgraph is not installed" in line for line in render(rows, gp, lg))


@pytest.mark.skipif(not LANGGRAPH, reason="langgraph is bench-only: pip install -r requirements-bench.txt")
async def test_langgraph_runs_a_small_team_with_a_checkpoint_per_step(empty_database_url: str) -> None:
    from loadtests.peer_langgraph import alone

    found = await alone(empty_database_url, SMALL, teams=1)
    assert SMALL.calls == 12
    assert found["llm_calls"] == 2 * SMALL.calls  # the warm-up team and the measured one, each call once
    assert len(found["seconds"]) == 1 and 0 < found["seconds"][0] < 30
    # durability="sync": at least one commit per LLM call (its node's writes), and a checkpoint per
    # superstep, but nowhere near the dozens of a chatty design.
    assert SMALL.calls <= found["commits"] <= 4 * SMALL.calls
    assert found["cpu_seconds"] > 0
