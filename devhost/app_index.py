"""Load `function_app.py` and index its functions the way the Functions host does at startup.

`FunctionApp.get_functions()` may be called only once (a second call raises "not a unique function
name", see shared/protocols/DURABLE_BACKEND.md §6), so the list it returns is kept here and handed
to everyone who needs it (HTTP routing, timers, the Durable backend).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.functions.decorators.function_app import Function
from azure.functions.decorators.utils import StringifyEnumJsonEncoder

from devhost.timespan import parse_timespan

__all__ = [
    "AppIndex",
    "AppLoadError",
    "FunctionEntry",
    "HostSettings",
    "HttpTriggerInfo",
    "TimerTriggerInfo",
    "index_functions",
    "load_app",
    "read_host_settings",
]

DURABLE_TRIGGERS = frozenset({"orchestrationTrigger", "activityTrigger", "entityTrigger"})


class AppLoadError(RuntimeError):
    """The app dir does not hold a loadable v2-model function app."""


@dataclass(frozen=True)
class HostSettings:
    """The parts of host.json that change how devhost serves the app."""

    route_prefix: str
    hub_name: str | None
    #: seconds each function may run (host.json `functionTimeout`); None when unbounded ("-1")
    function_timeout: float | None = None

    @property
    def path_prefix(self) -> str:
        """The URL path prefix of HTTP triggers: '/api' for routePrefix 'api', '' for none."""
        prefix = self.route_prefix.strip("/")
        return f"/{prefix}" if prefix else ""


@dataclass(frozen=True)
class HttpTriggerInfo:
    route: str
    methods: tuple[str, ...] | None
    auth_level: str


@dataclass(frozen=True)
class TimerTriggerInfo:
    schedule: str
    run_on_startup: bool
    use_monitor: bool | None


@dataclass(frozen=True)
class FunctionEntry:
    """One indexed function: its trigger, bindings (as function.json dicts) and user code."""

    name: str
    trigger_type: str
    trigger_name: str
    bindings: tuple[dict[str, Any], ...]
    user_function: Callable[..., Any]
    http: HttpTriggerInfo | None
    timer: TimerTriggerInfo | None
    durable_client_names: tuple[str, ...]


@dataclass(frozen=True)
class AppIndex:
    """Every function of the app; `functions` is the one list get_functions() returned."""

    functions: tuple[Function, ...]
    entries: tuple[FunctionEntry, ...]

    @property
    def http(self) -> tuple[FunctionEntry, ...]:
        return tuple(e for e in self.entries if e.http is not None)

    @property
    def timers(self) -> tuple[FunctionEntry, ...]:
        return tuple(e for e in self.entries if e.timer is not None)

    @property
    def uses_durable(self) -> bool:
        """True when the app has orchestrations/activities/entities or a durable client binding."""
        return any(e.trigger_type in DURABLE_TRIGGERS or e.durable_client_names for e in self.entries)

    @property
    def unserved(self) -> tuple[FunctionEntry, ...]:
        """Functions whose trigger devhost does not fire (queue, blob, ...)."""
        served = DURABLE_TRIGGERS | {"httpTrigger", "timerTrigger"}
        return tuple(e for e in self.entries if e.trigger_type not in served)


#: The host's `functionTimeout` when host.json sets none (v4 outside the Consumption plan: 30 min).
DEFAULT_FUNCTION_TIMEOUT = "00:30:00"


def read_host_settings(app_dir: Path) -> HostSettings:
    """Route prefix (default 'api'), Durable hub name and functionTimeout from host.json."""
    path = app_dir / "host.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    extensions = data.get("extensions") or {}
    prefix = (extensions.get("http") or {}).get("routePrefix", "api")
    hub = (extensions.get("durableTask") or {}).get("hubName")
    return HostSettings(
        route_prefix=str(prefix),
        hub_name=str(hub) if hub else None,
        function_timeout=_function_timeout(data.get("functionTimeout", DEFAULT_FUNCTION_TIMEOUT)),
    )


def _function_timeout(value: object) -> float | None:
    """Seconds of host.json's `functionTimeout`; "-1" (or null) means no limit, as on the host."""
    if value is None or str(value).strip() == "-1":
        return None
    try:
        seconds = parse_timespan(str(value)).total_seconds()
    except ValueError as exc:
        raise AppLoadError(f"host.json functionTimeout: {exc}") from exc
    if seconds <= 0:
        raise AppLoadError(f"host.json functionTimeout must be positive or -1, got {value!r}")
    return seconds


def load_app(app_dir: Path, *, module_name: str = "function_app") -> Any:
    """Import `<app_dir>/function_app.py` and return its `app`.

    The caller puts app_dir on sys.path when the app imports its own packages (DevHost does).
    `module_name` is its name in sys.modules: tests load sample apps under other names so that
    they never shadow the real `function_app`.
    """
    script = app_dir / "function_app.py"
    if not script.exists():
        raise AppLoadError(f"{script} does not exist")
    spec = importlib.util.spec_from_file_location(module_name, script)
    if spec is None or spec.loader is None:
        raise AppLoadError(f"cannot import {script}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    app = getattr(module, "app", None)
    if app is None or not callable(getattr(app, "get_functions", None)):
        raise AppLoadError(f"{script} defines no `app` with get_functions() (a func.FunctionApp)")
    return app


def _entry(function: Function) -> FunctionEntry:
    bindings = tuple(json.loads(raw) for raw in function.get_raw_bindings())
    trigger = function.get_trigger()
    if trigger is None:
        raise AppLoadError(f"function {function.get_function_name()} has no trigger")
    trigger_json = json.dumps(trigger.get_dict_repr(), cls=StringifyEnumJsonEncoder)
    trigger_dict: dict[str, Any] = json.loads(trigger_json)
    name = function.get_function_name() or function.get_user_function().__name__
    http: HttpTriggerInfo | None = None
    timer: TimerTriggerInfo | None = None
    if trigger_dict["type"] == "httpTrigger":
        methods = trigger_dict.get("methods")
        http = HttpTriggerInfo(
            route=trigger_dict.get("route") or name,
            methods=tuple(str(m).upper() for m in methods) if methods else None,
            auth_level=str(trigger_dict.get("authLevel", "function")).lower(),
        )
    elif trigger_dict["type"] == "timerTrigger":
        timer = TimerTriggerInfo(
            schedule=str(trigger_dict["schedule"]),
            run_on_startup=bool(trigger_dict.get("runOnStartup")),
            use_monitor=trigger_dict.get("useMonitor"),
        )
    return FunctionEntry(
        name=name,
        trigger_type=str(trigger_dict["type"]),
        trigger_name=str(trigger_dict["name"]),
        bindings=bindings,
        user_function=function.get_user_function(),
        http=http,
        timer=timer,
        durable_client_names=tuple(b["name"] for b in bindings if b["type"] == "durableClient"),
    )


def index_functions(app: Any) -> AppIndex:
    """Call `app.get_functions()` (once, ever) and index the result."""
    functions = tuple(app.get_functions())
    return AppIndex(functions=functions, entries=tuple(_entry(f) for f in functions))
