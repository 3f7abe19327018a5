"""The offline provider drives the real agents: deterministic, valid, labelled, with a revision loop."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.agents import (
    TaskBrief,
    TaskOutcome,
    build_provider,
    execute_step,
    plan_goal,
    review_output,
    summarize,
)
from shared.agents.offline import DELTA_PIECES, OfflineProvider
from shared.agents.prompt_templates import load_prompt
from shared.agents.schemas import (
    MAX_STEPS,
    MAX_TASKS,
    MIN_STEPS,
    MIN_TASKS,
    DependencyOutput,
    Summary,
    plan_draft_schema,
)

GOALS = [
    "Build a web scraper for product prices",
    "Research the EV battery market in Europe and compare suppliers",
    "Write a blog post about sailing for beginners",
    "Throw a birthday party for 40 people",
    "Develop a REST API for a library catalogue",
    "Analyze customer churn data and report the main drivers",
    "Write documentation for our CLI tool",
    "Plan a three-day team offsite",
]
provider = OfflineProvider()


def brief(task) -> TaskBrief:
    return TaskBrief(
        title=task.title,
        description=task.description,
        acceptance_criteria=task.acceptance_criteria,
        specialization=task.specialization,
    )


async def run_task(task: TaskBrief) -> tuple[list[str], list[str]]:
    """Execute and review like the task orchestrator: (step contents, verdicts)."""
    steps: list[str] = []
    verdicts: list[str] = []
    feedback = None
    for revision in range(3):
        while True:
            step = await execute_step(
                provider,
                goal="Find the treasure",
                task=task,
                step_number=len(steps) + 1,
                previous_steps=steps,
                feedback=feedback,
                model="offline-worker",
            )
            steps.append(step.value.content)
            if step.value.is_final:
                break
        review = await review_output(
            provider, goal="Find the treasure", task=task, output=steps[-1], revision=revision,
            model="offline-manager",
        )
        verdicts.append(review.value.verdict)
        if review.value.verdict == "approve":
            break
        feedback = review.value.feedback
    return steps, verdicts


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(goal=st.text(min_size=1, max_size=400), workers=st.integers(min_value=1, max_value=12))
async def test_any_goal_gets_a_valid_acyclic_plan_sized_to_the_team(goal: str, workers: int):
    result = await plan_goal(provider, goal=goal, workers=workers, model="offline-manager")
    plan = result.value

    assert MIN_TASKS <= len(plan.tasks) <= MAX_TASKS
    assert len(plan.members) == workers
    order = plan.execution_order()
    assert sorted(order) == sorted(task.key for task in plan.tasks)
    position = {key: index for index, key in enumerate(order)}
    assert all(position[dep] < position[task.key] for task in plan.tasks for dep in task.dependencies)
    draft = plan_draft_schema(workers=workers, max_tasks=MAX_TASKS, max_criteria=10)
    assert draft.model_validate_json(result.completions[0].text).to_plan() == plan, "the JSON text is the plan"
    assert result.prompt_version == "plan.v2"


async def test_the_same_goal_always_gets_the_same_plan_and_bill():
    first = await plan_goal(provider, goal=GOALS[0], workers=3, model="offline-manager")
    second = await plan_goal(build_provider("offline"), goal=GOALS[0], workers=3, model="offline-manager")

    assert first.value == second.value
    assert first.completions[0].text == second.completions[0].text
    assert first.completions[0].input_tokens == second.completions[0].input_tokens


async def test_plans_follow_the_words_of_the_goal():
    plans = [
        (await plan_goal(provider, goal=goal, workers=2, model="offline-manager")).value for goal in GOALS
    ]

    assert len({tuple(task.key for task in plan.tasks) for plan in plans}) >= 4, "goals get different shapes"
    assert "web scraper for product prices" in plans[0].tasks[0].title
    assert all(task.description.startswith("(offline plan)") for plan in plans for task in plan.tasks)


async def test_tasks_take_two_to_four_steps_and_about_a_third_are_revised_once():
    tasks = [
        brief(task)
        for goal in GOALS
        for task in (await plan_goal(provider, goal=goal, workers=2, model="offline-manager")).value.tasks
    ]
    revised = 0
    step_counts = set()
    for task in tasks:
        steps, verdicts = await run_task(task)
        assert verdicts in (["approve"], ["revise", "approve"])
        first_pass = len(steps) - (len(verdicts) - 1)
        assert MIN_STEPS <= first_pass <= MAX_STEPS
        step_counts.add(first_pass)
        revised += verdicts[0] == "revise"
        assert steps[-1].startswith(f"# {task.title}") and "[offline deliverable" in steps[-1]

    assert step_counts == {2, 3, 4}
    assert 0.15 <= revised / len(tasks) <= 0.55, f"{revised} of {len(tasks)} revised"


async def test_summary_is_labelled_and_names_unfinished_tasks():
    outcomes = [
        TaskOutcome(title="Chart the coast", status="completed", output="map"),
        TaskOutcome(title="Bury the gold", status="failed", output=None),
    ]

    result = await summarize(provider, goal="Find the treasure", tasks=outcomes, model="offline-manager")

    assert result.value.summary.startswith("[offline summary]")
    assert "Bury the gold (failed)" in result.value.summary
    assert result.value.highlights == ["Chart the coast"]
    assert result.prompt_version == "summary.v2"


async def test_completions_are_labelled_offline_and_priced_from_text_length():
    result = await plan_goal(provider, goal=GOALS[1], workers=4, model="offline-manager")
    completion = result.completions[0]

    assert (completion.provider, completion.model) == ("offline", "offline-manager")
    assert completion.output_tokens == -(-len(completion.text) // 4)
    assert completion.input_tokens > 100, "the prompt and the schema are counted"
    assert completion.cost_usd > 0


async def test_latency_setting_is_honoured():
    slow = build_provider("offline", offline_latency_ms=150)
    task = TaskBrief(title="Swab the deck", description="Clean it.", acceptance_criteria=["It shines"])

    started = time.perf_counter()
    result = await execute_step(
        slow, goal="A clean ship", task=task, step_number=1, previous_steps=[], feedback=None, model="offline-worker"
    )
    elapsed = time.perf_counter() - started

    assert elapsed >= 0.15 and result.completions[0].latency_ms >= 150
    fast_started = time.perf_counter()
    await execute_step(
        provider, goal="A clean ship", task=task, step_number=1, previous_steps=[], feedback=None,
        model="offline-worker",
    )
    assert time.perf_counter() - fast_started < 0.1


async def test_a_deliverable_names_the_goal_and_cites_its_dependencies():
    task = TaskBrief(title="Chart the reef", description="Map it.", acceptance_criteria=["Depths marked"])
    survey = DependencyOutput(title="Survey the reef", output="Depths 3 to 12 m along the north edge.\nMore.")
    steps: list[str] = []
    while True:
        step = await execute_step(provider, goal="Find the treasure", task=task, step_number=len(steps) + 1,
                                  previous_steps=steps, feedback=None, model="offline-worker",
                                  dependencies=[survey])
        steps.append(step.value.content)
        if step.value.is_final:
            break

    assert "Towards the goal: Find the treasure" in steps[-1]
    assert "From “Survey the reef”: Depths 3 to 12 m along the north edge. More." in steps[-1]


async def test_the_offline_provider_streams_its_answer_in_pieces_that_make_the_text():
    pieces: list[str] = []

    async def on_delta(text: str) -> None:
        pieces.append(text)

    messages = load_prompt("summary.v2").render({"goal": "g", "tasks": []})
    completion = await OfflineProvider(latency_ms=40).complete(messages, model="offline-manager", schema=Summary,
                                                               max_tokens=100, on_delta=on_delta)

    assert len(pieces) == DELTA_PIECES and "".join(pieces) == completion.text
