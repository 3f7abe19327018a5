"""A backend + management API in its own process, for the crash test: prints READY <keyed rpcBaseUrl>.

Arguments: DSN LEASE_SECONDS [HOST_ID]."""

from __future__ import annotations

import asyncio
import json
import sys

from devhost.durable import DurableBackend

from .conftest import serve
from .sample_app import FUNCTIONS


async def main(dsn: str, lease_seconds: float, host_id: str | None) -> None:
    backend = DurableBackend(dsn, FUNCTIONS, lease_seconds=lease_seconds, activity_concurrency=4, host_id=host_id)
    await backend.start()
    _, served, rpc = await serve(backend)
    # The binding's rpcBaseUrl carries this process's system key.
    print("READY", json.loads(backend.client_binding(rpc))["rpcBaseUrl"], flush=True)
    await served


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None))
