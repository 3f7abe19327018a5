"""The dashboard's weight and speed, measured in Chromium: `python -m loadtests.bench_dashboard`.

Starts a devhost on a fresh migrated database (offline LLM), registers a company, creates a team
and gives it 200 tasks straight in the database, then measures with headless Chromium (Debian's,
`/usr/bin/chromium`):

- bytes transferred (Resource Timing `transferSize`, gzip as served) for a cold load of every page
  kind: the document plus its scripts, styles and images; target < 100 KB;
- First Contentful Paint of a cold load (`first-contentful-paint` paint entry); target < 500 ms;
- time to interactive: when the page's content is rendered with its handlers attached (the app's
  `gp:page-ready` mark), the DOM is loaded, and no long task (> 50 ms) runs after; target < 1 s;
- render time of the 200-task team: from the in-app navigation (`gp:route-start`, the click) to
  the rendered page (`gp:team-rendered`: list, plan graph and run timeline), API round trip
  included; target < 300 ms;
- drawing the plan graph and the run timeline of those 200 tasks (20 dependency layers, every
  task started, most finished): the page's `gp:views` measure; target < 200 ms;
- the whole bundle: every file under `web/static/` plus the page, gzip as served; target < 500 KB.

Each figure is the median of `--runs` runs (fresh browser context each: no cache). Bounded: every
wait has a deadline and the whole run takes about 30 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from loadtests.processes import devhost
from shared.db.migrate import migrate_sync

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TASKS = 200
PASSWORD = "bench-dashboard-password"

# Registered before any page script: long tasks are not buffered for late observers.
OBSERVE_LONG_TASKS = """
window.__longTasks = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__longTasks.push(e.startTime + e.duration);
}).observe({ type: "longtask", buffered: true });
"""
COLLECT = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const fcp = performance.getEntriesByName("first-contentful-paint")[0];
  const ready = performance.getEntriesByName("gp:page-ready").pop();
  const resources = performance.getEntriesByType("resource")
    .filter((r) => ["script", "link", "css", "img", "other"].includes(r.initiatorType) && !r.name.includes("/api/"));
  const lastLong = Math.max(0, ...window.__longTasks);
  return {
    fcp: fcp ? fcp.startTime : null,
    ready: ready ? ready.startTime : null,
    dcl: nav.domContentLoadedEventEnd,
    lastLong,
    bytes: nav.transferSize + resources.reduce((sum, r) => sum + r.transferSize, 0),
    files: 1 + resources.length,
  };
}"""


@dataclass
class Load:
    fcp_ms: float
    tti_ms: float
    bytes: int
    files: int


def _create_database() -> tuple[str, str]:
    name = f"gp_bench_dash_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(ADMIN_URL, dbname=name)
    migrate_sync(url)
    return name, url


def _drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


LAYER = 10  # tasks per dependency layer: 200 tasks make a plan 20 layers deep


def _insert_tasks(database_url: str, team_id: str, count: int) -> None:
    """Tasks of every kind of status in a layered plan (each depends on two of the layer before), all
    started and most finished, written straight to the table (the plan would take minutes)."""
    ids = [str(uuid.uuid4()) for _ in range(count)]
    rows = []
    for i in range(count):
        status = ("completed", "completed", "failed", "review")[i % 4]
        layer, slot = divmod(i, LAYER)
        deps = [ids[(layer - 1) * LAYER + s] for s in {slot, (slot + 1) % LAYER}] if layer else []
        started = f"{(count - i) * 3 + 5} seconds"
        finished = f"{(count - i) * 3} seconds" if status != "review" else None
        rows.append((ids[i], f"t{i}", i, f"Task {i + 1}: survey bay number {i + 1}",
                     f"Chart the depth and hazards of bay {i + 1}.", json.dumps(["depths charted", "hazards named"]),
                     deps, status, started, finished, team_id))
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE teams SET status = 'active', started_at = now() - interval '20 minutes' WHERE id = %s",
                     (team_id,))
        worker = conn.execute("SELECT id FROM team_members WHERE team_id = %s AND role = 'worker' LIMIT 1",
                              (team_id,)).fetchone()
        conn.cursor().executemany(
            "INSERT INTO tasks (id, team_id, company_id, plan_key, position, title, description,"
            " acceptance_criteria, dependencies, status, assigned_to, started_at, completion_time)"
            " SELECT %s, t.id, t.company_id, %s, %s, %s, %s, %s::jsonb, %s::uuid[], %s, %s,"
            " now() - %s::interval, now() - %s::interval FROM teams t WHERE t.id = %s",
            [(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], worker[0] if worker else None, r[8], r[9], r[10])
             for r in rows])


async def _prepare(base_url: str, database_url: str) -> tuple[dict[str, Any], str]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        registered = await http.post("/api/auth/register", json={
            "company_name": "Bench", "email": f"{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD,
            "full_name": "Bench User"})
        registered.raise_for_status()
        session = registered.json()
        headers = {"Authorization": f"Bearer {session['token']}"}
        team = await http.post("/api/teams", headers=headers, json={"goal": "Survey every bay of the island",
                                                                    "budget_usd": 10})
        team.raise_for_status()
    team_id = str(team.json()["id"])
    await asyncio.to_thread(_insert_tasks, database_url, team_id, TASKS)
    return session, team_id


async def _cold_load(browser: Any, base_url: str, path: str, session: dict[str, Any] | None,
                     ready_selector: str) -> Load:
    context = await browser.new_context(base_url=base_url)
    try:
        await context.add_init_script(OBSERVE_LONG_TASKS)
        if session is not None:
            await context.add_init_script(f"sessionStorage.setItem('gp.session', {json.dumps(json.dumps(session))})")
        page = await context.new_page()
        await page.goto(path, wait_until="load", timeout=15_000)
        await page.wait_for_selector(ready_selector, timeout=15_000)
        # Function form: an expression string is re-run with eval() while it polls, which the CSP forbids.
        await page.wait_for_function("() => performance.getEntriesByName('gp:page-ready').length > 0",
                                     timeout=15_000)
        await page.wait_for_timeout(300)  # a window after ready, to catch a late long task or request
        figures = await page.evaluate(COLLECT)
    finally:
        await context.close()
    tti = max(figures["ready"] or 0, figures["dcl"], figures["lastLong"])
    return Load(figures["fcp"] or float("nan"), tti, int(figures["bytes"]), int(figures["files"]))


async def _team_render(browser: Any, base_url: str, session: dict[str, Any], team_id: str) -> tuple[float, float]:
    context = await browser.new_context(base_url=base_url)
    try:
        await context.add_init_script(f"sessionStorage.setItem('gp.session', {json.dumps(json.dumps(session))})")
        page = await context.new_page()
        await page.goto("/teams", timeout=15_000)
        await page.click(f'.team-card a[href="/teams/{team_id}"]', timeout=15_000)
        await page.wait_for_function(
            """(tasks) => document.querySelectorAll('.task-card').length === tasks
                && document.querySelectorAll('.plan-graph .node').length === tasks
                && document.querySelectorAll('.run-timeline .bar').length === tasks
                && performance.getEntriesByName('gp:team-rendered').length > 0""", arg=TASKS, timeout=15_000)
        took = await page.evaluate("""() => [performance.getEntriesByName('gp:team-rendered').pop().startTime
            - performance.getEntriesByName('gp:route-start').pop().startTime,
            performance.getEntriesByName('gp:views').pop().duration]""")
    finally:
        await context.close()
    return float(took[0]), float(took[1])


async def _bundle_bytes(base_url: str) -> tuple[int, int]:
    """Every file of the dashboard, gzip as served (what a browser that loads every page downloads)."""
    static = Path(__file__).resolve().parents[1] / "web" / "static"
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        page = await http.get("/", headers={"Accept-Encoding": "gzip"})
        version = re.search(r'(/static/[^/"]+)/app\.js', page.text)
        assert version is not None, "index.html names its assets"
        total = page.num_bytes_downloaded
        files = [p.relative_to(static).as_posix() for p in sorted(static.rglob("*")) if p.is_file()]
        for name in files:
            async with http.stream("GET", f"{version.group(1)}/{name}", headers={"Accept-Encoding": "gzip"}) as r:
                r.raise_for_status()
                async for chunk in r.aiter_raw():
                    total += len(chunk)
    return total, 1 + len(files)


def _line(name: str, value: float, unit: str, target: float) -> str:
    verdict = "ok" if value < target else "OVER"
    return f"  {name:<44} {value:>9.1f} {unit:<3} (target < {target:g} {unit}) {verdict}"


async def main_async(runs: int) -> int:
    if not CHROMIUM.exists():
        print(f"skipped: no Chromium at {CHROMIUM} (apt-get install -y chromium)")
        return 0
    from playwright.async_api import async_playwright

    name, database_url = await asyncio.to_thread(_create_database)
    try:
        with tempfile.TemporaryDirectory(prefix="gp-bench-dash-") as work:
            async with devhost(database_url, Path(work), env={"LLM_PROVIDER": "offline"}) as host:
                session, team_id = await _prepare(host.base_url, database_url)
                async with async_playwright() as playwright:
                    browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                                               args=CHROMIUM_ARGS)
                    # One throwaway load warms the host (imports, bundle read) the way any running app is warm.
                    await _cold_load(browser, host.base_url, "/login", None, "button[type=submit]")
                    pages = {
                        "/login": (None, "button[type=submit]"),
                        "/dashboard": (session, ".stats"),
                        f"/teams/{team_id}": (session, ".task-card"),
                    }
                    loads: dict[str, list[Load]] = {path: [] for path in pages}
                    renders: list[float] = []
                    views: list[float] = []
                    for _ in range(runs):
                        for path, (state, selector) in pages.items():
                            loads[path].append(await _cold_load(browser, host.base_url, path, state, selector))
                        render, drawn = await _team_render(browser, host.base_url, session, team_id)
                        renders.append(render)
                        views.append(drawn)
                    await browser.close()
                bundle, bundle_files = await _bundle_bytes(host.base_url)
    finally:
        await asyncio.to_thread(_drop_database, name)

    print(f"dashboard in Chromium, median of {runs} cold loads per page (gzip as served, no cache)")
    worst_bytes = 0
    failed = False
    for path, items in loads.items():
        label = "team page, 200 tasks" if path.startswith("/teams/") else path
        kib = statistics.median(i.bytes for i in items) / 1024
        fcp = statistics.median(i.fcp_ms for i in items)
        tti = statistics.median(i.tti_ms for i in items)
        worst_bytes = max(worst_bytes, int(kib * 1024))
        print(f" {label}: {items[0].files} files")
        for line, value, unit, target in ((f"transferred, {label}", kib, "KB", 100),
                                          (f"first contentful paint, {label}", fcp, "ms", 500),
                                          (f"time to interactive, {label}", tti, "ms", 1000)):
            print(_line(line, value, unit, target))
            failed = failed or not value < target
    render = statistics.median(renders)
    print(_line(f"render of a team with {TASKS} tasks (in-app nav)", render, "ms", 300))
    print(f"  render runs (ms): {', '.join(f'{r:.0f}' for r in renders)}")
    failed = failed or not render < 300
    drawn = statistics.median(views)
    print(_line(f"plan graph + run timeline of {TASKS} tasks", drawn, "ms", 200))
    print(f"  draw runs (ms): {', '.join(f'{v:.0f}' for v in views)}")
    failed = failed or not drawn < 200
    print(_line(f"whole bundle, {bundle_files} files (gzip)", bundle / 1024, "KB", 500))
    failed = failed or not bundle / 1024 < 500
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench_dashboard", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="cold loads per page (median reported)")
    args = parser.parse_args()
    return asyncio.run(asyncio.wait_for(main_async(args.runs), 180))


if __name__ == "__main__":
    sys.exit(main())
