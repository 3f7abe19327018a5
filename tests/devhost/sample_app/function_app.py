"""A small v2-model function app that exercises what devhost must host faithfully."""

from __future__ import annotations

import asyncio
import json
import os
import threading

import azure.functions as func
from azure.functions.timer import TimerRequest

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

#: Timer invocations seen by this process: (past_due, schedule_status).
TIMER_CALLS: list[tuple[bool, dict[str, object]]] = []
#: How many /api/slow requests have started (lets a test know one is in flight).
SLOW_STARTED: list[float] = []


def _describe(req: func.HttpRequest) -> dict[str, object]:
    return {
        "method": req.method,
        "url": req.url,
        "headers": dict(req.headers),
        "params": dict(req.params),
        "route_params": dict(req.route_params),
        "body": req.get_body().decode("utf-8", "replace"),
        "thread": threading.current_thread().name,
    }


@app.route(route="echo/{id}", methods=["GET", "POST", "PUT"])
async def echo(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(_describe(req)), mimetype="application/json")


@app.route(route="sync/{name:alpha}", methods=["POST"])
def sync_echo(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(_describe(req)),
        status_code=201,
        headers={"X-Custom": "yes", "Location": f"/api/sync/{req.route_params['name']}"},
        mimetype="application/json",
    )


@app.route(route="json", methods=["POST"])
async def json_echo(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"got": req.get_json()}), mimetype="application/json")


@app.route(route="cookies", methods=["GET"])
def cookies(req: func.HttpRequest) -> func.HttpResponse:
    response = func.HttpResponse("two cookies", status_code=202, charset="utf-8")
    response.headers.add("Set-Cookie", "a=1; Path=/")
    response.headers.add("Set-Cookie", "b=2; Path=/")
    return response


@app.route(route="bytes", methods=["GET"])
def binary(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(bytes(range(256)), mimetype="application/octet-stream")


@app.route(route="text", methods=["GET"])
def text(req: func.HttpRequest) -> str:
    return "plain text é"


@app.route(route="nothing", methods=["DELETE"])
async def nothing(req: func.HttpRequest) -> None:
    return None


@app.route(route="boom", methods=["GET"])
async def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("secret internals: password=hunter2")


@app.route(route="sync-boom", methods=["GET"])
def sync_boom(req: func.HttpRequest) -> func.HttpResponse:
    raise ValueError("sync secret internals")


@app.route(route="slow", methods=["GET"])
async def slow(req: func.HttpRequest) -> func.HttpResponse:
    SLOW_STARTED.append(asyncio.get_running_loop().time())
    await asyncio.sleep(float(req.params.get("seconds", "1")))
    return func.HttpResponse("done")


@app.route(route="slow/started", methods=["GET"])
async def slow_started(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(str(len(SLOW_STARTED)))


@app.route(route="files/{*path}", methods=["GET"])
async def files(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(dict(req.route_params)), mimetype="application/json")


@app.route(route="items/{id:guid}", methods=["GET"])
async def item_by_guid(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("guid " + req.route_params["id"])


@app.route(route="items/{name}", methods=["GET"])
async def item_by_name(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("name " + req.route_params["name"])


@app.route(route="optional/{x?}", methods=["GET"])
async def optional(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(dict(req.route_params)), mimetype="application/json")


@app.function_name("renamed")
@app.route(route="context")
async def with_context(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    body = {"function_name": context.function_name, "invocation_id": context.invocation_id}
    return func.HttpResponse(json.dumps(body), mimetype="application/json")


@app.route(route="settings", methods=["GET"])
async def settings(req: func.HttpRequest) -> func.HttpResponse:
    names = ("DATABASE_URL", "WEBPUBSUB_CONNECTION_STRING")
    return func.HttpResponse(json.dumps({n: os.environ.get(n) for n in names}), mimetype="application/json")


@app.timer_trigger(schedule="* * * * * *", arg_name="timer", run_on_startup=True)
def every_second(timer: TimerRequest) -> None:
    TIMER_CALLS.append((timer.past_due, dict(timer.schedule_status)))
