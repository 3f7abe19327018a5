"""LLM call spans and counters, the cheap path when telemetry is off, and configure_telemetry."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, cast

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from shared import telemetry
from shared.telemetry import LlmTelemetry, configure_telemetry, llm_call_span

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential


@pytest.fixture
def recorded():
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield LlmTelemetry(tracer_provider=tracer_provider, meter_provider=meter_provider), exporter, reader
    tracer_provider.shutdown()
    meter_provider.shutdown()


def counter_points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    assert data is not None
    points: dict[str, list[Any]] = {}
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                points[metric.name] = list(metric.data.data_points)
    return points


def test_tokens_and_cost_become_span_attributes_and_counters(recorded):
    llm, exporter, reader = recorded

    for _ in range(2):
        with llm.span("anthropic", "claude-sonnet-4") as call:
            call.input_tokens = 1200
            call.output_tokens = 300
            call.cost_usd = 0.0081

    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["llm.call", "llm.call"]
    attrs = spans[0].attributes
    assert attrs["gen_ai.system"] == "anthropic"
    assert attrs["gen_ai.request.model"] == "claude-sonnet-4"
    assert attrs["gen_ai.usage.input_tokens"] == 1200
    assert attrs["gen_ai.usage.output_tokens"] == 300
    assert attrs["ghost_pirates.llm.cost_usd"] == pytest.approx(0.0081)

    points = counter_points(reader)
    assert points["gen_ai.client.input_tokens"][0].value == 2400
    assert points["gen_ai.client.output_tokens"][0].value == 600
    assert points["ghost_pirates.llm.cost"][0].value == pytest.approx(0.0162)
    assert points["ghost_pirates.llm.calls"][0].value == 2
    assert dict(points["ghost_pirates.llm.calls"][0].attributes)["outcome"] == "ok"


def test_failed_call_is_an_error_span_and_still_counts_its_tokens(recorded):
    llm, exporter, reader = recorded

    with pytest.raises(TimeoutError), llm.span("openai", "gpt-4o-mini") as call:
        call.input_tokens = 50
        raise TimeoutError("provider timed out")

    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.events[0].name == "exception"
    points = counter_points(reader)
    assert points["gen_ai.client.input_tokens"][0].value == 50
    assert dict(points["ghost_pirates.llm.calls"][0].attributes)["outcome"] == "error"


def test_llm_call_span_is_cheap_when_telemetry_is_off():
    started = time.perf_counter()
    for _ in range(5000):
        with llm_call_span("offline", "offline-1") as call:
            call.input_tokens = 1
    per_call = (time.perf_counter() - started) / 5000

    assert call.input_tokens == 1
    assert per_call < 200e-6  # well under a millisecond, in practice a few microseconds


def test_telemetry_stays_off_without_a_connection_string(monkeypatch):
    def must_not_run(**kwargs):
        raise AssertionError("configure_azure_monitor called without a connection string")

    monkeypatch.setattr("azure.monitor.opentelemetry.configure_azure_monitor", must_not_run)

    assert configure_telemetry(None) is False
    assert configure_telemetry("") is False


def test_configure_telemetry_configures_azure_monitor_once(monkeypatch):
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr("azure.monitor.opentelemetry.configure_azure_monitor", lambda **kw: calls.append(kw))
    monkeypatch.setattr(telemetry, "_telemetry_configured", False)
    credential = cast("TokenCredential", object())

    assert configure_telemetry(
        "InstrumentationKey=00000000-0000-0000-0000-000000000000", credential=credential
    )
    assert configure_telemetry("InstrumentationKey=00000000-0000-0000-0000-000000000000")

    assert len(calls) == 1
    assert calls[0]["credential"] is credential
