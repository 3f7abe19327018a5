"""Connections to tool servers that cannot be turned against our own network (SSRF).

Every TCP connection a tool server's HTTP client opens goes through `PinnedBackend.connect_tcp`: it
resolves the host once, refuses when any resolved address is not allowed (`AddressPolicy`), and then
connects to exactly the address it checked. So the check and the connection can never see two
different DNS answers (no rebinding window), and it runs again at every connect, not only at
registration. TLS still verifies the certificate against the URL's host name (httpcore passes the
origin's host as `server_hostname`), so pinning the address does not weaken HTTPS.

Written here rather than taken from a library: httpx2 has no hook between resolution and connect;
httpcore2's network backend is the one seam that sees both, and this is the whole of it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Protocol
from urllib.parse import urlsplit

import httpcore2
import httpx2

from shared.domain.tools import AddressPolicy


class AddressRefused(Exception):
    """The tool server's URL or address is not allowed here (the SSRF rule); nothing was sent."""


class Resolver(Protocol):
    async def resolve(self, host: str, port: int) -> list[str]:
        """Every address `host` resolves to (IP literals)."""
        ...


class SystemResolver:
    """The operating system's resolver (getaddrinfo), off the event loop's thread."""

    async def resolve(self, host: str, port: int) -> list[str]:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise OSError(f"the tool server's host name {host!r} does not resolve ({exc.strerror})") from None
        seen: list[str] = []
        for *_, sockaddr in infos:
            address = str(sockaddr[0])
            if address not in seen:
                seen.append(address)
        return seen


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


async def checked_addresses(host: str, port: int, policy: AddressPolicy, resolver: Resolver) -> list[str]:
    """The addresses of `host`, all allowed; AddressRefused naming the first that is not."""
    host = host.strip("[]")
    addresses = [host] if _is_ip(host) else await resolver.resolve(host, port)
    if not addresses:
        raise AddressRefused(f"{host!r} resolves to no address")
    for address in addresses:
        refusal = policy.refusal(address)
        if refusal:
            named = "" if address == host else f"{host!r} resolves to {address}: "
            raise AddressRefused(f"{named}{refusal}; tool servers must be on public addresses")
    return addresses


async def check_url(url: str, policy: AddressPolicy, resolver: Resolver) -> None:
    """Refuse a tool server URL before anything is sent to it: its scheme, credentials and addresses."""
    parts = urlsplit(url)
    refusal = policy.scheme_refusal(parts.scheme)
    if refusal:
        raise AddressRefused(refusal)
    if not parts.hostname:
        raise AddressRefused("the URL has no host")
    if parts.username or parts.password:
        raise AddressRefused("put credentials in headers, not in the URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise AddressRefused("the URL's port is not a number between 0 and 65535") from None
    await checked_addresses(parts.hostname, port, policy, resolver)


class PinnedBackend(httpcore2.AsyncNetworkBackend):
    """Resolve, check every address, connect to a checked one: in one call, per connection."""

    def __init__(self, policy: AddressPolicy, resolver: Resolver | None = None,
                 inner: httpcore2.AsyncNetworkBackend | None = None) -> None:
        self.policy = policy
        self.resolver = resolver or SystemResolver()
        self.inner = inner or httpcore2.AnyIOBackend()
        self.connected: list[tuple[str, int]] = []  #: (address, port) of each connection made (tests)

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109
                          local_address: str | None = None,
                          socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
                          ) -> httpcore2.AsyncNetworkStream:
        addresses = await checked_addresses(host, port, self.policy, self.resolver)
        last: Exception | None = None
        for address in addresses:
            try:
                stream = await self.inner.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                                      socket_options=socket_options)
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                last = exc
                continue
            self.connected.append((address, port))
            return stream
        assert last is not None
        raise last

    async def connect_unix_socket(self, path: str, timeout: float | None = None,  # noqa: ASYNC109
                                  socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
                                  ) -> httpcore2.AsyncNetworkStream:
        raise AddressRefused("tool servers are reached over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class PinnedTransport(httpx2.AsyncHTTPTransport):
    """httpx2's transport with its connection pool on a `PinnedBackend`, never through a proxy."""

    def __init__(self, backend: PinnedBackend) -> None:
        super().__init__(trust_env=False)
        # httpx2's transport takes no network backend, so its pool is rebuilt with ours (same defaults).
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(trust_env=False), max_connections=10,
            max_keepalive_connections=5, keepalive_expiry=5.0, network_backend=backend)


def pinned_client(policy: AddressPolicy, *, headers: dict[str, str], timeout: httpx2.Timeout,
                  resolver: Resolver | None = None, backend: PinnedBackend | None = None) -> httpx2.AsyncClient:
    """An HTTP client for one tool server: every connection checked and pinned, no proxies from the
    environment (a proxy would resolve the name itself), no redirects followed by httpx2 (the MCP SDK
    follows same-origin ones, each a new checked connection)."""
    return httpx2.AsyncClient(transport=PinnedTransport(backend or PinnedBackend(policy, resolver)),
                              headers=headers, timeout=timeout, trust_env=False, follow_redirects=False)


