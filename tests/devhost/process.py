"""Run `python -m devhost serve` as a subprocess and find its port from the banner."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_API_LINE = re.compile(r"API\s+(http://\S+?)/api\s*$")


@dataclass
class DevhostProcess:
    process: asyncio.subprocess.Process
    base_url: str
    banner: list[str] = field(default_factory=list)
    log_path: Path | None = None

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    async def wait_exit(self, seconds: float) -> int:
        return await asyncio.wait_for(self.process.wait(), seconds)

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


async def spawn_devhost(
    app_dir: Path,
    tmp_path: Path,
    *,
    env: dict[str, str],
    extra: tuple[str, ...] = (),
    start_seconds: float = 60,
) -> DevhostProcess:
    """Start devhost on free ports; return once its banner is printed (it is ready then)."""
    log_path = tmp_path / "devhost.log"
    argv = [sys.executable, "-m", "devhost", "serve", "--app-dir", str(app_dir), "--port", "0",
            "--pubsub-port", "0", "--data-dir", str(tmp_path / "data"), *extra]
    inherited = ("DATABASE_URL", "WEBPUBSUB_CONNECTION_STRING")
    full_env = {k: v for k, v in os.environ.items() if k not in inherited}
    full_env.update(env)
    full_env["PYTHONPATH"] = str(REPO)
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *argv, cwd=REPO, env=full_env, stdout=asyncio.subprocess.PIPE, stderr=log
        )
    assert process.stdout is not None
    banner: list[str] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + start_seconds
    while True:
        remaining = deadline - loop.time()
        try:
            raw = await asyncio.wait_for(process.stdout.readline(), max(0.1, remaining))
        except TimeoutError:
            process.kill()
            await process.wait()
            message = f"devhost printed no banner in {start_seconds}s:\n{log_path.read_text()}"
            raise AssertionError(message) from None
        if not raw:
            await process.wait()
            message = f"devhost exited {process.returncode} before its banner:\n{log_path.read_text()}"
            raise AssertionError(message)
        line = raw.decode().rstrip()
        banner.append(line)
        found = _API_LINE.search(line)
        if found:
            break
    # The rest of the banner follows at once; read it to its blank-line end without blocking on more.
    while True:
        try:
            raw = await asyncio.wait_for(process.stdout.readline(), 2)
        except TimeoutError:
            break
        if not raw.strip():
            break
        banner.append(raw.decode().rstrip())
    return DevhostProcess(process, found.group(1), banner, log_path)
