"""Poll GET <url> until it answers 200 with {"status": "healthy"}, or give up after a timeout.
With --accept-degraded a 200 "degraded" answer (e.g. Web PubSub down, events queued) also passes.

Usage: python scripts/wait_healthy.py URL [--timeout SECONDS] [--interval SECONDS] [--accept-degraded]
Exit status 0 when healthy, 1 on timeout (the last answer is printed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request


def probe(
    url: str, request_timeout: float, accepted: frozenset[str] = frozenset({"healthy"})
) -> tuple[bool, str]:
    """(healthy, short description of the answer)."""
    try:
        with urllib.request.urlopen(url, timeout=request_timeout) as response:  # noqa: S310 (https/http URL given by the operator)
            body = response.read(65536).decode(errors="replace")
            status = response.status
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}: {exc.read(2000).decode(errors='replace')}"
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        return False, f"unreachable: {exc}"
    try:
        healthy = status == 200 and json.loads(body).get("status") in accepted
    except (ValueError, AttributeError):
        healthy = False
    return healthy, f"HTTP {status}: {body[:500]}"


def wait_healthy(url: str, timeout: float, interval: float, *, accept_degraded: bool = False) -> bool:
    accepted = frozenset({"healthy", "degraded"} if accept_degraded else {"healthy"})
    deadline = time.monotonic() + timeout
    attempt = 0
    while True:
        attempt += 1
        remaining = deadline - time.monotonic()
        healthy, answer = probe(url, request_timeout=max(1.0, min(10.0, remaining)), accepted=accepted)
        if healthy:
            print(f"wait_healthy: healthy after {attempt} attempt(s)")
            return True
        if time.monotonic() + interval > deadline:
            print(f"wait_healthy: not healthy after {timeout:.0f}s; last answer: {answer}", file=sys.stderr)
            return False
        time.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Wait until /api/health answers healthy.")
    parser.add_argument("url")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--accept-degraded", action="store_true")
    args = parser.parse_args(argv)
    return (
        0 if wait_healthy(args.url, args.timeout, args.interval, accept_degraded=args.accept_degraded) else 1
    )


if __name__ == "__main__":
    sys.exit(main())
