"""Invalid output is shown back to the model once, then fails as invalid_output; every call is billed."""

from __future__ import annotations

import json

import pytest

from shared.agents import AgentFailed, TaskBrief, execute_step, plan_goal, review_output
from shared.agents.schemas import plan_draft_schema
from shared.domain.failures import ClassifiedFailure, FailureType, parse_failure_type
from tests.agents.scripted import ScriptedProvider

TASK = TaskBrief(
    title="Chart the reef", description="Map the reef.", acceptance_criteria=["Depths marked", "Scale given"]
)


def plan_json(*, members: int = 2, dependencies: tuple[list[str], list[str]] = ([], ["t1"])) -> str:
    """A plan as the manager writes it (plan.v2): tasks t1, t2, then the members."""
    return json.dumps(
        {
            "t1": {
                "title": "Survey",
                "description": "Sail around.",
                "acceptance_criteria": ["Done"],
                "dependencies": dependencies[0],
                "specialization": "research",
            },
            "t2": {
                "title": "Chart",
                "description": "Draw it.",
                "acceptance_criteria": ["Drawn"],
                "dependencies": dependencies[1],
                "specialization": "design",
            },
            "members": [{"name": f"Crew {i}", "specialization": "research"} for i in range(members)],
        }
    )


def review_json(met: tuple[bool, bool], feedback: str = "") -> str:
    return json.dumps({"criteria": [{"met": m, "comment": "Checked."} for m in met], "feedback": feedback})


async def test_an_invalid_answer_is_fed_back_once_and_a_valid_plan_then_accepted():
    backwards = plan_json(dependencies=(["t2"], []))  # t1 may depend on nothing before it
    provider = ScriptedProvider([backwards, plan_json()])

    result = await plan_goal(provider, goal="Chart the reef", workers=2, model="claude-sonnet-4-5")

    assert [task.key for task in result.value.tasks] == ["survey", "chart"]
    assert result.value.tasks[1].dependencies == ["survey"]
    assert len(result.completions) == 2, "both calls are returned for billing"
    second = provider.calls[1]
    assert second[-2].role == "assistant" and second[-2].content == backwards
    assert second[-1].role == "user" and "t1.dependencies" in second[-1].content


def test_the_plan_schema_makes_keys_unique_and_dependencies_point_backwards():
    schema = plan_draft_schema(workers=1, max_tasks=3, max_criteria=2).model_json_schema()
    defs = schema["$defs"]

    assert list(schema["properties"]) == ["t1", "t2", "t3", "members"], "the tasks first, in order"
    assert schema["required"][:2] == ["t1", "t2"] and {"type": "null"} in schema["properties"]["t3"]["anyOf"]
    assert defs["Task1"]["properties"]["dependencies"]["maxItems"] == 0
    assert defs["Task2"]["properties"]["dependencies"]["items"]["const"] == "t1"
    assert defs["Task3"]["properties"]["dependencies"]["items"]["enum"] == ["t1", "t2"]
    assert defs["Task3"]["properties"]["acceptance_criteria"]["maxItems"] == 2


async def test_a_task_depending_on_an_unused_one_is_fed_back():
    draft = json.loads(plan_json(members=1))
    draft["t3"] = None
    draft["t4"] = {**draft["t2"], "title": "Sail", "dependencies": ["t3"]}
    provider = ScriptedProvider([json.dumps(draft), plan_json(members=1)])

    await plan_goal(provider, goal="Chart the reef", workers=1, model="m", max_tasks=4)

    assert "t4 depends on t3, which is empty" in provider.calls[1][-1].content


async def test_text_that_is_not_json_is_invalid_output_shown_to_the_model():
    provider = ScriptedProvider(["Here is your plan: tasks are survey and chart.", plan_json()])

    await plan_goal(provider, goal="Chart the reef", workers=2, model="m")

    assert "not JSON" in provider.calls[1][-1].content


async def test_the_plan_schema_says_the_team_size_and_the_task_limit():
    provider = ScriptedProvider([plan_json(members=2)])

    await plan_goal(provider, goal="Chart the reef", workers=2, model="m", max_tasks=3)

    schema = provider.schemas[0].model_json_schema()
    assert (schema["properties"]["members"]["minItems"], schema["properties"]["members"]["maxItems"]) == (2, 2)
    assert [name for name in schema["properties"] if name.startswith("t")] == ["t1", "t2", "t3"]


async def test_a_plan_not_sized_to_the_team_is_retried_with_the_reason():
    provider = ScriptedProvider([plan_json(members=3), plan_json(members=2)])

    result = await plan_goal(provider, goal="Chart the reef", workers=2, model="m")

    assert len(result.value.members) == 2
    assert "members: List should have at most 2 items" in provider.calls[1][-1].content


async def test_two_invalid_answers_raise_invalid_output_with_every_completion():
    provider = ScriptedProvider(['{"criteria": "none"}'] * 2)

    with pytest.raises(AgentFailed) as caught:
        await review_output(provider, goal="Find the treasure", task=TASK, output="a map", revision=0,
                            model="claude-sonnet-4-5")

    failure = caught.value
    assert failure.failure_type is FailureType.INVALID_OUTPUT
    assert parse_failure_type(str(failure)) is FailureType.INVALID_OUTPUT, "survives the Durable boundary"
    assert "review.v2" in failure.message and "criteria" in failure.message
    assert len(failure.completions) == 2 and all(c.cost_usd > 0 for c in failure.completions)
    assert len(provider.calls) == 2


async def test_the_verdict_follows_the_judgements_so_an_unmet_criterion_is_never_approved():
    provider = ScriptedProvider([review_json((True, False))])

    result = await review_output(provider, goal="Find the treasure", task=TASK, output="a map", revision=0,
                                 model="m")

    review = result.value
    assert review.verdict == "revise"
    assert [(c.criterion, c.met) for c in review.criteria] == [("Depths marked", True), ("Scale given", False)]
    assert "Scale given" in review.feedback, "feedback names the unmet criterion when the reviewer wrote none"


async def test_a_review_must_judge_every_acceptance_criterion():
    one_criterion = json.dumps({"criteria": [{"met": True, "comment": "Marked."}], "feedback": ""})
    provider = ScriptedProvider([one_criterion, review_json((True, False), "Add a scale bar.")])

    result = await review_output(provider, goal="Find the treasure", task=TASK, output="a map", revision=1, model="m")

    assert result.value.verdict == "revise" and result.value.feedback == "Add a scale bar."
    schema = provider.schemas[0].model_json_schema()
    assert (schema["properties"]["criteria"]["minItems"], schema["properties"]["criteria"]["maxItems"]) == (2, 2)
    assert "exactly 2 entries" in provider.calls[1][-1].content or "at least 2" in provider.calls[1][-1].content


async def test_a_provider_failure_after_an_invalid_answer_keeps_the_first_bill():
    provider = ScriptedProvider(
        ["{}", ClassifiedFailure(FailureType.RATE_LIMITED, "slow down", retry_after=12.0)]
    )

    with pytest.raises(AgentFailed) as caught:
        await review_output(provider, goal="Find the treasure", task=TASK, output="a map", revision=0, model="m")

    assert caught.value.failure_type is FailureType.RATE_LIMITED
    assert caught.value.retry_after == 12.0
    assert len(caught.value.completions) == 1


async def test_step_number_is_the_callers_and_the_last_allowed_step_is_final():
    answer = json.dumps(
        {"step_number": 9, "title": "More work", "content": "Depths 3-12 m.", "is_final": False}
    )
    provider = ScriptedProvider([answer, answer])

    third = await execute_step(
        provider, goal="Find the treasure", task=TASK, step_number=3, previous_steps=["a", "b"], feedback=None,
        model="m",
    )
    fourth = await execute_step(
        provider, goal="Find the treasure", task=TASK, step_number=4, previous_steps=["a", "b", "c"],
        feedback=None, model="m",
    )

    assert (third.value.step_number, third.value.is_final) == (3, False)
    assert (fourth.value.step_number, fourth.value.is_final) == (4, True)
    assert third.prompt_version == "execute_step.v2"


async def test_a_first_step_cannot_be_final_by_the_schema():
    provider = ScriptedProvider([
        json.dumps({"step_number": 1, "title": "All of it", "content": "Done.", "is_final": True}),
        json.dumps({"step_number": 1, "title": "Start", "content": "Depths.", "is_final": False}),
    ])

    result = await execute_step(provider, goal="Find the treasure", task=TASK, step_number=1, previous_steps=[],
                                feedback=None, model="m")

    assert result.value.is_final is False and len(result.completions) == 2
    assert provider.schemas[0].model_json_schema()["properties"]["is_final"]["const"] is False
