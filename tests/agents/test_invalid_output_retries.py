"""Invalid output is shown back to the model twice, then fails as invalid_output; every call is billed."""

from __future__ import annotations

import json

import pytest

from shared.agents import AgentFailed, TaskBrief, execute_step, plan_goal, review_output
from shared.domain.failures import ClassifiedFailure, FailureType, parse_failure_type
from tests.agents.scripted import ScriptedProvider

TASK = TaskBrief(
    title="Chart the reef", description="Map the reef.", acceptance_criteria=["Depths marked", "Scale given"]
)


def plan_json(*, members: int = 2, dependencies: tuple[list[str], list[str]] = ([], ["survey"])) -> str:
    return json.dumps(
        {
            "tasks": [
                {
                    "key": "survey",
                    "title": "Survey",
                    "description": "Sail around.",
                    "acceptance_criteria": ["Done"],
                    "dependencies": dependencies[0],
                    "specialization": "research",
                },
                {
                    "key": "chart",
                    "title": "Chart",
                    "description": "Draw it.",
                    "acceptance_criteria": ["Drawn"],
                    "dependencies": dependencies[1],
                    "specialization": "design",
                },
            ],
            "members": [{"name": f"Crew {i}", "specialization": "research"} for i in range(members)],
        }
    )


def review_json(verdict: str, met: tuple[bool, bool], feedback: str = "") -> str:
    criteria = [
        {"criterion": c, "met": m, "comment": ""} for c, m in zip(TASK.acceptance_criteria, met, strict=True)
    ]
    return json.dumps({"verdict": verdict, "criteria": criteria, "feedback": feedback})


async def test_invalid_answers_are_fed_back_until_a_valid_plan_arrives():
    cyclic = plan_json(dependencies=(["chart"], ["survey"]))
    provider = ScriptedProvider(["Here is your plan: tasks are survey and chart.", cyclic, plan_json()])

    result = await plan_goal(provider, goal="Chart the reef", workers=2, model="claude-sonnet-4-5")

    assert [task.key for task in result.value.tasks] == ["survey", "chart"]
    assert len(result.completions) == 3, "all three calls are returned for billing"
    second, third = provider.calls[1], provider.calls[2]
    assert second[-2].role == "assistant" and second[-2].content.startswith("Here is your plan")
    assert second[-1].role == "user" and "not JSON" in second[-1].content
    assert third[-2].content == cyclic
    assert "cycle" in third[-1].content and "chart" in third[-1].content


async def test_a_plan_not_sized_to_the_team_is_retried_with_the_reason():
    provider = ScriptedProvider([plan_json(members=3), plan_json(members=2)])

    result = await plan_goal(provider, goal="Chart the reef", workers=2, model="m")

    assert len(result.value.members) == 2
    assert "exactly 2 entries" in provider.calls[1][-1].content


async def test_three_invalid_answers_raise_invalid_output_with_every_completion():
    approve_with_unmet = review_json("approve", (True, False))
    provider = ScriptedProvider([approve_with_unmet] * 3)

    with pytest.raises(AgentFailed) as caught:
        await review_output(provider, task=TASK, output="a map", revision=0, model="claude-sonnet-4-5")

    failure = caught.value
    assert failure.failure_type is FailureType.INVALID_OUTPUT
    assert parse_failure_type(str(failure)) is FailureType.INVALID_OUTPUT, "survives the Durable boundary"
    assert "review.v1" in failure.message and "Scale given" in failure.message
    assert len(failure.completions) == 3 and all(c.cost_usd > 0 for c in failure.completions)
    assert len(provider.calls) == 3


async def test_a_review_must_judge_every_acceptance_criterion():
    one_criterion = json.dumps(
        {"verdict": "approve", "criteria": [{"criterion": "Depths marked", "met": True}]}
    )
    provider = ScriptedProvider([one_criterion, review_json("revise", (True, False), "Add a scale bar.")])

    result = await review_output(provider, task=TASK, output="a map", revision=1, model="m")

    assert result.value.verdict == "revise" and result.value.feedback == "Add a scale bar."
    assert "exactly 2 entries" in provider.calls[1][-1].content


async def test_a_provider_failure_after_an_invalid_answer_keeps_the_first_bill():
    provider = ScriptedProvider(
        ["{}", ClassifiedFailure(FailureType.RATE_LIMITED, "slow down", retry_after=12.0)]
    )

    with pytest.raises(AgentFailed) as caught:
        await review_output(provider, task=TASK, output="a map", revision=0, model="m")

    assert caught.value.failure_type is FailureType.RATE_LIMITED
    assert caught.value.retry_after == 12.0
    assert len(caught.value.completions) == 1


async def test_step_number_is_the_callers_and_the_last_allowed_step_is_final():
    answer = json.dumps(
        {"step_number": 9, "title": "More work", "content": "Depths 3-12 m.", "is_final": False}
    )
    provider = ScriptedProvider([answer, answer])

    third = await execute_step(
        provider, task=TASK, step_number=3, previous_steps=["a", "b"], feedback=None, model="m"
    )
    fourth = await execute_step(
        provider, task=TASK, step_number=4, previous_steps=["a", "b", "c"], feedback=None, model="m"
    )

    assert (third.value.step_number, third.value.is_final) == (3, False)
    assert (fourth.value.step_number, fourth.value.is_final) == (4, True)
    assert third.prompt_version == "execute_step.v1"
