"""`python -m devhost.pubsub --port 7072 --access-key K`: run the emulator standalone."""

from __future__ import annotations

import argparse
import logging
import os

import uvicorn

from devhost.pubsub.emulator import PubSubEmulator
from devhost.pubsub.server import WS_IMPLEMENTATION


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devhost.pubsub", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7072)
    parser.add_argument("--access-key", default=os.environ.get("WEBPUBSUB_EMULATOR_ACCESS_KEY"),
                        help="key that signs tokens (or WEBPUBSUB_EMULATOR_ACCESS_KEY)")
    parser.add_argument("--hub", action="append", dest="hubs", help="serve only these hubs (repeatable)")
    parser.add_argument("--upstream-url", help="event handler URL for CloudEvents (optional)")
    args = parser.parse_args(argv)
    if not args.access_key:
        parser.error("--access-key is required")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    emulator = PubSubEmulator(args.access_key, hub_names=set(args.hubs) if args.hubs else None,
                              upstream_url=args.upstream_url)
    print(emulator.connection_string(args.host, args.port), flush=True)
    uvicorn.run(emulator.app, host=args.host, port=args.port, ws=WS_IMPLEMENTATION, lifespan="on",
                ws_ping_interval=None, log_level="warning", timeout_graceful_shutdown=2, backlog=4096)


if __name__ == "__main__":
    main()
