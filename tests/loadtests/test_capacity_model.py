"""The capacity model's arithmetic (docs/capacity.md): what each limit does when the load grows."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from loadtests.capacity_model import Assumptions, MeasuredCosts, plan, render

COSTS = MeasuredCosts.from_json(json.loads((Path(__file__).parents[2] / "loadtests/capacity_costs.json").read_text()))


def test_db_connections_are_every_instance_times_its_pool():
    p = plan(COSTS, users=1_000, teams=100)
    assert p.db_connections == (p.http_instances + p.durable_instances) * Assumptions().db_pool_max


def test_durable_instances_are_capped_by_the_maximum_and_the_shortfall_is_reported():
    p = plan(COSTS, users=10_000, teams=1_000, a=Assumptions(max_instances=40))
    assert p.http_instances + p.durable_instances == 40
    assert p.durable_instances_uncapped > p.durable_instances


def test_raising_activity_concurrency_cuts_the_durable_instances_down_to_the_cpu_bound():
    default = plan(COSTS, users=1_000, teams=100)
    moved = plan(COSTS, users=1_000, teams=100, a=Assumptions(activity_concurrency=32))
    assert moved.durable_instances < default.durable_instances
    cpu_bound = -(-moved.team_cores // (Assumptions().cpu_target * Assumptions().cores_per_instance))
    assert moved.durable_instances >= cpu_bound
    assert sum(moved.monthly.values()) < sum(default.monthly.values())


def test_the_scheduler_moves_to_dedicated_when_consumption_would_pass_80_percent_of_500_actions_per_second():
    per_team_seconds = Assumptions().critical_path_calls * Assumptions().llm_seconds_per_call
    teams_at_limit = int(400 / COSTS.dts_actions_per_team * per_team_seconds)
    assert plan(COSTS, users=100, teams=teams_at_limit - 5).dts_sku == "Consumption"
    assert plan(COSTS, users=100, teams=teams_at_limit + 5).dts_sku == "Dedicated x1"


def test_web_pubsub_units_come_in_the_allowed_steps_at_most_80_percent_full():
    assert [plan(COSTS, users=u, teams=1).webpubsub_units for u in (20, 800, 801, 3_000, 10_000, 90_000)] == [
        1, 1, 2, 5, 20, 100]


def test_every_figure_grows_with_the_load_and_the_tables_render_three_scales():
    small, large = plan(COSTS, users=100, teams=10), plan(COSTS, users=10_000, teams=1_000)
    assert large.instances > small.instances and large.postgres_gb > small.postgres_gb
    assert all(large.monthly[k] >= small.monthly[k] for k in small.monthly)
    lines = render(replace(COSTS))
    assert lines[0].count("running teams") == 3 and any(line.startswith("| **total") for line in lines)
