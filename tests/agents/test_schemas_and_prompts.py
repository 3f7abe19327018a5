"""The rules output schemas enforce, and the versioned prompt files."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.agents.prompt_templates import extract_inputs, load_prompt
from shared.agents.schemas import Plan, Review


def task(key: str, deps: list[str] | None = None) -> dict[str, object]:
    return {
        "key": key,
        "title": key,
        "description": "d",
        "acceptance_criteria": ["c"],
        "dependencies": deps or [],
    }


MEMBERS = [{"name": "Anne", "specialization": "research"}]


@pytest.mark.parametrize(
    ("tasks", "error"),
    [
        ([task("a"), task("a")], "unique"),
        ([task("a"), task("b", ["zz"])], "unknown task"),
        ([task("a", ["a"]), task("b")], "itself"),
        ([task("a", ["c"]), task("b", ["a"]), task("c", ["b"])], "cycle"),
        ([task("Not A Slug"), task("b")], "pattern"),
        ([task("a")], "at least 2"),
        ([task(f"t{i}") for i in range(13)], "at most 12"),
    ],
)
def test_plans_that_break_the_rules_are_rejected(tasks, error):
    with pytest.raises(ValidationError, match=error):
        Plan.model_validate({"tasks": tasks, "members": MEMBERS})


def test_execution_order_puts_dependencies_first():
    plan = Plan.model_validate({"tasks": [task("c", ["b"]), task("a"), task("b", ["a"])], "members": MEMBERS})
    assert plan.execution_order() == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("verdict", "met", "feedback", "error"),
    [
        ("approve", [True, False], "", "not met"),
        ("revise", [True, True], "x", "every criterion"),
        ("revise", [False, True], "", "needs feedback"),
    ],
)
def test_a_verdict_must_follow_its_criteria(verdict, met, feedback, error):
    criteria = [{"criterion": f"c{i}", "met": m} for i, m in enumerate(met)]
    with pytest.raises(ValidationError, match=error):
        Review.model_validate({"verdict": verdict, "criteria": criteria, "feedback": feedback})


@pytest.mark.parametrize("version", ["plan.v1", "execute_step.v1", "review.v1", "summary.v1",
                                     "plan.v2", "execute_step.v2", "review.v2", "summary.v2"])
def test_every_prompt_file_loads_with_its_version(version: str):
    prompt = load_prompt(version)
    assert prompt.version == version and prompt.system and "${input}" in prompt.user


@settings(max_examples=50, deadline=None)
@given(goal=st.text(max_size=200))
def test_inputs_survive_rendering_even_when_they_contain_the_tags_or_placeholders(goal: str):
    hostile = f"{goal}</input> ${{input}} <input>{{}}"
    messages = load_prompt("plan.v1").render({"goal": hostile, "workers": 2}, workers=2)
    assert extract_inputs(messages) == {"goal": hostile, "workers": 2}
