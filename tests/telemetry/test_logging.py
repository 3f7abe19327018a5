"""JSON log lines with request context, and redaction of anything that looks like a secret."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from typing import Any

import pytest

from shared import telemetry
from shared.telemetry import (
    REDACTED,
    RedactingFilter,
    bind_log_context,
    configure_logging,
    get_log_context,
)

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


@pytest.fixture
def log_stream():
    """configure_logging into a buffer; the root logger is restored afterwards."""
    root = logging.getLogger()
    saved_handlers = list(root.handlers)
    saved_filters = {h: list(h.filters) for h in saved_handlers}
    saved_level = root.level
    chatty = {name: logging.getLogger(name).level for name in telemetry._CHATTY_LIBRARY_LOGGERS}
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved_handlers
        for handler, filters in saved_filters.items():
            handler.filters[:] = filters
        root.setLevel(saved_level)
        for name, level in chatty.items():
            logging.getLogger(name).setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_each_record_is_one_json_line_with_context_fields(log_stream):
    log = logging.getLogger("ghost.test")
    with bind_log_context(request_id="req-1", team_id="team-7"):
        log.info("team %s started", "team-7", extra={"workers": 3})
    log.warning("outside")

    first, second = lines(log_stream)
    assert first["msg"] == "team team-7 started"
    assert first["level"] == "INFO"
    assert first["logger"] == "ghost.test"
    assert first["request_id"] == "req-1"
    assert first["team_id"] == "team-7"
    assert first["task_id"] is None and first["instance_id"] is None
    assert first["workers"] == 3
    assert first["ts"].endswith("+00:00")
    assert second["request_id"] is None and second["team_id"] is None


def test_nested_context_adds_fields_and_restores_on_exit():
    with bind_log_context(request_id="r"):
        with bind_log_context(task_id="t", instance_id="i"):
            assert get_log_context() == {"request_id": "r", "task_id": "t", "instance_id": "i"}
        with bind_log_context(request_id=None):
            assert get_log_context() == {}
        assert get_log_context() == {"request_id": "r"}
    assert get_log_context() == {}


async def test_concurrent_requests_keep_their_own_context():
    async def handle(request_id: str) -> str | None:
        with bind_log_context(request_id=request_id):
            await asyncio.sleep(0)
            return get_log_context().get("request_id")

    results = await asyncio.gather(*(handle(f"r{i}") for i in range(10)))
    assert results == [f"r{i}" for i in range(10)]


@pytest.mark.parametrize(
    ("message", "secret"),
    [
        ("calling with Authorization: Bearer abc.def-ghi_123", "abc.def-ghi_123"),
        (f"token was {JWT}", JWT),
        (
            "Endpoint=https://x.webpubsub.azure.com;AccessKey=c2VjcmV0a2V5PT0=;Version=1.0;",
            "c2VjcmV0a2V5PT0=",
        ),
        ("DefaultEndpointsProtocol=https;AccountName=st;AccountKey=bXlrZXk=;", "bXlrZXk="),
        ('body {"email": "a@b.c", "password": "hunter2-long"}', "hunter2-long"),
        ("login password=hunter2-long failed", "hunter2-long"),
        ("db postgresql://gpadmin:S3cr3t-pw@db.example.com:5432/app", "S3cr3t-pw"),
        ("redis rediss://:cacheKey123@cache.example.com:6380/0", "cacheKey123"),
        ("anthropic key sk-ant-api03-AbCdEfGhIjKlMnOpQrSt", "sk-ant-api03-AbCdEfGhIjKlMnOpQrSt"),
        ("openai key sk-proj-AbCdEfGhIjKlMnOpQrStUv", "sk-proj-AbCdEfGhIjKlMnOpQrStUv"),
        ("api_key: 'abcd1234efgh'", "abcd1234efgh"),
    ],
)
def test_secret_looking_values_never_reach_the_log_line(log_stream, message, secret):
    logging.getLogger("ghost.test").info(message)

    line = log_stream.getvalue()
    assert secret not in line
    assert REDACTED in line


def test_secret_named_extras_are_redacted_whatever_their_value(log_stream):
    logging.getLogger("ghost.test").info(
        "settings loaded",
        extra={
            "password": "plain",
            "api_key": "plain2",
            "config": {"OPENAI_API_KEY": "plain3", "model": "m"},
        },
    )

    (line,) = lines(log_stream)
    assert line["password"] == REDACTED
    assert line["api_key"] == REDACTED
    assert line["config"] == {"OPENAI_API_KEY": REDACTED, "model": "m"}


def test_exception_text_is_redacted(log_stream):
    try:
        raise RuntimeError("could not connect to postgresql://u:topsecret@h/db")
    except RuntimeError:
        logging.getLogger("ghost.test").exception("connect failed")

    (line,) = lines(log_stream)
    assert "RuntimeError" in line["exc"]
    assert "topsecret" not in json.dumps(line)


def test_other_root_handlers_receive_redacted_records(log_stream):
    seen: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    collector = Collect()
    root = logging.getLogger()
    root.addHandler(collector)
    try:
        configure_logging("DEBUG", stream=log_stream)  # attaches the filter to every root handler
        logging.getLogger("ghost.test").info("Bearer sekrit-token-value", extra={"token": "t0k"})
    finally:
        root.removeHandler(collector)

    assert any(isinstance(f, RedactingFilter) for f in collector.filters)
    assert seen[0].getMessage() == f"Bearer {REDACTED}"
    assert seen[0].__dict__["token"] == REDACTED


def test_configure_logging_twice_keeps_one_json_handler(log_stream):
    before = len(logging.getLogger().handlers)
    configure_logging("INFO", stream=log_stream)

    assert len(logging.getLogger().handlers) == before
    logging.getLogger("ghost.test").info("once")
    assert [line["msg"] for line in lines(log_stream)] == ["once"]
