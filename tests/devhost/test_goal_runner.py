"""`python -m devhost run "<goal>"`: the progress line, and a whole team run from the terminal."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import pytest

from devhost.goal_runner import progress_line
from tests.devhost.process import REPO


def test_progress_line_counts_tasks_and_shows_cost() -> None:
    team = {
        "status": "active",
        "spent_usd": "0.01234",
        "budget_usd": 2,
        "tasks": [
            {"status": "completed"},
            {"status": "completed"},
            {"status": "in_progress"},
            {"status": "review"},
            {"status": "pending"},
            {"status": "escalated"},
        ],
    }
    line = progress_line(team)
    assert line.startswith("active ")
    assert "[########----------------]" in line
    assert "2/6 done" in line and "2 running" in line and "1 planned" in line
    assert "1 failed/escalated" in line
    assert line.endswith("$0.0123 / $2.00")


def test_progress_line_before_planning_has_an_empty_bar() -> None:
    line = progress_line({"status": "planning", "spent_usd": None, "budget_usd": None, "tasks": []})
    assert "[------------------------]  0/0 done" in line and line.endswith("$0.0000")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
async def test_run_starts_a_devhost_and_follows_a_team_to_completion(tmp_path: Path) -> None:
    data = tmp_path / "data"
    argv = [sys.executable, "-m", "devhost", "run", "Write a haiku about pirates",
            "--port", str(_free_port()), "--data-dir", str(data), "--app-dir", str(REPO), "--timeout", "90"]
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "LLM_PROVIDER": "offline"},
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 150)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = output.decode()
    log = (data / "devhost.log").read_text() if (data / "devhost.log").exists() else ""
    assert process.returncode == 0, text + log
    assert "team completed" in text
    assert "done" in text and "$" in text


@pytest.mark.slow
async def test_run_with_tools_shows_a_worker_calling_the_reference_mcp_server_live(
        tmp_path: Path, migrated_database_url: str) -> None:
    if not (REPO / "tests" / "tools" / "node" / "node_modules" / ".bin" / "mcp-server-everything").exists():
        pytest.skip("the npm reference MCP server is not installed: npm ci in tests/tools/node (.ci/run does)")
    data = tmp_path / "data"
    argv = [sys.executable, "-m", "devhost", "run", "--tools", "everything.echo", "Say hello to the crew",
            "--workers", "1", "--port", str(_free_port()), "--data-dir", str(data), "--app-dir", str(REPO),
            "--timeout", "90"]
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "LLM_PROVIDER": "offline",
             "DATABASE_URL": migrated_database_url},
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 150)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    text = output.decode()
    assert process.returncode == 0, text
    assert 'tool  everything.echo({"message": ' in text and "requested" in text
    assert "tool  everything.echo succeeded in" in text and ": Echo: " in text
    assert "team completed" in text
