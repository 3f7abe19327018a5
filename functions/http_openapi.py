"""`GET /api/openapi.json`: generated from the route table and the pydantic models, so it cannot drift."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from functions.http_common import ROUTES, Request, RouteSpec, api
from functions.http_health import VERSION

bp = df.Blueprint()

_PROBLEM = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}
_ERRORS = {
    "400": "Malformed JSON or bad query parameter",
    "401": "Missing, invalid or expired token",
    "404": "Not found (or another company's)",
    "409": "State conflict",
    "413": "Body larger than 1 MiB",
    "422": "Invalid body",
    "429": "Rate limited",
    "503": "A dependency is down",
}


def _collect_models(routes: list[RouteSpec]) -> list[type[BaseModel]]:
    models: list[type[BaseModel]] = []
    for spec in routes:
        for candidate in (spec.body, spec.response):
            inner = getattr(candidate, "__args__", (candidate,))
            for model in inner:
                if isinstance(model, type) and issubclass(model, BaseModel) and model not in models:
                    models.append(model)
    return models


def _schema_ref(annotation: Any) -> dict[str, Any]:
    if annotation is None:
        return {}
    args = getattr(annotation, "__args__", None)
    if args and getattr(annotation, "__origin__", None) is list:
        return {"type": "array", "items": _schema_ref(args[0])}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {"$ref": f"#/components/schemas/{annotation.__name__}"}
    return TypeAdapter(annotation).json_schema()


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.get("$defs", {})
    params = []
    for name, prop in schema.get("properties", {}).items():
        if "$ref" in prop:
            prop = defs[prop["$ref"].split("/")[-1]]
        params.append({"name": name, "in": "query", "required": name in schema.get("required", []),
                       "schema": prop})
    return params


def build_openapi() -> dict[str, Any]:
    _, defs = models_json_schema(
        [(m, "validation" if m in {r.body for r in ROUTES} else "serialization") for m in _collect_models(ROUTES)],
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Any]] = {}
    for spec in ROUTES:
        op: dict[str, Any] = {"operationId": spec.name, "summary": spec.summary, "tags": [spec.tag]}
        params = [{"name": p, "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
                  for p in spec.path_params]
        if spec.query is not None:
            params += _query_parameters(spec.query)
        if params:
            op["parameters"] = params
        if spec.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _schema_ref(spec.body)}}}
        success: dict[str, Any] = {"description": "OK"}
        if spec.response is not None:
            success["content"] = {"application/json": {"schema": _schema_ref(spec.response)}}
        responses: dict[str, Any] = {str(spec.status): success}
        codes = ["400", "422", "413", "429", "503"] if spec.body else ["400", "429", "503"]
        if spec.auth:
            codes += ["401", "404", "409"]
        for code in sorted(set(codes)):
            problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
            responses[code] = {"description": _ERRORS[code], "content": {"application/problem+json": problem}}
        if spec.name == "health":
            responses["503"] = {"description": "A required dependency is down",
                                "content": {"application/json": {"schema": _schema_ref(spec.response)}}}
        if spec.auth:
            op["security"] = [{"bearerAuth": []}]
        paths.setdefault(spec.path, {})[spec.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Ghost Pirates API", "version": VERSION,
                 "description": "Teams of AI agents: plan, execute, review, with budgets, audit and real time."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": {**defs.get("$defs", {}), "Problem": _PROBLEM},
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


@api(bp, "GET", "/api/openapi.json", summary="This API's OpenAPI 3.1 description", tag="operations", auth=False)
async def openapi(request: Request, _: None) -> dict[str, Any]:
    return build_openapi()
