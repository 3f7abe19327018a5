"""The screenshots of docs/dashboard.md, taken of a live run: `python -m tests.browser.screenshots`.

Starts a devhost on a fresh migrated database (offline LLM, slowed down so the run can be watched),
opens a team's page in Debian's Chromium, starts the team and captures the plan graph and the run
timeline mid-run and at the end, plus the teams list. Writes PNGs to docs/img/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx

from loadtests.bench_dashboard import _create_database, _drop_database
from loadtests.processes import devhost
from tests.browser.drivers import playwright_browser

REPO = Path(__file__).resolve().parents[2]
GOAL = "Build a web scraper for product prices"


async def _wait(http: httpx.AsyncClient, path: str, headers: dict[str, str], ready: Any, seconds: float) -> Any:
    async with asyncio.timeout(seconds):
        while True:
            data = (await http.get(path, headers=headers)).json()
            if ready(data):
                return data
            await asyncio.sleep(0.2)


async def shoot(out: Path, latency_ms: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    name, database_url = await asyncio.to_thread(_create_database)
    try:
        with tempfile.TemporaryDirectory(prefix="gp-shots-") as work:
            env = {"LLM_PROVIDER": "offline", "OFFLINE_LLM_LATENCY_MS": str(latency_ms), "TEAM_MAX_PARALLEL": "3"}
            async with devhost(database_url, Path(work), env=env) as host, \
                    httpx.AsyncClient(base_url=host.base_url, timeout=30) as http:
                registered = await http.post("/api/auth/register", json={
                    "company_name": "Black Pearl", "email": f"{uuid.uuid4().hex[:8]}@example.com",
                    "password": "correct horse battery", "full_name": "Anne Bonny"})
                registered.raise_for_status()
                session = registered.json()
                headers = {"Authorization": f"Bearer {session['token']}"}
                await http.post("/api/teams", headers=headers, json={"goal": "Chart the coast of Hispaniola",
                                                                     "name": "Chart the coast"})
                team = (await http.post("/api/teams", headers=headers, json={
                    "goal": GOAL, "name": "Price scraper", "budget_usd": 5, "workers": 3})).json()
                async with playwright_browser("chromium") as browser:
                    context = await browser.new_context(base_url=host.base_url, viewport={"width": 1280, "height": 900},
                                                        device_scale_factor=1)
                    await context.add_init_script(
                        f"sessionStorage.setItem('gp.session', {json.dumps(json.dumps(session))})")
                    page = await context.new_page()
                    await page.goto(f"/teams/{team['id']}")
                    await page.get_by_test_id("connection-status").filter(has_text="Connected").wait_for()
                    await http.post(f"/api/teams/{team['id']}/start", headers=headers)

                    def midway(t: dict[str, Any]) -> bool:
                        done = sum(task["status"] == "completed" for task in t["tasks"])
                        return bool(t["tasks"]) and 0 < done < len(t["tasks"]) - 1

                    await _wait(http, f"/api/teams/{team['id']}", headers, midway, 120)
                    await page.wait_for_timeout(600)  # the next animation frame and its redraw
                    await page.locator(".views").screenshot(path=str(out / "team-run-live.png"))
                    await _wait(http, f"/api/teams/{team['id']}", headers, lambda t: t["status"] == "completed", 180)
                    await page.get_by_test_id("status-badge").filter(has_text="completed").wait_for()
                    await page.wait_for_timeout(600)
                    await page.screenshot(path=str(out / "team-page.png"), full_page=True)
                    await page.locator(".views").screenshot(path=str(out / "team-run-done.png"))
                    await page.goto("/teams")
                    await page.locator(".team-card").first.wait_for()
                    await page.screenshot(path=str(out / "teams.png"))
                    await context.close()
    finally:
        await asyncio.to_thread(_drop_database, name)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.browser.screenshots", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    parser.add_argument("--latency-ms", type=int, default=700, help="offline LLM latency per call")
    args = parser.parse_args()
    asyncio.run(shoot(args.out, args.latency_ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
