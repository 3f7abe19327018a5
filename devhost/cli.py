"""Command line of devhost: `serve` runs the app locally, `run` gives a goal to a team."""

from __future__ import annotations

import argparse
from pathlib import Path

from devhost.goal_runner import GoalRun, RunError, run_goal
from devhost.server import ServeOptions, serve

__all__ = ["main"]


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0.5 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0.5 and 3600 seconds, not {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devhost", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run_host = commands.add_parser("serve", help="run the function app locally")
    run_host.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    run_host.add_argument("--port", type=int, default=7071, help="HTTP port (default 7071; 0 = any free)")
    run_host.add_argument("--pubsub-port", type=int, default=7072, help="Web PubSub emulator port")
    run_host.add_argument("--data-dir", type=Path, default=Path(".devhost"), help="embedded Postgres, keys")
    run_host.add_argument("--app-dir", type=Path, default=Path("."), help="where function_app.py is")
    run_host.add_argument("--grace", type=float, default=10.0, help="seconds to drain requests on shutdown")
    run_host.add_argument("--no-migrate", action="store_true", help="skip migrations and the demo login")
    run_host.add_argument("--access-log", action="store_true", help="log every HTTP request")
    run_host.add_argument("--local-model", action="store_true",
                          help="serve a tiny real model (SmolLM2-135M on llama.cpp) and use it for every agent")
    run_host.add_argument("--pubsub-url", help="use the Web PubSub emulator running there (python -m devhost.pubsub) "
                          "instead of starting one; its key is read from <data-dir>/pubsub.key")
    run_host.add_argument("--lease-seconds", type=_positive_seconds, default=5.0,
                          help="Durable claim lease: a killed host's work is taken over by the others after "
                          "this (default 5; a host restarted on its data dir takes its own back at once)")

    goal = commands.add_parser("run", help="give a goal to a team and watch it until it finishes")
    goal.add_argument("goal", help="what the team should achieve")
    goal.add_argument("--url", help="a running devhost or deployment (default: start one)")
    goal.add_argument("--email", help="login email (default: the demo login of the data dir)")
    goal.add_argument("--password", help="login password")
    goal.add_argument("--budget", type=float, dest="budget_usd", help="team budget in USD")
    goal.add_argument("--workers", type=int, help="number of worker agents")
    goal.add_argument("--tools", default="", help="tools the workers may call, comma-separated <server>.<tool>"
                      " (a tool of `everything` starts the npm reference MCP server when none is registered)")
    goal.add_argument("--tool-server", action="append", default=[], metavar="NAME=URL",
                      help="register an MCP server (streamable HTTP) under NAME first; repeatable")
    goal.add_argument("--port", type=int, default=7071, help="port of the devhost to start or find")
    goal.add_argument("--data-dir", type=Path, default=Path(".devhost"))
    goal.add_argument("--app-dir", type=Path, default=Path("."))
    goal.add_argument("--timeout", type=float, default=3600.0, dest="timeout_seconds", help="give up after")
    goal.add_argument("--local-model", action="store_true",
                      help="start the devhost with a tiny real model (SmolLM2-135M on llama.cpp)")
    return parser


def _name_url(entry: str) -> tuple[str, str]:
    name, _, url = entry.partition("=")
    if not name or not url:
        raise SystemExit(f"--tool-server takes NAME=URL, not {entry!r}")
    return name.strip(), url.strip()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return serve(
            ServeOptions(
                host=args.host,
                port=args.port,
                pubsub_port=args.pubsub_port,
                data_dir=args.data_dir,
                app_dir=args.app_dir,
                grace_seconds=args.grace,
                migrate=not args.no_migrate,
                access_log=args.access_log,
                local_model=args.local_model,
                pubsub_url=args.pubsub_url,
                lease_seconds=args.lease_seconds,
            )
        )
    try:
        return run_goal(
            GoalRun(
                goal=args.goal,
                url=args.url,
                email=args.email,
                password=args.password,
                budget_usd=args.budget_usd,
                workers=args.workers,
                tools=[t.strip() for t in args.tools.split(",") if t.strip()],
                tool_servers=dict(_name_url(entry) for entry in args.tool_server),
                data_dir=args.data_dir,
                app_dir=args.app_dir,
                port=args.port,
                timeout_seconds=args.timeout_seconds,
                local_model=args.local_model,
            )
        )
    except RunError as exc:
        print(f"error: {exc}")
        return 1
