"""`python -m devhost run "<goal>"`: give a goal to a team from the terminal and watch it work.

Talks to the public HTTP API only (shared/API.md): login, `POST /api/teams`, `POST
/api/teams/{id}/start`, then `GET /api/teams/{id}` every ~0.5 s until the team reaches a final
status. Starts a devhost subprocess when none answers at the URL, and stops it afterwards.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

from devhost.banner import load_demo_login
from devhost.tool_servers import ToolSetupError, ensure_servers, tool_lines

__all__ = ["GoalRun", "RunError", "progress_line", "run_goal"]

FINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
RUNNING_TASKS = frozenset({"assigned", "in_progress", "review", "revision_requested"})
_BAR_WIDTH = 24


class RunError(RuntimeError):
    """The goal could not be run (no devhost, login refused, API error)."""


@dataclass
class GoalRun:
    goal: str
    url: str | None = None
    email: str | None = None
    password: str | None = None
    budget_usd: float | None = None
    workers: int | None = None
    tools: list[str] = field(default_factory=list)  #: the team's allow-list, `<server>.<tool>`
    tool_servers: dict[str, str] = field(default_factory=dict)  #: servers to register: name -> URL
    data_dir: Path = Path(".devhost")
    app_dir: Path = Path(".")
    port: int = 7071
    poll_seconds: float = 0.5
    timeout_seconds: float = 3600.0
    start_timeout_seconds: float = 120.0


def progress_line(team: dict[str, Any]) -> str:
    """One status line: team status, task counts, a bar of completed tasks, cost so far."""
    tasks: list[dict[str, Any]] = team.get("tasks") or []
    counts = Counter(str(t.get("status")) for t in tasks)
    total = len(tasks)
    done = counts["completed"]
    running = sum(counts[s] for s in RUNNING_TASKS)
    failed = counts["failed"] + counts["escalated"]
    filled = int(_BAR_WIDTH * done / total) if total else 0
    bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
    spent = float(team.get("spent_usd") or 0)
    budget = team.get("budget_usd")
    cost = f"${spent:.4f}" + (f" / ${float(budget):.2f}" if budget is not None else "")
    parts = [
        f"{team.get('status', '?'):<10}",
        f"[{bar}]",
        f"{done}/{total} done",
        f"{running} running",
        f"{counts['pending']} planned",
    ]
    if failed:
        parts.append(f"{failed} failed/escalated")
    parts.append(cost)
    return "  ".join(parts)


def _check(response: httpx.Response, what: str) -> Any:
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail") or response.json().get("title")
        except ValueError:
            detail = response.text[:200]
        raise RunError(f"{what} failed: HTTP {response.status_code} {detail}")
    return response.json()


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/health", timeout=2).status_code in (200, 503)
    except httpx.HTTPError:
        return False


def _start_devhost(run: GoalRun, out: TextIO) -> tuple[subprocess.Popen[bytes], str]:
    url = f"http://127.0.0.1:{run.port}"
    argv = [sys.executable, "-m", "devhost", "serve", "--port", str(run.port), "--pubsub-port", "0",
            "--data-dir", str(run.data_dir), "--app-dir", str(run.app_dir)]
    log_path = run.data_dir / "devhost.log"
    run.data_dir.mkdir(parents=True, exist_ok=True)
    out.write(f"starting devhost on {url} (log: {log_path})\n")
    with log_path.open("ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    deadline = time.monotonic() + run.start_timeout_seconds
    while not _answers(url):
        if process.poll() is not None:
            raise RunError(f"devhost exited with {process.returncode}; see {log_path}")
        if time.monotonic() > deadline:
            process.terminate()
            raise RunError(f"devhost did not answer within {run.start_timeout_seconds:.0f}s; see {log_path}")
        time.sleep(0.25)
    return process, url


def _login(client: httpx.Client, run: GoalRun) -> str:
    email, password = run.email, run.password
    if not (email and password):
        remembered = load_demo_login(run.data_dir)
        if remembered is None:
            raise RunError("no --email/--password given and no demo login remembered in the data dir")
        email, password = remembered
    body = _check(client.post("/api/auth/login", json={"email": email, "password": password}), "login")
    return str(body["token"])


def _watch(client: httpx.Client, run: GoalRun, team_id: str, out: TextIO) -> dict[str, Any]:
    interactive = out.isatty()
    deadline = time.monotonic() + run.timeout_seconds
    last = ""
    seen_seq = 0
    while True:
        team: dict[str, Any] = _check(client.get(f"/api/teams/{team_id}"), "reading the team")
        if run.tools:  # the tool calls, live, from the team's event stream
            events = _check(client.get(f"/api/teams/{team_id}/events", params={"after_seq": seen_seq}), "events")
            seen_seq = max([seen_seq, *(int(e["seq"]) for e in events)])
            for tool_line in tool_lines(events):
                out.write(("\r\033[K" if interactive else "") + tool_line + "\n")
                last = ""
        line = progress_line(team)
        if line != last:
            out.write(("\r" + line + "\033[K") if interactive else line + "\n")
            out.flush()
            last = line
        if team.get("status") in FINAL_STATUSES:
            if interactive:
                out.write("\n")
            return team
        if time.monotonic() > deadline:
            raise RunError(f"the team did not finish within {run.timeout_seconds:.0f}s")
        time.sleep(run.poll_seconds)


def run_goal(run: GoalRun, out: TextIO = sys.stdout) -> int:
    """Run the goal to the end; exit code 0 when the team completed."""
    process: subprocess.Popen[bytes] | None = None
    helpers: list[subprocess.Popen[bytes]] = []
    url = (run.url or "").rstrip("/")
    if not url:
        candidate = f"http://127.0.0.1:{run.port}"
        if _answers(candidate):
            url = candidate
        else:
            process, url = _start_devhost(run, out)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            token = _login(client, run)
            client.headers["Authorization"] = f"Bearer {token}"
            if run.tools or run.tool_servers:
                try:
                    helpers = ensure_servers(client, run.tools, run.tool_servers, run.app_dir,
                                             run.data_dir / "tool-servers.log")
                except ToolSetupError as exc:
                    raise RunError(str(exc)) from None
            request: dict[str, Any] = {"goal": run.goal}
            if run.tools:
                request["tools"] = run.tools
            if run.budget_usd is not None:
                request["budget_usd"] = run.budget_usd
            if run.workers is not None:
                request["workers"] = run.workers
            team = _check(client.post("/api/teams", json=request), "creating the team")
            out.write(f"team {team['id']}: {team.get('name') or run.goal}\n")
            _check(client.post(f"/api/teams/{team['id']}/start"), "starting the team")
            final = _watch(client, run, str(team["id"]), out)
            out.write(f"\nteam {final['status']}; cost ${float(final.get('spent_usd') or 0):.4f}\n")
            result = final.get("result")
            if result is not None:
                out.write((result if isinstance(result, str) else json.dumps(result, indent=2)) + "\n")
            return 0 if final["status"] == "completed" else 1
    finally:
        for helper in helpers:
            helper.terminate()
            helper.wait(timeout=10)
        if process is not None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
