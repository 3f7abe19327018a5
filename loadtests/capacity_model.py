"""The capacity model of docs/capacity.md: measured per-unit costs -> instances, connections, units
and a monthly bill, for a number of concurrent users and of running teams.

    python -m loadtests.capacity_model [--costs costs.json]   # the tables of docs/capacity.md

Pure arithmetic, no I/O but reading the costs file: every input is either a figure measured by
`python -m loadtests.capacity` (Costs), an assumption (Assumptions: each one an estimate, said so in
the doc), or a list price (Prices: each with its source and date in the doc).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path

#: Unit counts an Azure Web PubSub instance may have.
WEBPUBSUB_UNIT_STEPS = (1, 2, 5, 10, 20, 50, 100)
HOURS_PER_MONTH = 730
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600


@dataclass(frozen=True)
class MeasuredCosts:
    """What `python -m loadtests.capacity --json` prints (the fields the model uses)."""

    host_cpu_ms_per_read: float
    postgres_cpu_ms_per_read: float
    host_cpu_ms_per_write: float
    postgres_cpu_ms_per_write: float
    host_cpu_ms_per_login: float
    host_cpu_s_per_team: float
    app_sql_cpu_s_per_team: float
    activities_per_team: float
    episodes_per_team: float
    llm_calls_per_team: float
    events_per_team: float
    event_bytes_per_team: float
    db_kib_per_team: float
    dts_actions_per_team: float

    @classmethod
    def from_json(cls, data: dict[str, float]) -> MeasuredCosts:
        return cls(**{f.name: float(data[f.name]) for f in fields(cls)})


@dataclass(frozen=True)
class Assumptions:
    """Estimates, not measurements (docs/capacity.md says why each)."""

    reads_per_user_per_s: float = 0.17        # a dashboard page (~5 requests) every 30 s; live updates on the socket
    writes_per_user_per_s: float = 0.01       # an action (create, pause, approve...) every 100 s
    logins_per_user_per_hour: float = 1.0     # JWT_TTL_MINUTES 60
    functions_cpu_factor: float = 2.0         # Functions host + gRPC to the Python worker, vs devhost's ~10 us
    llm_seconds_per_call: float = 10.0        # a streamed completion of a few hundred tokens
    critical_path_calls: float = 26.0         # measured: a team ran 21.2 s at 800 ms per call (PERFORMANCE.md)
    cpu_target: float = 0.6                   # scale out before an instance's core is 60% busy
    cores_per_instance: float = 1.0           # Flex Consumption, 2,048 MB instance
    activity_concurrency: int = 8             # host.json maxConcurrentActivityFunctions
    http_concurrency: int = 16                # Flex per-instance HTTP concurrency
    http_seconds: float = 0.02                # request latency inside the app (Little's law)
    max_instances: int = 100                  # functionMaximumInstanceCount (prod)
    db_pool_max: int = 10                     # DB_POOL_MAX_SIZE
    receivers_per_event: float = 2.0          # the team's viewer and the company dashboard
    retained_months: float = 1.0              # app data kept online (no archival job yet)


@dataclass(frozen=True)
class Prices:
    """USD list prices (pay as you go); sources and dates in docs/capacity.md."""

    functions_gb_second: float = 0.000026     # Flex Consumption on demand
    functions_per_million_executions: float = 0.40  # estimate: not in the stored pages
    instance_memory_gb: float = 2.0
    postgres_vcore_hour: float = 0.089        # General Purpose Ddsv5 (D2ds_v5 = $0.178/h)
    postgres_gb_month: float = 0.115
    redis_standard_node_hour: dict[str, float] = field(default_factory=lambda: {"C1": 0.069, "C3": 0.225})
    webpubsub_unit_day: float = 1.61          # Standard_S1
    webpubsub_per_million_messages: float = 1.0  # estimate: SignalR's published overage rate
    webpubsub_messages_per_unit_day: float = 1_000_000


@dataclass(frozen=True)
class Plan:
    users: int
    teams: int
    read_rps: float
    write_rps: float
    team_runs_per_s: float
    http_cores: float
    team_cores: float
    http_instances: int
    durable_instances: int
    durable_instances_uncapped: int
    activities_in_flight: float
    db_connections: int
    postgres_cores: float
    postgres_vcores: int
    postgres_sku: str
    postgres_gb: float
    redis_ops_per_s: float
    redis_size: str
    connections: int
    webpubsub_units: int
    messages_per_day: float
    dts_actions_per_s: float
    dts_sku: str
    monthly: dict[str, float]

    @property
    def instances(self) -> int:
        return self.http_instances + self.durable_instances


def _units(connections: int) -> int:
    """Web PubSub units for `connections`, at most 80% full (Azure's guidance), in allowed steps."""
    needed = max(1, math.ceil(connections / 800))
    return next((n for n in WEBPUBSUB_UNIT_STEPS if n >= needed), WEBPUBSUB_UNIT_STEPS[-1])


def plan(costs: MeasuredCosts, *, users: int, teams: int, a: Assumptions | None = None,
         p: Prices | None = None) -> Plan:
    a = a or Assumptions()
    p = p or Prices()
    team_seconds = a.critical_path_calls * a.llm_seconds_per_call
    runs_per_s = teams / team_seconds
    read_rps = users * a.reads_per_user_per_s
    write_rps = users * a.writes_per_user_per_s
    login_rps = users * a.logins_per_user_per_hour / 3600
    factor = a.functions_cpu_factor
    http_cores = factor * (read_rps * costs.host_cpu_ms_per_read + write_rps * costs.host_cpu_ms_per_write
                           + login_rps * costs.host_cpu_ms_per_login) / 1000
    team_cores = factor * runs_per_s * costs.host_cpu_s_per_team
    capacity = a.cores_per_instance * a.cpu_target
    # Flex Consumption scales HTTP functions and Durable functions as separate groups.
    http_instances = max(1, math.ceil(http_cores / capacity),
                         math.ceil((read_rps + write_rps) * a.http_seconds / a.http_concurrency))
    in_flight = teams * costs.llm_calls_per_team * a.llm_seconds_per_call / team_seconds if teams else 0.0
    durable_uncapped = max(1 if teams else 0, math.ceil(team_cores / capacity),
                           math.ceil(in_flight / a.activity_concurrency))
    durable = min(durable_uncapped, max(0, a.max_instances - http_instances))
    db_connections = (http_instances + durable) * a.db_pool_max
    pg_cores = (read_rps * costs.postgres_cpu_ms_per_read + write_rps * costs.postgres_cpu_ms_per_write) / 1000 \
        + runs_per_s * costs.app_sql_cpu_s_per_team
    vcores = next((n for n in (2, 4, 8, 16) if pg_cores <= n * 0.5 and db_connections <= _max_user_connections(n)),
                  32)
    retained_gb = runs_per_s * SECONDS_PER_MONTH * a.retained_months * costs.db_kib_per_team / 1024 / 1024
    postgres_gb = max(32.0, 2 ** math.ceil(math.log2(max(1.0, retained_gb * 1.25))))
    redis_ops = read_rps * 1.1 + write_rps * 4 + login_rps * 2
    redis_size = "C1" if redis_ops < 5_000 and users <= 2_000 else "C3"
    units = _units(users)
    messages = runs_per_s * costs.events_per_team * a.receivers_per_event * 86_400 \
        * math.ceil(costs.event_bytes_per_team / costs.events_per_team / 2048)
    dts_rate = runs_per_s * costs.dts_actions_per_team
    dts_sku = "Consumption" if dts_rate <= 500 * 0.8 else f"Dedicated x{math.ceil(dts_rate / (2000 * 0.8))}"
    executions = (read_rps + write_rps + login_rps
                  + runs_per_s * (costs.activities_per_team + costs.episodes_per_team)) * SECONDS_PER_MONTH
    monthly = {
        "Functions (instance GB-s)": (http_instances + durable) * p.instance_memory_gb * SECONDS_PER_MONTH
        * p.functions_gb_second,
        "Functions (executions)": executions / 1e6 * p.functions_per_million_executions,
        "PostgreSQL compute (HA pair)": 2 * vcores * p.postgres_vcore_hour * HOURS_PER_MONTH,
        "PostgreSQL storage": postgres_gb * p.postgres_gb_month,
        "Redis Standard": 2 * p.redis_standard_node_hour[redis_size] * HOURS_PER_MONTH,
        "Web PubSub units": units * p.webpubsub_unit_day * HOURS_PER_MONTH / 24,
        "Web PubSub extra messages": max(0.0, messages - units * p.webpubsub_messages_per_unit_day) / 1e6
        * p.webpubsub_per_million_messages * HOURS_PER_MONTH / 24,
    }
    return Plan(users, teams, read_rps, write_rps, runs_per_s, http_cores, team_cores, http_instances, durable,
                durable_uncapped, in_flight, db_connections, pg_cores, vcores, f"D{vcores}ds_v5", postgres_gb,
                redis_ops, redis_size, users, units, messages, dts_rate, dts_sku, monthly)


def _max_user_connections(vcores: int) -> int:
    """Default max_connections minus the 15 Azure reserves, General Purpose Ddsv5 (concepts-limits)."""
    return {2: 844, 4: 1703, 8: 3422}.get(vcores, 4985)


SCALES = ((100, 10), (1_000, 100), (10_000, 1_000))


def render(costs: MeasuredCosts, a: Assumptions | None = None) -> list[str]:
    plans = [plan(costs, users=u, teams=t, a=a) for u, t in SCALES]
    head = "| | " + " | ".join(f"{p.users:,} users, {p.teams:,} running teams" for p in plans) + " |"
    rows = [
        ("requests/s: reads + writes", lambda p: f"{p.read_rps:,.0f} + {p.write_rps:,.0f}"),
        ("team runs finishing per second", lambda p: f"{p.team_runs_per_s:.2f}"),
        ("app cores: HTTP + Durable", lambda p: f"{p.http_cores:.2f} + {p.team_cores:.2f}"),
        ("activities in flight", lambda p: f"{p.activities_in_flight:,.0f}"),
        ("Function App instances: HTTP + Durable (2,048 MB)", lambda p: f"{p.http_instances} + {p.durable_instances}"
         + (f" (needs {p.durable_instances_uncapped}: capped)" if p.durable_instances_uncapped > p.durable_instances
            else "")),
        ("DB connections (instances x DB_POOL_MAX_SIZE)", lambda p: f"{p.db_connections:,}"),
        ("PostgreSQL cores used / SKU", lambda p: f"{p.postgres_cores:.2f} / {p.postgres_sku}"),
        ("PostgreSQL storage, GB (a month of data + 25%)", lambda p: f"{p.postgres_gb:,.0f}"),
        ("Redis ops/s / size", lambda p: f"{p.redis_ops_per_s:,.0f} / Standard {p.redis_size}"),
        ("Web PubSub connections / units", lambda p: f"{p.connections:,} / {p.webpubsub_units}"),
        ("Web PubSub messages per day", lambda p: f"{p.messages_per_day / 1e6:,.1f} M"),
        ("Durable Task Scheduler actions/s / SKU", lambda p: f"{p.dts_actions_per_s:,.0f} / {p.dts_sku}"),
    ]
    lines = [head, "|---|" + "---:|" * len(plans)]
    lines += [f"| {label} | " + " | ".join(fn(p) for p in plans) + " |" for label, fn in rows]
    lines += ["", "| monthly list price, USD | " + " | ".join(f"{p.users:,} / {p.teams:,}" for p in plans) + " |",
              "|---|" + "---:|" * len(plans)]
    for item in plans[0].monthly:
        lines.append(f"| {item} | " + " | ".join(f"{p.monthly[item]:,.0f}" for p in plans) + " |")
    lines.append("| **total (without the Durable Task Scheduler, logs, LLM tokens)** | "
                 + " | ".join(f"**{sum(p.monthly.values()):,.0f}**" for p in plans) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.capacity_model", description=__doc__.split("\n")[0])
    parser.add_argument("--costs", type=Path, default=Path(__file__).with_name("capacity_costs.json"),
                        help="per-unit costs (python -m loadtests.capacity --json)")
    defaults = Assumptions()
    parser.add_argument("--activity-concurrency", type=int, default=defaults.activity_concurrency,
                        help="host.json maxConcurrentActivityFunctions")
    parser.add_argument("--llm-seconds", type=float, default=defaults.llm_seconds_per_call)
    parser.add_argument("--reads-per-user", type=float, default=defaults.reads_per_user_per_s)
    args = parser.parse_args(argv)
    costs = MeasuredCosts.from_json(json.loads(args.costs.read_text()))
    chosen = Assumptions(activity_concurrency=args.activity_concurrency, llm_seconds_per_call=args.llm_seconds,
                         reads_per_user_per_s=args.reads_per_user)
    print("\n".join(render(costs, chosen)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
