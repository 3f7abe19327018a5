"""Logs, traces and metrics: one redacted JSON line per log record on stderr, request-scoped
context from contextvars, and OpenTelemetry (Application Insights) only when it is configured.

Log fields: ``ts, level, logger, msg, request_id, team_id, task_id, instance_id`` plus a
record's extras. Anything that looks like a credential is replaced by ``[REDACTED]`` before any
handler sees it: the redaction filter is attached to every root handler, including the
OpenTelemetry one, so secrets reach neither stderr nor Application Insights.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import IO, TYPE_CHECKING, Any

from opentelemetry import metrics, trace
from opentelemetry.trace import Status, StatusCode

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

__all__ = [
    "CONTEXT_FIELDS",
    "REDACTED",
    "JsonLogFormatter",
    "LlmCall",
    "LlmTelemetry",
    "RedactingFilter",
    "bind_log_context",
    "configure_logging",
    "configure_telemetry",
    "get_log_context",
    "llm_call_span",
    "redact",
    "redact_value",
]

REDACTED = "[REDACTED]"
CONTEXT_FIELDS = ("request_id", "team_id", "task_id", "instance_id")

_log_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "ghost_pirates_log_context", default=MappingProxyType({})
)


@contextmanager
def bind_log_context(**fields: object) -> Iterator[None]:
    """Add fields (e.g. request_id, team_id) to every log line inside the block; None unbinds."""
    current = dict(_log_context.get())
    for name, value in fields.items():
        if value is None:
            current.pop(name, None)
        else:
            current[name] = str(value)
    token = _log_context.set(current)
    try:
        yield
    finally:
        _log_context.reset(token)


def get_log_context() -> dict[str, str]:
    """The fields bound in the current context (a copy)."""
    return dict(_log_context.get())


# --- redaction -------------------------------------------------------------------------------

# Field names whose values are secrets whatever they look like.
_SECRET_KEY = re.compile(
    r"(?i)(pass(word|wd)?|secret|token|api[_-]?key|authorization|auth[_-]?header|cookie|"
    r"connection[_-]?string|access[_-]?key|account[_-]?key|signing[_-]?keys?|private[_-]?key|credential)"
)

# Values that look like secrets wherever they appear in text.
_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization: Bearer <token> / Basic <b64>
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/]+=*"), r"\1 " + REDACTED),
    # JSON Web Tokens (header.payload.signature, base64url)
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), REDACTED),
    # Connection-string keys: AccessKey=, AccountKey=, SharedAccessKey=, Password=, sig= ...
    (
        re.compile(
            r"(?i)\b(AccessKey|AccountKey|SharedAccessKey|SharedAccessSignature|Password|Pwd|sig|"
            r"client_secret|InstrumentationKey)=([^;&\s\"']+)"
        ),
        r"\1=" + REDACTED,
    ),
    # "password": "...", password: ..., api_key=... in free text
    (
        re.compile(
            r"(?i)([\"']?\b(?:password|passwd|secret|api[_-]?key|token)[\"']?\s*[:=]\s*)"
            r"(\"[^\"]*\"|'[^']*'|[^\s,;}&]+)"
        ),
        r"\1" + REDACTED,
    ),
    # Credentials in URLs: scheme://user:password@host
    (re.compile(r"([a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@/\s]+@"), r"\1" + REDACTED + "@"),
    # Provider API keys: Anthropic sk-ant-..., OpenAI sk-..., sk-proj-...
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), REDACTED),
)


def _replacer(template: str) -> Callable[[re.Match[str]], str]:
    """`\\1`-style templates as plain functions (the C code would import `re` to expand them)."""
    parts = re.split(r"\\(\d)", template)

    def expand(match: re.Match[str]) -> str:
        return "".join(match.group(int(p)) or "" if i % 2 else p for i, p in enumerate(parts))

    return expand


# Function replacements, built once: a string template makes the C code import `re` on every call,
# which fails for log lines written during interpreter shutdown (late "unclosed session" warnings).
_REDACTORS = tuple((pattern, _replacer(template)) for pattern, template in _SECRET_PATTERNS)


def redact(text: str) -> str:
    """Replace anything in text that looks like a credential."""
    for pattern, replace in _REDACTORS:
        text = pattern.sub(replace, text)
    return text


def redact_value(value: Any, key: str | None = None) -> Any:
    """Redact a log field: secret-named keys entirely, strings by pattern, containers deeply."""
    if key is not None and _SECRET_KEY.search(key) and value not in (None, ""):
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {str(k): redact_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v) for v in value]
    return value


_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName", "_gp_redacted"}
)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS and not k.startswith("_")}


class RedactingFilter(logging.Filter):
    """Redacts a record in place (message, args, extras, exception text) once, before any
    handler formats or exports it; always lets the record through."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_gp_redacted", False):
            return True
        record.msg = redact(record.getMessage())
        record.args = None
        for key, value in _extras(record).items():
            setattr(record, key, redact_value(value, key))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            # The exception object may carry a secret in its message; only redacted text goes on
            # (exc_text for standard formatters, the "exc" attribute for exporters).
            record.exc_text = redact(record.exc_text)
            record.exc_info = None
            record.exc = record.exc_text
        record._gp_redacted = True
        return True


class JsonLogFormatter(logging.Formatter):
    """One JSON object per record with the context fields always present (null when unbound)."""

    def format(self, record: logging.LogRecord) -> str:
        context = get_log_context()
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for name in CONTEXT_FIELDS:
            line[name] = context.get(name)
        for name, value in context.items():
            line.setdefault(name, value)
        for key, value in _extras(record).items():
            if key not in ("ts", "level", "logger", "msg"):
                line[key] = redact_value(value, key)
        exc_text = record.exc_text
        if record.exc_info and not exc_text:
            exc_text = self.formatException(record.exc_info)
        if exc_text and "exc" not in line:
            line["exc"] = redact(exc_text)
        return json.dumps(line, default=str, ensure_ascii=False)


_CHATTY_LIBRARY_LOGGERS = (
    "azure.core.pipeline.policies.http_logging_policy",
    "azure.monitor.opentelemetry.exporter",
    "azure.identity",
)


class _JsonStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marker type so configure_logging replaces its own handler and leaves others alone."""


def configure_logging(level: str = "INFO", *, stream: IO[str] | None = None) -> logging.Handler:
    """Send every log record as one redacted JSON line to stderr (or ``stream``). Idempotent:
    a second call replaces the handler it installed, as it replaces a plain stderr console
    handler; handlers of the Functions worker or of OpenTelemetry stay, and get the redaction
    filter too."""
    root = logging.getLogger()
    for existing in list(root.handlers):
        # Our own earlier handler, or a plain console handler on stderr (a local host's
        # basicConfig), would print every line twice.
        plain_stderr = type(existing) is logging.StreamHandler and existing.stream in (sys.stderr, sys.__stderr__)
        if isinstance(existing, _JsonStderrHandler) or plain_stderr:
            root.removeHandler(existing)
    handler = _JsonStderrHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # The Azure SDK logs every HTTP request at INFO, including the telemetry exporter's own
    # uploads, which would then be exported in turn; keep those loggers at WARNING.
    for name in _CHATTY_LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    _redact_all_root_handlers()
    return handler


def _redact_all_root_handlers() -> None:
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


# --- OpenTelemetry ---------------------------------------------------------------------------

_telemetry_lock = threading.Lock()
_telemetry_configured = False


def configure_telemetry(connection_string: str | None, *, credential: TokenCredential | None = None) -> bool:
    """Export traces, metrics and logs to Application Insights when a connection string is set;
    returns whether telemetry is on. Idempotent. In Azure pass the managed identity as
    ``credential`` (local auth is disabled on the Application Insights resource)."""
    global _telemetry_configured
    if not connection_string:
        return False
    with _telemetry_lock:
        if _telemetry_configured:
            return True
        # Imported here: the distro is heavy and unused when telemetry is off.
        from azure.monitor.opentelemetry import configure_azure_monitor

        options: dict[str, Any] = {"connection_string": connection_string}
        if credential is not None:
            options["credential"] = credential
        configure_azure_monitor(**options)
        _telemetry_configured = True
    _redact_all_root_handlers()
    return True


@dataclass
class LlmCall:
    """Filled in by the caller inside ``llm_call_span``; recorded when the block exits."""

    provider: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


class LlmTelemetry:
    """Spans and counters for LLM calls. Without configured providers the OpenTelemetry API
    hands out non-recording spans and no-op instruments, so the cost is a few calls."""

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self._tracer = trace.get_tracer(__name__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(__name__, meter_provider=meter_provider)
        self._input_tokens = meter.create_counter(
            "gen_ai.client.input_tokens", unit="{token}", description="Prompt tokens sent to LLMs"
        )
        self._output_tokens = meter.create_counter(
            "gen_ai.client.output_tokens", unit="{token}", description="Completion tokens received"
        )
        self._cost = meter.create_counter(
            "ghost_pirates.llm.cost", unit="USD", description="Cost of LLM calls in US dollars"
        )
        self._calls = meter.create_counter("ghost_pirates.llm.calls", unit="{call}", description="LLM calls")

    @contextmanager
    def span(self, provider: str, model: str) -> Iterator[LlmCall]:
        call = LlmCall(provider=provider, model=model)
        attributes = {"gen_ai.system": provider, "gen_ai.request.model": model}
        with self._tracer.start_as_current_span(
            "llm.call",
            kind=trace.SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            outcome = "ok"
            try:
                yield call
            except BaseException as exc:
                outcome = "error"
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise
            finally:
                span.set_attributes(
                    {
                        "gen_ai.usage.input_tokens": call.input_tokens,
                        "gen_ai.usage.output_tokens": call.output_tokens,
                        "ghost_pirates.llm.cost_usd": call.cost_usd,
                    }
                )
                labels = {**attributes, "outcome": outcome}
                self._input_tokens.add(call.input_tokens, labels)
                self._output_tokens.add(call.output_tokens, labels)
                self._cost.add(call.cost_usd, labels)
                self._calls.add(1, labels)


_default_llm_telemetry: LlmTelemetry | None = None


@contextmanager
def llm_call_span(provider: str, model: str) -> Iterator[LlmCall]:
    """Trace one LLM call; set ``input_tokens``, ``output_tokens`` and ``cost_usd`` on the
    yielded object. Uses the global OpenTelemetry providers (set by configure_telemetry)."""
    global _default_llm_telemetry
    if _default_llm_telemetry is None:
        _default_llm_telemetry = LlmTelemetry()
    with _default_llm_telemetry.span(provider, model) as call:
        yield call
