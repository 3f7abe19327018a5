"""Fixtures of the devhost tests: the sample app served in-process by devhost's HTTP stack."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from devhost.app_index import AppIndex, index_functions, load_app, read_host_settings
from devhost.asgi import FunctionsHttpApp
from devhost.wiring import FunctionPlan, Listener, bind, plan_functions

SAMPLE_APP = Path(__file__).parent / "sample_app"
SAMPLE_MODULE = "devhost_sample_function_app"


@dataclass
class SampleHost:
    base_url: str
    client: httpx.AsyncClient
    index: AppIndex
    plan: FunctionPlan
    module: ModuleType
    executor: ThreadPoolExecutor


@pytest.fixture(scope="module")
async def sample_host() -> AsyncIterator[SampleHost]:
    """The sample app behind devhost's ASGI app and uvicorn, on a free loopback port."""
    index = index_functions(load_app(SAMPLE_APP, module_name=SAMPLE_MODULE))
    plan = plan_functions(index, client_binding=None, app_dir=SAMPLE_APP)
    executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="devhost-fn")
    http_app = FunctionsHttpApp(
        router=plan.router, path_prefix=read_host_settings(SAMPLE_APP).path_prefix, executor=executor
    )
    listener = Listener(http_app, bind("127.0.0.1", 0), grace=2)
    await listener.start()
    base_url = f"http://127.0.0.1:{listener.port}"
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        yield SampleHost(base_url, client, index, plan, sys.modules[SAMPLE_MODULE], executor)
    await listener.stop()
    executor.shutdown(wait=False)
