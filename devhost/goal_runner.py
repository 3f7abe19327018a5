"""`python -m devhost run "<goal>"`: give a goal to a team from the terminal and watch it work.

Talks to the public API only (shared/API.md): login, `POST /api/teams`, `POST /api/teams/{id}/start`,
then `GET /api/teams/{id}` and `GET /api/teams/{id}/messages` every ~0.5 s until the team reaches a
final status, printing the progress line and each agent message (the plan, steps, reviews, the
summary) as they come; and, over Web PubSub (`POST /api/realtime/negotiate`), each model call's text
as it is written (`llm.delta`). Starts a devhost subprocess when none answers at the URL (with
`--local-model`, one serving the tiny local model), and stops it afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
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
    local_model: bool = False
    stream: bool = True  #: print the models' text as it is written (needs the Web PubSub negotiate endpoint)


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
    if run.local_model:
        argv.append("--local-model")
    log_path = run.data_dir / "devhost.log"
    run.data_dir.mkdir(parents=True, exist_ok=True)
    out.write(f"starting devhost on {url} (log: {log_path})\n")
    if run.local_model:
        out.write("with the local model: SmolLM2-135M-Instruct on llama.cpp, a tiny model (weak answers, real wire)\n")
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


async def _login(client: httpx.AsyncClient, run: GoalRun) -> str:
    email, password = run.email, run.password
    if not (email and password):
        remembered = load_demo_login(run.data_dir)
        if remembered is None:
            raise RunError("no --email/--password given and no demo login remembered in the data dir")
        email, password = remembered
    body = _check(await client.post("/api/auth/login", json={"email": email, "password": password}), "login")
    return str(body["token"])


class _Printer:
    """Lines of the run, and the models' text as it streams, without the two garbling each other."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.streaming: str | None = None  #: the call whose text is being printed

    def line(self, text: str) -> None:
        self.end_stream()
        self.out.write(text + "\n")
        self.out.flush()

    def delta(self, who: str, call_id: str, text: str, final: bool) -> None:
        if self.streaming != call_id:
            self.end_stream()
            self.out.write(f"  … {who} writing: ")
            self.streaming = call_id
        self.out.write(text.replace("\n", " "))
        self.out.flush()
        if final:
            self.end_stream()

    def end_stream(self) -> None:
        if self.streaming is not None:
            self.out.write("\n")
            self.streaming = None


def _message_line(message: dict[str, Any]) -> str:
    content = str(message.get("content") or "")
    return f"[{message.get('sender', '?')}] " + content.replace("\n", "\n    ")


async def _follow_deltas(http: httpx.AsyncClient, team_id: str, printer: _Printer, names: dict[str, str]) -> None:
    """Print `llm.delta` text from Web PubSub until cancelled; quietly nothing when real time is off."""
    import websockets

    response = await http.post("/api/realtime/negotiate", json={"team_id": team_id})
    if response.status_code != 200:
        return
    access = response.json()
    async with websockets.connect(access["url"], subprotocols=["json.webpubsub.azure.v1"],  # type: ignore[list-item]
                                  open_timeout=10) as ws:
        for number, group in enumerate(access.get("groups") or [f"team_{team_id}"], start=1):
            await ws.send(json.dumps({"type": "joinGroup", "group": group, "ackId": number}))
        async for frame in ws:
            message = json.loads(frame)
            data = message.get("data") if message.get("type") == "message" else None
            if isinstance(data, dict) and data.get("type") == "llm.delta":
                who = names.get(str(data.get("member_id")), "an agent")
                printer.delta(who, str(data.get("call_id")), str(data.get("text") or ""), bool(data.get("final")))


async def _watch(http: httpx.AsyncClient, run: GoalRun, team_id: str, out: TextIO) -> dict[str, Any]:
    printer = _Printer(out)
    names: dict[str, str] = {}
    deltas: asyncio.Task[None] | None = None
    if run.stream:
        deltas = asyncio.create_task(_follow_deltas(http, team_id, printer, names))
    deadline = time.monotonic() + run.timeout_seconds
    last, seen, after = "", set[str](), ""
    escalations: set[str] = set()
    seen_seq = 0
    try:
        while True:
            team: dict[str, Any] = _check(await http.get(f"/api/teams/{team_id}"), "reading the team")
            if run.tools:  # the tool calls, live, from the team's event stream
                events = _check(await http.get(f"/api/teams/{team_id}/events", params={"after_seq": seen_seq}),
                                "events")
                seen_seq = max([seen_seq, *(int(e["seq"]) for e in events)])
                for tool_line in tool_lines(events):
                    printer.line(tool_line)
            for escalation in _check(await http.get("/api/escalations", params={"team_id": team_id}), "escalations"):
                if escalation["id"] not in escalations:
                    escalations.add(escalation["id"])
                    printer.line(f"[needs a human: {escalation.get('failure_type')}] {escalation.get('reason')} "
                                 f"(resolve: POST /api/escalations/{escalation['id']}/resolve)")
            names.update({str(m["id"]): str(m["name"]) for m in team.get("members") or []})
            params: dict[str, str] = {"after": after} if after else {}
            for message in _check(await http.get(f"/api/teams/{team_id}/messages", params=params), "messages"):
                if message["id"] not in seen:
                    seen.add(message["id"])
                    after = message["created_at"]
                    printer.line(_message_line(message))
            line = progress_line(team)
            if line != last:
                printer.line(line)
                last = line
            if team.get("status") in FINAL_STATUSES:
                return team
            if time.monotonic() > deadline:
                raise RunError(f"the team did not finish within {run.timeout_seconds:.0f}s")
            await asyncio.sleep(run.poll_seconds)
    finally:
        printer.end_stream()
        if deltas is not None:
            deltas.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError, ValueError, httpx.HTTPError):
                await deltas


def _tool_servers(url: str, token: str, run: GoalRun) -> list[subprocess.Popen[bytes]]:
    """Register (or start) the servers the allow-list needs (devhost/tool_servers.py, a sync client)."""
    with httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as client:
        try:
            return ensure_servers(client, run.tools, run.tool_servers, run.app_dir, run.data_dir / "tool-servers.log")
        except ToolSetupError as exc:
            raise RunError(str(exc)) from None


async def _run_team(run: GoalRun, url: str, out: TextIO, helpers: list[subprocess.Popen[bytes]]) -> int:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        token = await _login(http, run)
        http.headers["Authorization"] = f"Bearer {token}"
        if run.tools or run.tool_servers:
            helpers.extend(await asyncio.to_thread(_tool_servers, url, token, run))
        request: dict[str, Any] = {"goal": run.goal}
        if run.tools:
            request["tools"] = run.tools
        if run.budget_usd is not None:
            request["budget_usd"] = run.budget_usd
        if run.workers is not None:
            request["workers"] = run.workers
        elif run.local_model:
            request["workers"] = 1  # the tiny model's profile: one worker, two tasks (devhost/local_model.py)
        team = _check(await http.post("/api/teams", json=request), "creating the team")
        out.write(f"team {team['id']}: {team.get('name') or run.goal}\n")
        _check(await http.post(f"/api/teams/{team['id']}/start"), "starting the team")
        final = await _watch(http, run, str(team["id"]), out)
        out.write(f"\nteam {final['status']}; cost ${float(final.get('spent_usd') or 0):.4f}\n")
        result = final.get("result")
        if result is not None:
            out.write((result if isinstance(result, str) else json.dumps(result, indent=2)) + "\n")
        return 0 if final["status"] == "completed" else 1


def run_goal(run: GoalRun, out: TextIO = sys.stdout) -> int:
    """Run the goal to the end; exit code 0 when the team completed."""
    process: subprocess.Popen[bytes] | None = None
    url = (run.url or "").rstrip("/")
    if not url:
        candidate = f"http://127.0.0.1:{run.port}"
        if _answers(candidate):
            url = candidate
        else:
            process, url = _start_devhost(run, out)
    helpers: list[subprocess.Popen[bytes]] = []
    try:
        return asyncio.run(_run_team(run, url, out, helpers))
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
