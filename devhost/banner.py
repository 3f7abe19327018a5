"""The one banner devhost prints when it is ready, and the demo login it remembers."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Banner", "llm_provider", "load_demo_login", "redis_label", "save_demo_login"]

_DEMO_FILE = "demo-login.json"


@dataclass(frozen=True)
class Banner:
    api_url: str
    dashboard_url: str
    pubsub: str
    database: str
    redis: str
    llm: str
    durable: str
    functions: str
    demo_login: tuple[str, str] | None
    demo_is_new: bool

    def render(self) -> str:
        rows = [
            ("API", self.api_url),
            ("Dashboard", self.dashboard_url),
            ("Web PubSub", self.pubsub),
            ("Database", self.database),
            ("Redis", self.redis),
            ("LLM provider", self.llm),
            ("Durable", self.durable),
            ("Functions", self.functions),
        ]
        if self.demo_login is not None:
            email, password = self.demo_login
            label = "Demo login" if self.demo_is_new else "Demo login (created earlier)"
            rows.append((label, f"{email} / {password}"))
        width = max(len(label) for label, _ in rows)
        body = (f"  {label.ljust(width)}  {value}" for label, value in rows)
        lines = ["", "Ghost Pirates devhost is ready", *body]
        return "\n".join(lines) + "\n"


def redis_label(configured: bool) -> str:
    """What the app's caches and rate limits are shared with: every host on the same Redis, or none.

    Without Redis each host keeps its own query cache and rate-limit counters, so with several
    hosts a read through one host can be served from its cache after a write through another
    (until CACHE_TTL_SECONDS), and each host counts limits on its own.
    """
    if configured:
        return "external (REDIS_URL): caches and rate limits shared by every host using it"
    return "in-process (REDIS_URL unset): caches and rate limits are per host"


def llm_provider() -> str:
    """The provider the app will use, as its settings say (LLM_PROVIDER, 'auto' by default)."""
    try:
        from shared.config import get_settings

        provider = str(get_settings().LLM_PROVIDER)
    except Exception:  # the app's settings are the app's business: fall back to the raw variable
        provider = os.environ.get("LLM_PROVIDER", "auto")
    if provider != "auto":
        return provider
    keys = [name for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY") if os.environ.get(name)]
    return f"auto ({', '.join(keys)} set)" if keys else "auto (no API key: offline provider)"


def _fingerprint(dsn: str) -> str:
    return hashlib.sha256(dsn.encode()).hexdigest()


def save_demo_login(data_dir: Path, dsn: str, email: str, password: str) -> None:
    """Remember the demo login created on `dsn`, so that later runs and `devhost run` can use it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / _DEMO_FILE
    path.write_text(json.dumps({"database": _fingerprint(dsn), "email": email, "password": password}))
    path.chmod(0o600)


def load_demo_login(data_dir: Path, dsn: str | None = None) -> tuple[str, str] | None:
    """The remembered demo login (for `dsn` when given), if any."""
    path = data_dir / _DEMO_FILE
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    if dsn is not None and data.get("database") != _fingerprint(dsn):
        return None
    return str(data["email"]), str(data["password"])
