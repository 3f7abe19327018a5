"""A backend + management API in its own process, for the crash test: prints READY <keyed rpcBaseUrl>."""

from __future__ import annotations

import asyncio
import json
import sys

from devhost.durable import DurableBackend

from .conftest import serve
from .sample_app import FUNCTIONS


async def main(dsn: str, lease_seconds: float) -> None:
    backend = DurableBackend(dsn, FUNCTIONS, lease_seconds=lease_seconds, activity_concurrency=4)
    await backend.start()
    _, served, rpc = await serve(backend)
    # The binding's rpcBaseUrl carries this process's system key.
    print("READY", json.loads(backend.client_binding(rpc))["rpcBaseUrl"], flush=True)
    await served


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
