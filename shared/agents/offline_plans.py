"""Deterministic plans for the offline provider, built from the words of the goal.

The goal picks a kind of work (software, research, writing, general), each a small template of
phases with dependencies; a hash of the goal drops some optional phases, so different goals get
differently shaped (but always valid, acyclic) plans.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from shared.agents.schemas import Plan, PlannedMember, PlannedTask

#: Ghost pirates, one per possible worker (a team has at most 12).
CREW_NAMES = (
    "Anne Bonny", "Calico Jack", "Mary Read", "Black Bart", "Grace O'Malley", "Ching Shih",
    "Henry Every", "Stede Bonnet", "Ned Low", "Charles Vane", "Sam Bellamy", "William Kidd",
)  # fmt: skip

_LEADING_VERBS = {
    "build", "create", "make", "write", "design", "develop", "implement", "plan", "research",
    "analyze", "analyse", "investigate", "compare", "draft", "prepare", "produce", "set", "setup",
    "study", "find", "review", "improve", "document", "generate", "compose", "outline", "evaluate",
}  # fmt: skip

_KINDS: dict[str, set[str]] = {
    "software": {"app", "api", "scraper", "service", "website", "site", "bot", "script", "code", "cli",
                 "tool", "library", "backend", "frontend", "database", "pipeline", "program", "software",
                 "implement", "develop", "deploy", "integration", "automation", "dashboard"},
    "research": {"research", "analyze", "analyse", "analysis", "compare", "comparison", "study",
                 "investigate", "market", "survey", "report", "evaluate", "evaluation", "trends", "data"},
    "writing": {"write", "blog", "article", "essay", "post", "newsletter", "guide", "documentation",
                "story", "copy", "email", "press", "speech", "tutorial", "book"},
}  # fmt: skip


@dataclass(frozen=True)
class Phase:
    key: str
    title: str  #: `{s}` is the goal's subject
    description: str
    criteria: tuple[str, ...]
    specialization: str
    dependencies: tuple[str, ...] = ()
    optional: bool = False


_TEMPLATES: dict[str, tuple[Phase, ...]] = {
    "software": (
        Phase("requirements", "Define requirements for {s}",
              "List the users, inputs, outputs and constraints of {s}.",
              ("Lists at least three functional requirements", "States the inputs and outputs explicitly"),
              "research"),
        Phase("prior-art", "Survey existing approaches to {s}",
              "Compare two or three known ways to build {s}.",
              ("Compares at least two approaches with trade-offs",), "research", optional=True),
        Phase("design", "Design the architecture of {s}",
              "Describe the components of {s} and how data flows.",
              ("Names each component and its responsibility", "Shows the data flow end to end"),
              "design", ("requirements", "prior-art")),
        Phase("implement", "Implement the core of {s}", "Write the main code of {s} following the design.",
              ("Contains working code for the core flow", "Handles at least one error case explicitly"),
              "engineering", ("design",)),
        Phase("tests", "Write tests for {s}",
              "Write tests that prove the core flow of {s} works and fails safely.",
              ("Covers the main success path", "Covers at least one failure path"), "qa", ("implement",)),
        Phase("deployment", "Plan deployment of {s}", "Describe how {s} is configured, run and monitored.",
              ("Lists the configuration settings", "Says how failures are noticed"), "engineering",
              ("implement",), optional=True),
        Phase("docs", "Document {s}", "Write a README for {s}: setup, usage, limitations.",
              ("Explains setup step by step", "Includes a usage example"), "writing", ("implement",),
              optional=True),
    ),
    "research": (
        Phase("scope", "Scope the question: {s}", "Turn {s} into precise questions and pick the method.",
              ("States the research questions", "Names the sources or data to use"), "research"),
        Phase("sources", "Gather sources on {s}", "Collect and annotate the most relevant sources about {s}.",
              ("Lists at least five sources with one-line notes",), "research", ("scope",)),
        Phase("data", "Collect figures for {s}", "Extract the key numbers and facts about {s} into a table.",
              ("Presents the figures in a table", "Cites where each figure comes from"), "analysis",
              ("scope",), optional=True),
        Phase("analysis", "Analyze findings on {s}", "Compare the evidence about {s} and draw conclusions.",
              ("Compares findings across sources", "Separates facts from interpretation"), "analysis",
              ("sources", "data")),
        Phase("report", "Write the report on {s}", "Write a structured report on {s} with recommendations.",
              ("Has an executive summary", "Ends with concrete recommendations"), "writing", ("analysis",)),
        Phase("fact-check", "Fact-check the report on {s}", "Check every claim of the report on {s}.",
              ("Flags or confirms each factual claim",), "qa", ("report",), optional=True),
    ),
    "writing": (
        Phase("audience", "Define audience and message for {s}",
              "Say who {s} is for and what it must convey.",
              ("Names the audience", "States the key message in one sentence"), "research"),
        Phase("research", "Research material for {s}", "Collect facts, examples and quotes for {s}.",
              ("Lists at least five usable facts or examples",), "research", optional=True),
        Phase("outline", "Outline {s}", "Structure {s} into sections with their main points.",
              ("Has a section list with one point each",), "writing", ("audience", "research")),
        Phase("draft", "Draft {s}", "Write the full first draft of {s} from the outline.",
              ("Covers every section of the outline", "Reads as finished prose"), "writing", ("outline",)),
        Phase("edit", "Edit {s}", "Tighten the draft of {s}: clarity, tone, correctness.",
              ("Fixes unclear or wordy sentences", "Keeps the key message intact"), "writing", ("draft",),
              optional=True),
    ),
    "general": (
        Phase("clarify", "Clarify the goal: {s}", "Restate {s} as concrete outcomes and constraints.",
              ("Lists the expected outcomes", "Lists the constraints"), "research"),
        Phase("options", "Explore options for {s}", "Find and compare ways to achieve {s}.",
              ("Compares at least two options with pros and cons",), "research", ("clarify",), optional=True),
        Phase("plan", "Plan the work for {s}", "Break {s} into an ordered plan with owners and checks.",
              ("Gives an ordered list of steps",), "design", ("clarify", "options")),
        Phase("execute", "Carry out {s}", "Produce the main deliverable of {s} following the plan.",
              ("Delivers the main outcome", "Follows the plan's steps"), "general", ("plan",)),
        Phase("verify", "Verify the result of {s}", "Check the deliverable of {s} against the outcomes.",
              ("Checks each expected outcome",), "qa", ("execute",), optional=True),
    ),
}


def digest(*parts: str) -> int:
    """A stable integer from text (Python's hash() is salted per process, so it cannot be used)."""
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:8], "big")


def words_of(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def subject_of(goal: str) -> str:
    """The goal without its leading verb and final punctuation, short enough for a title."""
    text = " ".join(goal.split()).rstrip(" .!?;:")
    first, _, rest = text.partition(" ")
    if first.lower() in _LEADING_VERBS and rest:
        text = rest
    if len(text) > 120:
        text = text[:120].rsplit(" ", 1)[0] + "…"
    return text or "the goal"


def kind_of(goal: str) -> str:
    words = set(words_of(goal))
    scores = {kind: len(words & vocabulary) for kind, vocabulary in _KINDS.items()}
    best = max(scores, key=lambda kind: scores[kind])
    return best if scores[best] else "general"


def _kept_phases(goal: str, phases: tuple[Phase, ...]) -> list[Phase]:
    seed = digest("phases", goal)
    return [phase for index, phase in enumerate(phases) if not phase.optional or (seed >> index) & 1]


def _resolved_dependencies(phase: Phase, by_key: dict[str, Phase], kept: set[str]) -> list[str]:
    """Dependencies on dropped phases are replaced by those phases' own (kept) dependencies."""
    result: list[str] = []
    pending = list(phase.dependencies)
    while pending:
        key = pending.pop(0)
        if key in kept:
            if key not in result:
                result.append(key)
        elif key in by_key:
            pending.extend(by_key[key].dependencies)
    return result


def offline_plan(goal: str, workers: int) -> Plan:
    subject = subject_of(goal)
    phases = _TEMPLATES[kind_of(goal)]
    by_key = {phase.key: phase for phase in phases}
    kept = _kept_phases(goal, phases)
    kept_keys = {phase.key for phase in kept}
    tasks = [
        PlannedTask(
            key=phase.key,
            title=phase.title.format(s=subject)[:300],
            description="(offline plan) " + phase.description.format(s=subject),
            acceptance_criteria=list(phase.criteria),
            dependencies=_resolved_dependencies(phase, by_key, kept_keys),
            specialization=phase.specialization,
        )
        for phase in kept
    ]
    specializations = list(dict.fromkeys(task.specialization for task in tasks))
    start = digest("crew", goal) % len(CREW_NAMES)
    members = [
        PlannedMember(
            name=CREW_NAMES[(start + index) % len(CREW_NAMES)],
            specialization=specializations[index % len(specializations)],
        )
        for index in range(max(1, workers))
    ]
    return Plan(tasks=tasks, members=members)
