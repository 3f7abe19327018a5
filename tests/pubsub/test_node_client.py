"""The official JS client (@azure/web-pubsub-client) against the emulator, driven through `node`."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

NODE_DIR = Path(__file__).parent / "node"


def _skip_reason() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not (NODE_DIR / "node_modules" / "@azure" / "web-pubsub-client").is_dir():
        return f"run `npm ci` in {NODE_DIR} to install @azure/web-pubsub-client"
    return None


@pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")
async def test_js_client_joins_echoes_is_refused_and_receives_rest_message(service):
    token = await service.get_client_access_token(
        user_id="js-user", roles=["webpubsub.joinLeaveGroup.team_js", "webpubsub.sendToGroup.team_js"]
    )
    node = await asyncio.create_subprocess_exec(
        "node", "client_roundtrip.mjs", cwd=NODE_DIR, env={**os.environ, "PUBSUB_CLIENT_URL": token["url"]},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert node.stdout is not None
    try:
        async with asyncio.timeout(25):
            assert (await node.stdout.readline()).strip() == b"READY"
            await service.send_to_group("team_js", {"from": "python"})
            line = (await node.stdout.readline()).decode()
            await node.wait()
    finally:
        if node.returncode is None:
            node.kill()
            await node.wait()
    stderr = (await node.stderr.read()).decode() if node.stderr else ""
    assert node.returncode == 0, stderr
    assert line.startswith("RESULT "), line + stderr
    result = json.loads(line.removeprefix("RESULT "))
    assert result["userId"] == "js-user" and result["connectionId"]
    assert result["echoed"] == [{"group": "team_js", "data": {"hello": "js"}, "fromUserId": "js-user"}]
    assert result["fromServer"] == {"dataType": "json", "data": {"from": "python"}}
    assert result["forbidden"] == "Forbidden"
