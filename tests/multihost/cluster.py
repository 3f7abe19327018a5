"""Several devhost processes on one PostgreSQL, one Redis and one standalone Web PubSub emulator,
behind no balancer: what `docs/devhost.md` ("Several hosts") describes, started from a test."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tests.devhost.process import REPO, DevhostProcess, spawn_devhost


@dataclass
class Emulator:
    """`python -m devhost.pubsub --port 0 --data-dir D`: it creates the key file the hosts read."""

    process: asyncio.subprocess.Process
    data_dir: Path
    connection_string: str

    @property
    def url(self) -> str:
        return self.connection_string.split(";", 1)[0].removeprefix("Endpoint=")

    @classmethod
    async def start(cls, data_dir: Path) -> Emulator:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "devhost.pubsub", "--port", "0", "--data-dir", str(data_dir), cwd=REPO,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode().strip()
        assert line.startswith("Endpoint=http://"), f"the emulator printed {line!r}"
        return cls(process, data_dir, line)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


@dataclass
class Cluster:
    emulator: Emulator
    database_url: str
    hosts: dict[str, DevhostProcess] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return self.hosts[name].base_url

    def kill(self, name: str) -> None:
        os.kill(self.hosts[name].process.pid, signal.SIGKILL)

    def pause(self, name: str) -> None:
        os.kill(self.hosts[name].process.pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        os.kill(self.hosts[name].process.pid, signal.SIGCONT)

    async def stop(self) -> None:
        for host in self.hosts.values():
            if host.process.returncode is None:
                with_signal = signal.SIGCONT  # a paused host must run to handle SIGTERM
                os.kill(host.process.pid, with_signal)
                host.process.terminate()
        for host in self.hosts.values():
            try:
                await host.wait_exit(30)
            except TimeoutError:
                await host.kill()
        await self.emulator.stop()


async def start_cluster(tmp_path: Path, database_url: str, names: tuple[str, ...], *, lease_seconds: float,
                        env: dict[str, str]) -> Cluster:
    """The emulator, then every host at once, each with its own data dir holding the emulator's key."""
    emulator = await Emulator.start(tmp_path / "pubsub")
    cluster = Cluster(emulator, database_url)
    try:
        spawns = []
        for name in names:
            home = tmp_path / name
            (home / "data").mkdir(parents=True)
            shutil.copy(emulator.data_dir / "pubsub.key", home / "data" / "pubsub.key")
            spawns.append(spawn_devhost(
                REPO, home, env={"DATABASE_URL": database_url, **env}, start_seconds=120,
                extra=("--pubsub-url", emulator.url, "--lease-seconds", f"{lease_seconds:g}")))
        for name, host in zip(names, await asyncio.gather(*spawns), strict=True):
            cluster.hosts[name] = host
    except BaseException:
        await cluster.stop()
        raise
    return cluster


def orphaned_claims(database_url: str, seconds: float) -> set[tuple[str, str]]:
    """Durable claims nobody renews for `seconds`: those of a host that is paused or dead.

    A live host renews its claims every third of the lease, so a claim whose token and expiry are
    unchanged after half a lease belongs to a host that stopped. Returned as (table, id)."""
    query = ("SELECT 'activities', id::text, lease_token::text, lease_expires FROM durable.activities"
             " WHERE lease_token IS NOT NULL UNION ALL"
             " SELECT 'instances', instance_id, lease_token::text, lease_expires FROM durable.instances"
             " WHERE lease_token IS NOT NULL")
    with psycopg.connect(database_url, autocommit=True) as conn:
        before = {(r[0], r[1]): (r[2], r[3]) for r in conn.execute(query)}
        conn.execute("SELECT pg_sleep(%s)", (seconds,))
        after = {(r[0], r[1]): (r[2], r[3]) for r in conn.execute(query)}
    return {key for key, claim in before.items() if after.get(key) == claim}
