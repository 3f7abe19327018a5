"""Call a user function with its bindings, as the Python worker does.

Parameters are bound by name: the trigger's `name`, each `durableClient` binding (given the client
binding JSON, which azure-functions-durable's `durable_client_input` wrapper turns into a
`DurableOrchestrationClient`), `context` (a `func.Context`), and `func.Out` for a named HTTP output.
Coroutine functions run on the event loop; plain functions run in the host's thread pool, as the
worker runs them (PYTHON_THREADPOOL_THREAD_COUNT).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import azure.functions as func
from azure.functions._abc import RetryContext, TraceContext

from devhost.app_index import FunctionEntry

__all__ = ["BindingError", "InvocationContext", "Invoker", "OutValue"]

T = TypeVar("T")


class BindingError(RuntimeError):
    """A function parameter that devhost cannot bind (an unsupported binding type)."""


class _TraceContext(TraceContext):
    def __init__(self, trace_parent: str) -> None:
        self._trace_parent = trace_parent

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return self._trace_parent

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext(RetryContext):
    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> Any:
        return None


class InvocationContext(func.Context):
    """The `context` argument: invocation id, function name and directory, trace/retry context."""

    def __init__(self, function_name: str, function_directory: str) -> None:
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name
        self._function_directory = function_directory
        self._local = threading.local()
        self._local.invocation_id = self._invocation_id

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> TraceContext:
        trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
        return _TraceContext(f"00-{trace_id}-{span_id}-01")

    @property
    def retry_context(self) -> RetryContext:
        return _RetryContext()


class OutValue(func.Out[T], Generic[T]):
    """A `func.Out` parameter: the function sets it, the host reads it afterwards."""

    def __init__(self) -> None:
        self._value: T | None = None

    def set(self, val: T) -> None:
        self._value = val

    def get(self) -> T:
        return self._value  # type: ignore[return-value]


@dataclass(frozen=True)
class Invoker:
    """A prepared call plan for one function: which argument goes to which parameter."""

    entry: FunctionEntry
    is_async: bool
    client_params: tuple[str, ...]
    wants_context: bool
    out_param: str | None
    client_binding: str | None
    function_directory: str

    @classmethod
    def build(cls, entry: FunctionEntry, *, client_binding: str | None, app_dir: Path) -> Invoker:
        """Plan the call of `entry`; `client_binding` is the durable client JSON (None: no backend)."""
        fn = entry.user_function
        params = inspect.signature(fn).parameters
        outputs = [b for b in entry.bindings if b.get("direction") == "OUT"]
        out_names = {b["name"] for b in outputs if b["name"] != "$return"}
        in_names = {b["name"] for b in entry.bindings if b.get("direction") != "OUT"}
        unknown = in_names - {entry.trigger_name, *entry.durable_client_names}
        if unknown or len(out_names) > 1:
            types = sorted(b["type"] for b in entry.bindings if b["name"] in unknown | out_names)
            raise BindingError(f"function {entry.name}: devhost cannot serve bindings {types}")
        if entry.durable_client_names and client_binding is None:
            raise BindingError(f"function {entry.name} has a durable client binding but no backend runs")
        for name, param in params.items():
            known = name in in_names or name in out_names or name == "context"
            if not known and param.default is inspect.Parameter.empty and param.kind not in (
                inspect.Parameter.VAR_KEYWORD,
                inspect.Parameter.VAR_POSITIONAL,
            ):
                raise BindingError(f"function {entry.name}: parameter {name!r} matches no binding")
        out_param = next(iter(out_names), None)
        return cls(
            entry=entry,
            is_async=inspect.iscoroutinefunction(fn),
            client_params=entry.durable_client_names,
            wants_context="context" in params and "context" not in in_names,
            out_param=out_param if out_param in params else None,
            client_binding=client_binding,
            function_directory=str(app_dir),
        )

    async def invoke(self, trigger_value: Any, executor: Executor) -> Any:
        """Run the function with `trigger_value`; return its result (or the Out value it set)."""
        kwargs: dict[str, Any] = {self.entry.trigger_name: trigger_value}
        for name in self.client_params:
            kwargs[name] = self.client_binding
        if self.wants_context:
            kwargs["context"] = InvocationContext(self.entry.name, self.function_directory)
        out: OutValue[Any] | None = None
        if self.out_param is not None:
            out = kwargs[self.out_param] = OutValue()
        fn: Callable[..., Any] = self.entry.user_function
        if self.is_async:
            result = await fn(**kwargs)
        else:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(executor, functools.partial(fn, **kwargs))
        if out is not None and result is None:
            return out.get()
        return result
