# mypy: disable-error-code="misc,untyped-decorator"
"""Locust scenarios of the original plan, headless and bounded from the command line.

    locust -f loadtests/locustfile.py --headless -H http://127.0.0.1:7071 -u 100 -r 10 -t 60s ApiUser

User classes (pick them by name; the seeded population comes from GP_LOAD_COMPANIES and
GP_LOAD_USERS_PER_COMPANY, see `loadtests.accounts`):
- `ApiUser`: log in once, then the seed's read mix with 1-2 s think time;
- `ApiNoThinkUser`: the same mix without think time (the saturation variant);
- `DbHeavyUser`: `teams?include=members,tasks`, `tasks?status=active&limit=50`, `audit?limit=100`,
  tagged `teams_include`, `active_tasks`, `audit` (select with `--tags`);
- `WebSocketUser`: negotiate, connect with `json.webpubsub.azure.v1`, join a team group, hold
  (GP_WS_HOLD_SECONDS, default 30) while counting messages, then again;
- `TeamRunnerUser`: creates a team with `auto_start` and follows it to a final status (the writer
  side of the mixed scenario; run it beside `ApiUser`; GP_RUNNERS fixes how many).
With GP_LOAD_RESULTS set, every sample is written there as JSON when locust quits, so the
benchmark computes exact percentiles instead of locust's rounded ones.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from typing import Any

import websocket
from locust import FastHttpUser, between, constant, events, tag, task

from loadtests.accounts import PASSWORD, Population

_emails = itertools.cycle(Population.from_env().emails())
_addresses = itertools.count(1)
_samples: list[tuple[str, float, bool, str]] = []
TERMINAL = {"completed", "failed", "cancelled"}
RECENT_TEAMS = int(os.environ.get("GP_RECENT_TEAMS", "10"))


@events.request.add_listener
def _record(name: str, response_time: float, exception: BaseException | None, **_: Any) -> None:
    if os.environ.get("GP_LOAD_RESULTS"):
        _samples.append((name, response_time, exception is None, "" if exception is None else str(exception)[:200]))


@events.quitting.add_listener
def _dump(**_: Any) -> None:
    path = os.environ.get("GP_LOAD_RESULTS")
    if path:
        with open(path, "w", encoding="utf-8") as out:
            json.dump(_samples, out)


class _Authenticated(FastHttpUser):
    """Logs in once; each virtual user has its own client address, as real users do."""

    abstract = True
    token = ""
    team_ids: list[str]

    def on_start(self) -> None:
        n = next(_addresses)
        self.address = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
        self.team_ids = []
        with self.client.post("/api/auth/login", json={"email": next(_emails), "password": PASSWORD},
                              headers={"X-Forwarded-For": self.address}, name="POST /api/auth/login",
                              catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"login {response.status_code}")
                return
            self.token = response.json()["token"]

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "X-Forwarded-For": self.address}

    def get(self, path: str, name: str) -> Any:
        with self.client.get(path, headers=self.headers(), name=name, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}")
                return None
            return response.json() if name == "GET /api/teams" else True

    def team(self) -> str | None:
        if not self.team_ids:
            teams = self.get("/api/teams", "GET /api/teams")
            self.team_ids = [t["id"] for t in teams or []]
        # A user follows a handful of recent teams (the top of the list), as a dashboard does.
        return random.choice(self.team_ids[:RECENT_TEAMS]) if self.team_ids else None


class ApiUser(_Authenticated):
    """The seed's read mix: list teams, team detail, team tasks, active tasks, audit 100."""

    wait_time = between(1, 2)

    @task(3)
    def list_teams(self) -> None:
        teams = self.get("/api/teams", "GET /api/teams")
        if teams:
            self.team_ids = [t["id"] for t in teams]

    @task(3)
    def team_detail(self) -> None:
        team_id = self.team()
        if team_id:
            self.get(f"/api/teams/{team_id}", "GET /api/teams/{id}")

    @task(2)
    def team_tasks(self) -> None:
        team_id = self.team()
        if team_id:
            self.get(f"/api/teams/{team_id}/tasks", "GET /api/teams/{id}/tasks")

    @task(1)
    def active_tasks(self) -> None:
        self.get("/api/tasks?status=active&limit=50", "GET /api/tasks?status=active")

    @task(1)
    def audit(self) -> None:
        self.get("/api/audit?limit=100", "GET /api/audit?limit=100")


class ApiNoThinkUser(ApiUser):
    wait_time = constant(0)


class DbHeavyUser(_Authenticated):
    wait_time = between(0.5, 1)

    @tag("teams_include")
    @task
    def teams_include(self) -> None:
        self.get("/api/teams?include=members,tasks", "GET /api/teams?include=members,tasks")

    @tag("active_tasks")
    @task
    def active_tasks(self) -> None:
        self.get("/api/tasks?status=active&limit=50", "GET /api/tasks?status=active")

    @tag("audit")
    @task
    def audit(self) -> None:
        self.get("/api/audit?limit=100", "GET /api/audit?limit=100")


class TeamRunnerUser(_Authenticated):
    """Creates a team that starts at once and polls it until it ends: one sample per team run."""

    wait_time = constant(1)
    fixed_count = int(os.environ.get("GP_RUNNERS", "0"))
    timeout = float(os.environ.get("GP_TEAM_TIMEOUT", "300"))

    @task
    def run_team(self) -> None:
        goal = random.choice(("Build a web scraper for product prices", "Write a market analysis of e-bikes",
                              "Design an onboarding email sequence"))
        started = time.perf_counter()
        with self.client.post("/api/teams", json={"goal": goal, "workers": 2, "auto_start": True},
                              headers=self.headers(), name="POST /api/teams", catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code}")
                return
            team_id = response.json()["id"]
        status = "planning"
        while time.perf_counter() - started < self.timeout:
            self.wait()
            with self.client.get(f"/api/teams/{team_id}", headers=self.headers(), name="GET /api/teams/{id} (runner)",
                                 catch_response=True) as response:
                if response.status_code != 200:
                    response.failure(f"{response.status_code}")
                    continue
                status = response.json()["status"]
            if status in TERMINAL:
                break
        elapsed = (time.perf_counter() - started) * 1000
        error = None if status == "completed" else RuntimeError(f"team ended {status}")
        events.request.fire(request_type="TEAM", name="team run (create to completed)", response_time=elapsed,
                            response_length=0, exception=error, context={})


class WebSocketUser(_Authenticated):
    """A dashboard watching a team: negotiate, join `team_<id>`, hold, count messages."""

    wait_time = constant(0)
    hold = float(os.environ.get("GP_WS_HOLD_SECONDS", "30"))

    @task
    def watch(self) -> None:
        team_id = self.team()
        started = time.perf_counter()
        with self.client.post("/api/realtime/negotiate", json={"team_id": team_id}, headers=self.headers(),
                              name="POST /api/realtime/negotiate", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}")
                return
            url = response.json()["url"]
        ws = websocket.create_connection(url, subprotocols=["json.webpubsub.azure.v1"], timeout=5)
        events.request.fire(request_type="WS", name="connect", response_time=(time.perf_counter() - started) * 1000,
                            response_length=0, exception=None, context={})
        try:
            ws.send(json.dumps({"type": "joinGroup", "group": f"team_{team_id}", "ackId": 1}))
            end = time.monotonic() + self.hold
            while time.monotonic() < end:
                try:
                    frame = ws.recv()
                except websocket.WebSocketTimeoutException:
                    continue
                message = json.loads(frame)
                if message.get("type") == "ack":
                    failed = None if message.get("success") else RuntimeError(str(message.get("error")))
                    events.request.fire(request_type="WS", name="joinGroup ack", response_time=0,
                                        response_length=0, exception=failed, context={})
                elif message.get("type") == "message":
                    events.request.fire(request_type="WS", name="message", response_time=0,
                                        response_length=len(frame), exception=None, context={})
        finally:
            ws.close()
