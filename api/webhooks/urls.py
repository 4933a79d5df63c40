"""Which webhook URLs payflow accepts and which addresses it will connect to (SSRF rules).

A webhook URL makes payflow's servers send requests wherever a merchant says, so in production
it must be ``https`` and every address its host resolves to must be globally routable: private
(10/8, 172.16/12, 192.168/16, fc00::/7), loopback, link-local (169.254/16 — cloud metadata —
and fe80::/10), multicast, shared (100.64/10), unspecified and reserved addresses are refused,
when the URL is saved (after DNS resolution) and again at every connection (DNS rebinding).
Development and test mode may allow private addresses (``PAYFLOW_WEBHOOKS_ALLOW_PRIVATE_URLS``,
default true there) and plain ``http``; production never does.

Pure: the caller resolves names and passes the addresses in.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from payflow.settings import Settings

MAX_URL_LENGTH = 2048
LOCAL_NAMES = ("localhost", "localhost.", "localhost.localdomain")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlRefused(ValueError):
    """A URL or address that payflow will not send webhooks to; the message says why."""


@dataclass(frozen=True, slots=True)
class UrlPolicy:
    require_https: bool
    allow_private: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> UrlPolicy:
        return cls(
            require_https=settings.environment == "production",
            allow_private=settings.webhooks_private_urls_allowed,
        )


def check_url(url: str, policy: UrlPolicy) -> SplitResult:
    """The parsed URL if its form is acceptable under ``policy``; UrlRefused otherwise."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() for ch in url):
        raise UrlRefused("the URL contains whitespace")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UrlRefused(f"the URL is malformed: {error}") from error
    allowed_schemes = ("https",) if policy.require_https else ("https", "http")
    if parts.scheme not in allowed_schemes:
        raise UrlRefused("the URL must start with " + " or ".join(f"{s}://" for s in
                                                                    allowed_schemes))
    if not parts.hostname:
        raise UrlRefused("the URL has no host")
    if port == 0:
        raise UrlRefused("the URL's port must be between 1 and 65535")
    if not policy.allow_private:
        literal = ip_literal(parts.hostname)
        if literal is not None:
            check_addresses([literal], policy)
        elif parts.hostname.lower() in LOCAL_NAMES or parts.hostname.lower().endswith(
            (".localhost", ".local", ".internal")
        ):
            raise UrlRefused(f"the host {parts.hostname!r} is a local name")
    return parts


def ip_literal(host: str) -> Address | None:
    """The address when ``host`` is an IP literal (``10.0.0.1``, ``::1``), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def address_problem(address: Address) -> str | None:
    """Why payflow must not connect to ``address``, or None when it is globally routable."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address_problem(address.ipv4_mapped)
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
    )
    for name, applies in checks:
        if applies:
            return name
    if not address.is_global:
        return "not globally routable"
    return None


def check_addresses(addresses: Iterable[Address | str], policy: UrlPolicy) -> list[Address]:
    """The addresses, if payflow may connect to all of them; UrlRefused naming the first not."""
    parsed = [a if not isinstance(a, str) else ipaddress.ip_address(a) for a in addresses]
    if not parsed:
        raise UrlRefused("the host does not resolve to any address")
    if policy.allow_private:
        return parsed
    for address in parsed:
        problem = address_problem(address)
        if problem is not None:
            raise UrlRefused(f"{address} is a {problem} address, which webhooks may not reach")
    return parsed
