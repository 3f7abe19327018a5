"""`python -m devhost.pubsub`: run the emulator standalone, for one devhost or several.

    python -m devhost.pubsub --port 7072 [--data-dir .devhost | --access-key K]
        [--upstream-url http://127.0.0.1:7071/api/realtime/events --upstream-url ...]

Prints its connection string (with the bound port, so `--port 0` works) on the first line of
stdout, then serves until SIGTERM/SIGINT. The key comes from `--access-key` (or
WEBPUBSUB_EMULATOR_ACCESS_KEY), else from `<data-dir>/pubsub.key` (created when missing), the file
`python -m devhost serve --pubsub-url` reads. Several `--upstream-url`s are several app hosts: an
event goes to the first that accepts the connection (docs/devhost.md, "Several hosts").
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
from pathlib import Path

import uvicorn

from devhost.pubsub.emulator import PubSubEmulator
from devhost.pubsub.keys import load_or_create_access_key
from devhost.pubsub.server import WS_IMPLEMENTATION


def _listen(host: str, port: int) -> socket.socket:
    """Bind before printing, so that the printed connection string names the real port."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devhost.pubsub", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7072, help="port to listen on (0 = any free port)")
    parser.add_argument("--access-key", default=os.environ.get("WEBPUBSUB_EMULATOR_ACCESS_KEY"),
                        help="key that signs tokens (or WEBPUBSUB_EMULATOR_ACCESS_KEY); default: the data dir's")
    parser.add_argument("--data-dir", type=Path, default=Path(".devhost"),
                        help="where pubsub.key is kept when no --access-key is given (default .devhost)")
    parser.add_argument("--hub", action="append", dest="hubs", help="serve only these hubs (repeatable)")
    parser.add_argument("--upstream-url", action="append", dest="upstream_urls", default=[],
                        help="event handler URL for CloudEvents (repeatable: one per app host)")
    args = parser.parse_args(argv)
    access_key = args.access_key or load_or_create_access_key(args.data_dir)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    emulator = PubSubEmulator(access_key, hub_names=set(args.hubs) if args.hubs else None,
                              upstream_url=args.upstream_urls or None)
    sock = _listen(args.host, args.port)
    port = sock.getsockname()[1]
    endpoint_host = "localhost" if args.host in ("0.0.0.0", "::", "") else args.host
    print(emulator.connection_string(endpoint_host, port), flush=True)
    config = uvicorn.Config(emulator.app, ws=WS_IMPLEMENTATION, lifespan="on", ws_ping_interval=None,
                            log_level="warning", timeout_graceful_shutdown=2, backlog=4096)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
