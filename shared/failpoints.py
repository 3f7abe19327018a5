"""Crash points for the crash tests: the process SIGKILLs itself at a named point of the step path.

`GP_CRASH_AT=<name>[:<n>]` (several comma-separated) makes the process kill itself, with SIGKILL and
no clean-up, the n-th time (default the first) it passes `crash_point(<name>)`. Honoured only when
`ENVIRONMENT` is `local` or `test` (its default is `local`); anywhere else the variable is ignored
and `crash_point` is a dictionary look-up. No library does this (pytest fault injection works in the
test process, not in a devhost subprocess the test then restarts), and the point must be a real
SIGKILL: an exception would run `finally` blocks and roll transactions back politely.

The points (tests/e2e/test_crash_recovery.py passes each one):

- `llm.reserved`: an LLM call's reservation is committed, the call not made yet
- `llm.returned`: the provider answered, nothing of the answer is written yet
- `step.committed`: a worker step's transaction (checkpoint, message, cost, task state) committed,
  the activity's result not yet recorded by the Durable backend
- `review.committed`, `plan.committed`, `summary.committed`: the same for those steps
"""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger(__name__)

_DEVELOPMENT = ("local", "test")


def _parse(text: str) -> dict[str, int]:
    points: dict[str, int] = {}
    for item in text.split(","):
        name, _, count = item.strip().partition(":")
        if name:
            points[name] = int(count) if count.strip().isdigit() and int(count) > 0 else 1
    return points


def _armed() -> dict[str, int]:
    if os.environ.get("ENVIRONMENT", "local") not in _DEVELOPMENT:
        return {}
    return _parse(os.environ.get("GP_CRASH_AT", ""))


_ARMED = _armed()
_PASSED: dict[str, int] = {}


def crash_point(name: str) -> None:
    """Kill this process here when `GP_CRASH_AT` names `name` and this is its n-th passage."""
    if not _ARMED or name not in _ARMED:
        return
    _PASSED[name] = _PASSED.get(name, 0) + 1
    if _PASSED[name] >= _ARMED[name]:
        log.warning("failpoint %s reached (passage %d): SIGKILL", name, _PASSED[name])
        for handler in logging.getLogger().handlers:
            handler.flush()
        os.kill(os.getpid(), signal.SIGKILL)
