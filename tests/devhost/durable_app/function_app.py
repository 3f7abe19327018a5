"""A Durable Functions app: an HTTP starter with a durable client, an orchestrator, an activity."""
# mypy: disable-error-code="untyped-decorator,no-any-return"

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="start/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = await client.start_new("hello_orchestrator", None, req.route_params["name"])
    return client.create_check_status_response(req, instance_id)


@app.route(route="status/{id}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    found = await client.get_status(req.route_params["id"])
    runtime = found.runtime_status.value if found.runtime_status else None
    return func.HttpResponse(json.dumps({"runtimeStatus": runtime, "output": found.output}))


@app.orchestration_trigger(context_name="context")
def hello_orchestrator(context: df.DurableOrchestrationContext) -> Generator[Any, Any, str]:
    name = context.get_input()
    greeting: str = yield context.call_activity("say_hello", name)
    return greeting


@app.activity_trigger(input_name="name")
def say_hello(name: str) -> str:
    return f"Hello {name}"
