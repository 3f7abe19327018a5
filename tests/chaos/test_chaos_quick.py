"""`make chaos-quick` as a test: a few teams through a real devhost while each fault lands once
(PostgreSQL crash, devhost SIGKILL, Redis and Web PubSub emulator down, model 429/500/garbage), and
every invariant of `loadtests.chaos` holds at the end."""

from __future__ import annotations

import shutil

import pytest

from loadtests import chaos

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server on PATH")]


async def test_teams_end_completed_or_escalated_with_exact_books_under_every_fault() -> None:
    report = await chaos.run(chaos.QUICK)
    print(report.render())

    assert report.ok, report.render()
    injected = {name for name, _, _ in report.faults}
    assert len(injected) == 7, injected
    assert all(running > 0 for _, _, running in report.faults), "a fault landed when no team was running"
    assert report.llm["served"] > 0 and report.llm["dropped (client killed)"] >= 0
