"""Failpoints are armed only in local/test environments, by name and passage."""

from __future__ import annotations

import pytest

from shared import failpoints


def test_a_failpoint_names_its_passage_and_defaults_to_the_first():
    assert failpoints._parse("llm.reserved:2, step.committed,review.committed:x") == {
        "llm.reserved": 2, "step.committed": 1, "review.committed": 1}
    assert failpoints._parse("") == {}


@pytest.mark.parametrize(("environment", "armed"), [("local", True), ("test", True), ("prod", False),
                                                    ("staging", False), ("dev", False)])
def test_failpoints_are_honoured_only_in_local_and_test(monkeypatch: pytest.MonkeyPatch, environment: str,
                                                        armed: bool):
    monkeypatch.setenv("ENVIRONMENT", environment)
    monkeypatch.setenv("GP_CRASH_AT", "step.committed:3")
    assert failpoints._armed() == ({"step.committed": 3} if armed else {})


def test_an_unarmed_failpoint_is_passed_through():
    failpoints.crash_point("step.committed")  # GP_CRASH_AT is not set in the test process: nothing happens
