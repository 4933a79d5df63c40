"""The SSRF rules of ``api.webhooks.urls`` applied to real names and real connections.

``vet_url`` checks a URL when a merchant saves it: its form, then every address its host
resolves to. ``guarded_client`` is the HTTP client the sender (and the test-send route) use: its
network backend resolves the host itself at each new connection, refuses the connection when any
address is not allowed, and connects to an address it checked — so a name that resolved to a
public address when it was saved and to 10.0.0.1 now (DNS rebinding) is still refused. TLS keeps
verifying the certificate against the host name. Redirects are not followed, and proxies from
the environment are ignored: both would bypass the check.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from api.webhooks.urls import Address, UrlPolicy, UrlRefused, check_addresses, check_url, ip_literal

RESOLVE_TIMEOUT_SECONDS = 5.0


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to for TCP; UrlRefused when it does not resolve."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as error:
        raise UrlRefused(f"the host {host!r} could not be resolved") from error
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def vet_url(url: str, policy: UrlPolicy) -> None:
    """UrlRefused unless payflow may send webhooks to ``url`` under ``policy``."""
    parts = check_url(url, policy)
    if policy.allow_private or parts.hostname is None or ip_literal(parts.hostname):
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    check_addresses(await resolve(parts.hostname, port), policy)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses ``policy`` allows, checked at connection time."""

    def __init__(self, policy: UrlPolicy) -> None:
        self.policy = policy
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(  # httpcore's interface, timeout included
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        literal = ip_literal(host)
        candidates = [literal] if literal is not None else await resolve(host, port)
        allowed: list[Address] = check_addresses(candidates, self.policy)
        last_error: Exception | None = None
        for address in allowed:
            try:
                return await self.inner.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last_error = error
        assert last_error is not None
        raise last_error

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connection pool on a ``GuardedBackend``."""

    def __init__(self, policy: UrlPolicy, max_connections: int) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=30.0,
            network_backend=GuardedBackend(policy),
        )


def guarded_client(policy: UrlPolicy, max_connections: int = 100) -> httpx.AsyncClient:
    """An HTTP client for webhook deliveries: SSRF-guarded, no redirects, no proxies."""
    return httpx.AsyncClient(
        transport=GuardedTransport(policy, max_connections),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": "payflow-webhooks/1"},
    )
