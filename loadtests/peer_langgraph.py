"""The peer of `loadtests.bench_peer`: the Ghost Pirates team shape as a LangGraph graph on PostgreSQL.

A team is one graph run (one `thread_id`) with LangGraph's official `AsyncPostgresSaver` and
`durability="sync"` (every superstep's checkpoint is persisted before the next one starts, and
each node's writes as it finishes), the way a LangGraph user would build the same workload:

- `plan`: one LLM call; its (JSON) answer is the task list; the tasks without dependencies start.
- `step`: one LLM call per worker step (its JSON answer says whether it is the final one); the
  final step sends the task to `review`.
- `review`: one LLM call; "revise" sends the task back to `step` with the feedback, "approve"
  records the output and goes to `dispatch`.
- `dispatch` (no LLM): starts the tasks whose dependencies are all done, or `summary` once every
  task is.
- `summary`: one LLM call, then the end.

Parallel tasks are parallel `Send`s, so they run in the same supersteps; the team's chat
(`messages`, one entry per LLM answer) and the task outputs live in the graph state like any
LangGraph app's. The chat model is a `BaseChatModel` that answers instantly from the team's shape
(no network, no sleep): what is left is LangGraph's own cost, langchain-core's model-call path and
the checkpointer's PostgreSQL writes.

The shape is the one Ghost Pirates' offline provider gives the same goal (`bench_peer` computes it
with `shared.agents` and passes it in as JSON), so both systems make the same LLM calls in the same
dependency order. This module imports only LangGraph and psycopg, so its start-up time (part of the
recovery figure) is LangGraph's, not ours.

It runs as a child process of the benchmark, one JSON object per stdout line:

    python -m loadtests.peer_langgraph alone --dsn DSN --shape FILE --teams 3
    python -m loadtests.peer_langgraph concurrent --dsn DSN --shape FILE --teams 20 --rounds 3
    python -m loadtests.peer_langgraph crash --dsn DSN --shape FILE --teams 5    # killed by the parent
    python -m loadtests.peer_langgraph resume --dsn DSN --shape FILE --threads a,b,c
"""

from __future__ import annotations

import argparse
import asyncio
import json
import operator
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, Send
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from loadtests.peer_common import SMALL, TeamShape, no_backends, xact_commit

#: Supersteps a team may take (LangGraph's default of 25 is below this shape's ~30).
RECURSION_LIMIT = 500


class CannedChatModel(BaseChatModel):  # type: ignore[misc]
    """A chat model that answers at once from the team's shape, the way Ghost Pirates' offline
    provider answers from its prompt: the plan as JSON, steps as JSON with `is_final`, reviews
    "approve" or "revise: ...", a summary. Counts its calls."""

    shape_json: str
    calls: int = 0
    announce_at: int = 0  #: says `announce` on stdout when this call is made (the crash run, the resume)
    announce: str = "half"

    @property
    def _llm_type(self) -> str:
        return "canned"

    def _answer(self, messages: list[BaseMessage]) -> str:
        shape = _shapes(self.shape_json)
        kind, _, rest = str(messages[-1].content).partition("\n")
        words = kind.split()
        self.calls += 1
        if self.calls == self.announce_at:
            say(event=self.announce, calls=self.calls)
        if words[0] == "plan":
            return json.dumps({"tasks": [{"key": t.key, "title": t.title, "dependencies": list(t.dependencies)}
                                         for t in shape.tasks]})
        if words[0] == "summary":
            return f"[canned summary] {len(shape.tasks)} tasks completed for: {shape.goal}"
        task = next(t for t in shape.tasks if t.key == words[1])
        if words[0] == "step":
            number, revision = int(words[2]), int(words[3])
            final = revision > 0 or number >= task.steps
            return json.dumps({"content": f"[canned] step {number} of {task.title}: {rest[:80]}", "is_final": final})
        if words[0] == "review":
            if task.revise and int(words[2]) == 0:
                return f"revise: show explicitly how {task.title} meets its first criterion"
            return "approve"
        raise ValueError(f"no canned answer for {kind!r}")

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self._answer(messages)))])

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        # Overridden so a call does not hop to a thread (the base class runs `_generate` in an executor).
        return self._generate(messages, stop, **kwargs)


_SHAPES: dict[str, TeamShape] = {}


def _shapes(text: str) -> TeamShape:
    if text not in _SHAPES:
        _SHAPES[text] = TeamShape.from_json(text)
    return _SHAPES[text]


def _merge(left: dict[str, str], right: dict[str, str]) -> dict[str, str]:
    return {**left, **right}


class TeamState(TypedDict, total=False):
    goal: str
    tasks: list[dict[str, Any]]
    started: Annotated[list[str], operator.add]
    done: Annotated[dict[str, str], _merge]
    messages: Annotated[list[dict[str, str]], operator.add]
    summary: str


class StepInput(TypedDict):
    goal: str
    task: dict[str, Any]
    step: int
    revision: int
    feedback: str
    previous: list[str]
    inputs: dict[str, str]


class ReviewInput(TypedDict):
    goal: str
    task: dict[str, Any]
    step: int
    revision: int
    output: str
    previous: list[str]
    inputs: dict[str, str]


SYSTEM = SystemMessage(content="You are one of the crew of a team of AI agents. Answer as asked.")


def build_graph(model: BaseChatModel, checkpointer: AsyncPostgresSaver) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The team as a graph (see the module docstring)."""

    async def ask(prompt: str) -> str:
        answer = await model.ainvoke([SYSTEM, HumanMessage(content=prompt)])
        return str(answer.content)

    def start_step(goal: str, task: dict[str, Any], done: dict[str, str]) -> Send:
        return Send("step", StepInput(goal=goal, task=task, step=1, revision=0, feedback="", previous=[],
                                      inputs={d: done[d] for d in task["dependencies"]}))

    async def plan(state: TeamState) -> Command[Any]:
        answer = json.loads(await ask(f"plan\nGoal: {state['goal']}"))
        tasks: list[dict[str, Any]] = answer["tasks"]
        ready = [t for t in tasks if not t["dependencies"]]
        return Command(update={"tasks": tasks, "started": [t["key"] for t in ready],
                               "messages": [{"from": "manager", "text": f"The plan has {len(tasks)} tasks."}]},
                       goto=[start_step(state["goal"], t, {}) for t in ready])

    async def step(state: StepInput) -> Command[Any]:
        task = state["task"]
        context = " | ".join(state["inputs"].values())[:200]
        answer = json.loads(await ask(f"step {task['key']} {state['step']} {state['revision']}\n"
                                      f"Goal: {state['goal']}\nTask: {task['title']}\nFeedback: {state['feedback']}\n"
                                      f"Earlier steps: {len(state['previous'])}\nInputs: {context}"))
        message = {"from": "worker", "task": task["key"], "text": answer["content"]}
        previous = [*state["previous"], answer["content"]]
        if answer["is_final"]:
            goto = Send("review", ReviewInput(goal=state["goal"], task=task, step=state["step"],
                                              revision=state["revision"], output=answer["content"],
                                              previous=previous, inputs=state["inputs"]))
        else:
            goto = Send("step", {**state, "step": state["step"] + 1, "previous": previous})
        return Command(update={"messages": [message]}, goto=goto)

    async def review(state: ReviewInput) -> Command[Any]:
        task = state["task"]
        verdict = await ask(f"review {task['key']} {state['revision']}\nTask: {task['title']}\n"
                            f"Output: {state['output']}")
        message = {"from": "reviewer", "task": task["key"], "text": verdict}
        if verdict.startswith("revise"):
            return Command(update={"messages": [message]},
                           goto=Send("step", StepInput(goal=state["goal"], task=task, step=state["step"] + 1,
                                                       revision=state["revision"] + 1, feedback=verdict,
                                                       previous=state["previous"], inputs=state["inputs"])))
        return Command(update={"messages": [message], "done": {task["key"]: state["output"]}}, goto="dispatch")

    async def dispatch(state: TeamState) -> Command[Any]:
        done, started = state.get("done", {}), set(state.get("started", []))
        if len(done) == len(state["tasks"]):
            return Command(goto="summary")
        ready = [t for t in state["tasks"] if t["key"] not in started and all(d in done for d in t["dependencies"])]
        return Command(update={"started": [t["key"] for t in ready]},
                       goto=[start_step(state["goal"], t, done) for t in ready])

    async def summary(state: TeamState) -> dict[str, Any]:
        text = await ask(f"summary\nGoal: {state['goal']}\nOutputs: {len(state.get('done', {}))}")
        return {"summary": text, "messages": [{"from": "manager", "text": text}]}

    builder = StateGraph(TeamState)
    builder.add_node("plan", plan, destinations=("step",))
    builder.add_node("step", step, input_schema=StepInput, destinations=("step", "review"))
    builder.add_node("review", review, input_schema=ReviewInput, destinations=("step", "dispatch"))
    builder.add_node("dispatch", dispatch, destinations=("step", "summary"))
    builder.add_node("summary", summary)
    builder.add_edge(START, "plan")
    return builder.compile(checkpointer=checkpointer)


def _config(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}, "recursion_limit": RECURSION_LIMIT}


class Peer:
    """A connection pool, the official checkpointer on it, the graph and its canned model."""

    def __init__(self, dsn: str, shape: TeamShape, pool_size: int = 10) -> None:
        self.dsn, self.shape, self.pool_size = dsn, shape, pool_size
        self.model = CannedChatModel(shape_json=shape.to_json())
        self.pool: AsyncConnectionPool[AsyncConnection[Any]] | None = None
        self.graph: CompiledStateGraph[Any, Any, Any, Any] | None = None

    async def open(self) -> None:
        # As LangGraph's docs set up a pool for the saver: autocommit, no prepared statements, dict rows.
        self.pool = AsyncConnectionPool(self.dsn, min_size=1, max_size=self.pool_size, open=False,
                                        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row})
        await self.pool.open(wait=True)
        self.graph = build_graph(self.model, AsyncPostgresSaver(self.pool))  # type: ignore[arg-type]

    async def setup(self) -> None:
        assert self.pool is not None
        await AsyncPostgresSaver(self.pool).setup()  # type: ignore[arg-type]

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    async def team(self, thread_id: str | None = None) -> tuple[str, float]:
        """Run one team to its end; its thread id and wall seconds."""
        assert self.graph is not None
        thread_id = thread_id or uuid.uuid4().hex
        started = time.perf_counter()
        final = await self.graph.ainvoke({"goal": self.shape.goal}, _config(thread_id), durability="sync")
        elapsed = time.perf_counter() - started
        check(final, self.shape)
        return thread_id, elapsed

    async def resume(self, thread_id: str) -> dict[str, Any]:
        """Continue a team from its last checkpoint (a no-op for one that had finished)."""
        assert self.graph is not None
        state = await self.graph.aget_state(_config(thread_id))
        if not state.next and state.values.get("summary"):
            return dict(state.values)
        final: dict[str, Any] = await self.graph.ainvoke(None, _config(thread_id), durability="sync")
        return final


def check(final: dict[str, Any], shape: TeamShape) -> None:
    """A finished team: every task done, a summary, one chat message per LLM answer."""
    if set(final.get("done", {})) != {t.key for t in shape.tasks} or not final.get("summary"):
        raise RuntimeError(f"team did not finish: done {sorted(final.get('done', {}))}, "
                           f"summary {final.get('summary')!r}")
    if len(final.get("messages", [])) != shape.calls:
        raise RuntimeError(f"team has {len(final.get('messages', []))} messages, expected {shape.calls}")


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def alone(dsn: str, shape: TeamShape, teams: int) -> dict[str, Any]:
    """A warm-up team, then `teams` one at a time: wall seconds of each, the commits they made (the
    pool is closed around them so every backend's counters are flushed) and this process's CPU."""
    peer = Peer(dsn, shape)
    await peer.open()
    await peer.setup()
    await peer.team()
    await peer.close()
    await no_backends(dsn)
    before = await xact_commit(dsn)
    await peer.open()
    cpu = time.process_time()
    seconds = [(await peer.team())[1] for _ in range(teams)]
    cpu = time.process_time() - cpu
    await peer.close()
    await no_backends(dsn)
    commits = await xact_commit(dsn) - before
    return {"event": "alone", "seconds": seconds, "calls": shape.calls, "commits": commits, "teams": teams,
            "cpu_seconds": cpu, "llm_calls": peer.model.calls}


async def concurrent(dsn: str, shape: TeamShape, teams: int, rounds: int) -> dict[str, Any]:
    """A warm-up team, then `rounds` rounds of `teams` at once: wall seconds of each round."""
    peer = Peer(dsn, shape)
    await peer.open()
    await peer.setup()
    await peer.team()  # warm-up, as on Ghost Pirates' side
    walls = []
    for _ in range(rounds):
        started = time.perf_counter()
        await asyncio.gather(*(peer.team() for _ in range(teams)))
        walls.append(time.perf_counter() - started)
    await peer.close()
    return {"event": "concurrent", "seconds": walls, "calls": shape.calls * teams, "teams": teams}


async def crash(dsn: str, shape: TeamShape, teams: int) -> dict[str, Any]:
    """`teams` at once; says `half` once half their LLM calls are made, and goes on until killed
    (or says `finished` if the parent was too slow to kill it)."""
    peer = Peer(dsn, shape)
    await peer.open()
    await peer.setup()
    threads = [uuid.uuid4().hex for _ in range(teams)]
    say(event="threads", threads=threads)
    peer.model.announce_at = shape.calls * teams // 2
    await asyncio.gather(*(peer.team(t) for t in threads))
    return {"event": "finished"}


async def resume(dsn: str, shape: TeamShape, threads: Sequence[str]) -> dict[str, Any]:
    """Resume every team from its checkpoints, check each finished whole; says `resumed`."""
    peer = Peer(dsn, shape)
    peer.model.announce_at, peer.model.announce = 1, "progress"  # its first LLM call since the restart
    await peer.open()
    say(event="up")
    finals = await asyncio.gather(*(peer.resume(t) for t in threads))
    for final in finals:
        check(final, shape)
    await peer.close()
    return {"event": "resumed", "teams": len(finals), "llm_calls": peer.model.calls,
            "messages": [len(f.get("messages", [])) for f in finals]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.peer_langgraph", description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=("alone", "concurrent", "crash", "resume"))
    parser.add_argument("--dsn", required=True, help="the run's database (the checkpointer's tables are set up)")
    parser.add_argument("--shape", help="a JSON file of the team shape (default: a small 3-task team)")
    parser.add_argument("--teams", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--threads", default="", help="comma-separated thread ids to resume")
    args = parser.parse_args(argv)
    shape = TeamShape.from_json(Path(args.shape).read_text()) if args.shape else SMALL
    if args.mode == "alone":
        job = alone(args.dsn, shape, args.teams)
    elif args.mode == "concurrent":
        job = concurrent(args.dsn, shape, args.teams, args.rounds)
    elif args.mode == "crash":
        job = crash(args.dsn, shape, args.teams)
    else:
        job = resume(args.dsn, shape, [t for t in args.threads.split(",") if t])
    say(**asyncio.run(job))
    return 0


if __name__ == "__main__":
    sys.exit(main())

