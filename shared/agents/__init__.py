"""Manager and worker agents on one small LLM interface (Anthropic, OpenAI-compatible, offline).

Import from here; provider modules load their SDKs only when `build_provider` asks for them.
"""

from __future__ import annotations

from shared.agents.llm import (
    DEFAULT_MODELS,
    AgentFailed,
    Completion,
    LLMProvider,
    Message,
    ProviderOutputInvalid,
    build_provider,
    default_models,
    resolve_provider_name,
)
from shared.agents.manager import plan_goal, review_output, summarize
from shared.agents.runner import AgentResult
from shared.agents.schemas import (
    CriterionVerdict,
    Plan,
    PlannedMember,
    PlannedTask,
    Review,
    StepOutput,
    Summary,
    TaskBrief,
    TaskOutcome,
)
from shared.agents.worker import execute_step

__all__ = [
    "DEFAULT_MODELS",
    "AgentFailed",
    "AgentResult",
    "Completion",
    "CriterionVerdict",
    "LLMProvider",
    "Message",
    "Plan",
    "PlannedMember",
    "PlannedTask",
    "ProviderOutputInvalid",
    "Review",
    "StepOutput",
    "Summary",
    "TaskBrief",
    "TaskOutcome",
    "build_provider",
    "default_models",
    "execute_step",
    "plan_goal",
    "resolve_provider_name",
    "review_output",
    "summarize",
]
