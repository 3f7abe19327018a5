"""Local Azure Web PubSub emulator for devhost: service REST API, client WebSockets, event handler."""

from __future__ import annotations

from devhost.pubsub.emulator import PubSubEmulator
from devhost.pubsub.hub import Limits
from devhost.pubsub.server import WS_IMPLEMENTATION, EmulatorServer

__all__ = ["WS_IMPLEMENTATION", "EmulatorServer", "Limits", "PubSubEmulator"]
