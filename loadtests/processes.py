"""Child processes of a benchmark: a devhost on a seeded database, the bare baselines, their RSS."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from loadtests.accounts import PASSWORD, user_email

REPO = Path(__file__).resolve().parents[1]
_API_LINE = re.compile(r"API\s+(http://\S+?)/api\s*$")
T = TypeVar("T")


def rss_mib(pid: int) -> float:
    """Resident set size of a process (MiB), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclass
class Devhost:
    process: asyncio.subprocess.Process
    base_url: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_mib(self) -> float:
        return rss_mib(self.pid)

    async def health_details(self) -> dict[str, Any]:
        """`/api/health` shows its counters only with a token: log in as the first seeded user."""
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as client:
            login = await client.post("/api/auth/login", json={"email": user_email(0, 0), "password": PASSWORD})
            login.raise_for_status()
            response = await client.get("/api/health", headers={"Authorization": f"Bearer {login.json()['token']}"})
        details: dict[str, Any] = response.json().get("details", {})
        return details


def free_port() -> int:
    """A loopback TCP port free now (for a child that must keep its port across restarts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_listening(port: int, seconds: float) -> None:
    """Until something accepts connections on the loopback `port` (TimeoutError after `seconds`)."""
    async with asyncio.timeout(seconds):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return


async def stop_process(process: asyncio.subprocess.Process | None, grace: float = 20) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; nothing if it has exited (or never started)."""
    if process is None or process.returncode is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), grace)
    except TimeoutError:
        process.kill()
        await process.wait()


@contextlib.asynccontextmanager
async def devhost(database_url: str, work_dir: Path, *, env: dict[str, str] | None = None,
                  start_seconds: float = 90) -> AsyncIterator[Devhost]:
    """`python -m devhost serve` on free loopback ports; yields once its banner says it is ready."""
    work_dir.mkdir(parents=True, exist_ok=True)
    log_path = work_dir / "devhost.log"
    full_env = {k: v for k, v in os.environ.items() if k not in ("WEBPUBSUB_CONNECTION_STRING",)}
    full_env.update({"DATABASE_URL": database_url, "PYTHONPATH": str(REPO), **(env or {})})
    argv = [sys.executable, "-m", "devhost", "serve", "--port", "0", "--pubsub-port", "0", "--data-dir",
            str(work_dir / "data"), "--app-dir", str(REPO)]
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(*argv, cwd=REPO, env=full_env,
                                                       stdout=asyncio.subprocess.PIPE, stderr=log)
    try:
        base_url = await _banner_url(process, start_seconds, log_path)
        yield Devhost(process, base_url, log_path)
    finally:
        await stop_process(process)


async def first_line(process: asyncio.subprocess.Process, match: Callable[[bytes], T | None], seconds: float,
                     exited: Callable[[int | None], str]) -> T:
    """What `match` makes of the first line of the child's stdout it accepts (not None); a
    RuntimeError with `exited(returncode)` if the child exits first, TimeoutError after `seconds`."""
    assert process.stdout is not None
    async with asyncio.timeout(seconds):
        while True:
            raw = await process.stdout.readline()
            if not raw:
                await process.wait()
                raise RuntimeError(exited(process.returncode))
            found = match(raw)
            if found is not None:
                return found


async def _banner_url(process: asyncio.subprocess.Process, seconds: float, log_path: Path) -> str:
    def api_url(raw: bytes) -> str | None:
        found = _API_LINE.search(raw.decode())
        return found.group(1) if found else None

    url = await first_line(process, api_url, seconds,
                           lambda code: f"devhost exited {code}:\n{log_path.read_text()[-3000:]}")
    assert process.stdout is not None
    # Keep draining stdout so the child never blocks on a full pipe.
    asyncio.get_running_loop().create_task(_drain(process.stdout))
    return url


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


@dataclass
class Child:
    process: asyncio.subprocess.Process
    port: int

    @property
    def pid(self) -> int:
        return self.process.pid


@contextlib.asynccontextmanager
async def child(*argv: str, start_seconds: float = 30) -> AsyncIterator[Child]:
    """A child that prints its port on the first line (the baselines) and stops on SIGTERM."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, *argv, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    try:
        port = int(await asyncio.wait_for(process.stdout.readline(), start_seconds))
        yield Child(process, port)
    finally:
        await stop_process(process, grace=10)


async def run_command(argv: list[str], *, seconds: float, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run a command to completion within `seconds`; return its exit code and combined output."""
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(process.communicate(), seconds)
    except TimeoutError:
        process.kill()
        out, _ = await process.communicate()
        return -9, out.decode(errors="replace") + f"\n(killed after {seconds:.0f}s)"
    return process.returncode or 0, out.decode(errors="replace")


async def team_completed(http: httpx.AsyncClient, auth: dict[str, str], team_id: str,
                         seconds: float) -> dict[str, Any]:
    """Poll the team over the API until it ends: the final team if `completed`, else an error."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        response = await http.get(f"/api/teams/{team_id}", headers=auth)
        response.raise_for_status()
        team: dict[str, Any] = response.json()
        if team["status"] in ("completed", "failed", "cancelled"):
            if team["status"] != "completed":
                raise RuntimeError(f"team {team_id} ended {team['status']}")
            return team
        await asyncio.sleep(0.5)
    raise TimeoutError(f"team {team_id} did not finish in {seconds:.0f} s")
