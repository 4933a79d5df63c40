"""Which webhook URLs and addresses are accepted: https in production, no SSRF targets."""

from __future__ import annotations

import ipaddress

import pytest

from api.webhooks.urls import UrlPolicy, UrlRefused, address_problem, check_addresses, check_url
from payflow.settings import Settings

PRODUCTION = UrlPolicy(require_https=True, allow_private=False)
DEVELOPMENT = UrlPolicy(require_https=False, allow_private=True)


def test_production_requires_https_and_refuses_private_addresses_whatever_the_setting() -> None:
    settings = Settings(environment="production", webhooks_allow_private_urls=True)
    assert UrlPolicy.from_settings(settings) == PRODUCTION
    assert any("PRIVATE_URLS" in problem for problem in settings.check_production())


def test_development_and_test_allow_private_urls_unless_told_not_to() -> None:
    assert UrlPolicy.from_settings(Settings(environment="test")) == DEVELOPMENT
    strict = Settings(environment="development", webhooks_allow_private_urls=False)
    assert UrlPolicy.from_settings(strict) == UrlPolicy(require_https=False, allow_private=False)


@pytest.mark.parametrize("url", [
    "https://example.com/hooks", "https://example.com:8443/a?b=c", "https://93.184.216.34/x",
])
def test_public_https_urls_are_accepted_in_production(url: str) -> None:
    check_url(url, PRODUCTION)


@pytest.mark.parametrize(("url", "reason"), [
    ("http://example.com/hooks", "https://"),
    ("ftp://example.com/hooks", "https://"),
    ("https:///nohost", "no host"),
    ("https://exa mple.com/", "whitespace"),
    ("https://example.com:99999/", "malformed"),
    ("https://127.0.0.1/hooks", "loopback"),
    ("https://10.1.2.3/hooks", "private"),
    ("https://192.168.0.10/hooks", "private"),
    ("https://172.16.5.4/hooks", "private"),
    ("https://169.254.169.254/latest/meta-data", "link-local"),
    ("https://[::1]/hooks", "loopback"),
    ("https://[fe80::1]/hooks", "link-local"),
    ("https://[fd00::1]/hooks", "private"),
    ("https://[::ffff:10.0.0.1]/hooks", "private"),
    ("https://224.0.0.1/hooks", "multicast"),
    ("https://0.0.0.0/hooks", "unspecified"),
    ("https://240.0.0.1/hooks", "reserved"),
    ("https://100.64.0.1/hooks", "not globally routable"),
    ("https://localhost/hooks", "local name"),
    ("https://metadata.google.internal/", "local name"),
    ("https://" + "a" * 2050 + ".com/", "longer"),
])
def test_refused_urls_say_why(url: str, reason: str) -> None:
    with pytest.raises(UrlRefused, match=reason):
        check_url(url, PRODUCTION)


def test_development_accepts_plain_http_to_loopback() -> None:
    check_url("http://127.0.0.1:8080/hooks", DEVELOPMENT)
    check_url("http://localhost:8080/hooks", DEVELOPMENT)


def test_resolved_addresses_are_refused_if_any_one_is_not_public() -> None:
    assert check_addresses(["93.184.216.34"], PRODUCTION)
    with pytest.raises(UrlRefused, match="private"):
        check_addresses(["93.184.216.34", "10.0.0.7"], PRODUCTION)
    with pytest.raises(UrlRefused, match="does not resolve"):
        check_addresses([], PRODUCTION)
    assert check_addresses(["10.0.0.7"], DEVELOPMENT)


def test_a_public_address_has_no_problem() -> None:
    assert address_problem(ipaddress.ip_address("8.8.8.8")) is None
    assert address_problem(ipaddress.ip_address("2606:4700:4700::1111")) is None
