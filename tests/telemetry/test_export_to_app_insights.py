"""End to end: configure_telemetry with the real Azure Monitor distro, in a child process,
exporting to a local ingestion endpoint that answers like Application Insights (v2.1/track)."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

REPO = Path(__file__).resolve().parents[2]

CHILD = r"""
import logging, sys
from opentelemetry import metrics, trace
from opentelemetry._logs import get_logger_provider
from shared.telemetry import bind_log_context, configure_logging, configure_telemetry, llm_call_span

configure_logging("INFO")
assert configure_telemetry(sys.argv[1])
assert configure_telemetry(sys.argv[1])  # idempotent
with bind_log_context(request_id="req-42", team_id="team-9"):
    with llm_call_span("anthropic", "claude-test") as call:
        call.input_tokens, call.output_tokens, call.cost_usd = 7, 3, 0.25
    logging.getLogger("ghost.child").warning(
        "login with password=hunter2-long", extra={"api_key": "sk-ant-abcdefghijklmnopqrstuv"}
    )
for provider in (trace.get_tracer_provider(), get_logger_provider(), metrics.get_meter_provider()):
    provider.force_flush()
"""


async def test_spans_metrics_and_redacted_logs_reach_application_insights(tmp_path):
    envelopes: list[dict[str, Any]] = []

    async def track(request: web.Request) -> web.Response:
        if not request.path.endswith("/v2.1/track"):
            return web.json_response({"error": "unexpected path"}, status=404)
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        items = json.loads(body)
        envelopes.extend(items)
        return web.json_response({"itemsReceived": len(items), "itemsAccepted": len(items), "errors": []})

    app = web.Application()
    # The exporter joins the endpoint and path with a double slash; accept any path here.
    app.router.add_post("/{path:.*}", track)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",  # no calls to Microsoft endpoints
        "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "otel",  # no Azure VM metadata probe
    }
    connection_string = (
        f"InstrumentationKey=00000000-0000-0000-0000-000000000001;IngestionEndpoint=http://127.0.0.1:{port}/"
    )
    try:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            connection_string,
            env=env,
            cwd=str(tmp_path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(child.communicate(), timeout=60)
    finally:
        await runner.cleanup()

    assert child.returncode == 0, stderr.decode()[-2000:]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for envelope in envelopes:
        by_type.setdefault(envelope["data"]["baseType"], []).append(envelope["data"]["baseData"])

    (span,) = [d for d in by_type["RemoteDependencyData"] if d["name"] == "llm.call"]
    assert span["properties"]["gen_ai.request.model"] == "claude-test"
    assert span["properties"]["gen_ai.usage.input_tokens"] == "7"
    assert span["properties"]["ghost_pirates.llm.cost_usd"] == "0.25"

    metric_names = {m["name"] for d in by_type["MetricData"] for m in d["metrics"]}
    assert {
        "gen_ai.client.input_tokens",
        "gen_ai.client.output_tokens",
        "ghost_pirates.llm.cost",
    } <= metric_names

    (log,) = [d for d in by_type["MessageData"] if "login" in d["message"]]
    assert log["message"] == "login with password=[REDACTED]"
    assert log["properties"]["api_key"] == "[REDACTED]"
    exported = json.dumps(envelopes)
    assert "hunter2" not in exported and "sk-ant-" not in exported
    assert "Request URL" not in exported  # the exporter's own HTTP logs are not exported back

    stderr_lines = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
    (stderr_log,) = [line for line in stderr_lines if line["logger"] == "ghost.child"]
    assert stderr_log["request_id"] == "req-42" and stderr_log["team_id"] == "team-9"
