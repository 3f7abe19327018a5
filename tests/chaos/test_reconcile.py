"""The chaos run's billing check, call by call: what the model server served against each cost row."""

from __future__ import annotations

from loadtests.chaos import reconcile


def test_every_served_call_settled_with_its_tokens_and_every_error_released_passes() -> None:
    calls = {"a": ("served", 100, 20), "b": ("429", 0, 0), "c": ("garbage", 0, 0)}
    rows = {"a": ("settled", 100, 20), "b": ("released", 0, 0), "c": ("released", 0, 0)}
    check = reconcile(calls, rows, set())
    assert check.ok, check.figures
    assert "1 settled exactly; 2 error answers released" in check.figures


def test_a_served_call_billed_at_its_worst_case_fails_unless_a_kill_cut_its_step() -> None:
    calls = {"a": ("served", 100, 20)}
    rows = {"a": ("estimated", 400, 2048)}
    assert not reconcile(calls, rows, set()).ok
    assert reconcile(calls, rows, {"a"}).ok
    assert reconcile(calls, {"a": ("reserved", 400, 2048)}, {"a"}).ok  # the sweep has not run yet


def test_a_settlement_with_other_tokens_than_served_fails() -> None:
    check = reconcile({"a": ("served", 100, 20)}, {"a": ("settled", 100, 21)}, set())
    assert not check.ok and "served a (100+20) is settled (100+21)" in check.figures


def test_a_call_settled_that_the_server_never_served_fails() -> None:
    assert not reconcile({}, {"x": ("settled", 10, 10)}, set()).ok
    assert not reconcile({"x": ("500", 0, 0)}, {"x": ("settled", 10, 10)}, set()).ok
    assert reconcile({}, {"x": ("estimated", 10, 10)}, set()).ok  # reserved, the process died before sending


def test_a_served_call_left_reserved_without_a_kill_fails() -> None:
    assert not reconcile({"a": ("served", 1, 1)}, {"a": ("reserved", 5, 5)}, set()).ok
