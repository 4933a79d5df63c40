"""Dashboard login on the real stack: argon2id passwords, Redis sessions, cookies, CSRF, login
rate limits, roles and merchant isolation. Each test names the promise it checks."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from redis.asyncio import Redis

from api.sessions import SessionStore
from api.users import User
from payflow.cli.user import ensure_user
from tests.harness import RunningStack

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery"
CARD = {"type": "card", "card": {"number": "4242424242424242", "exp_month": 12,
                                 "exp_year": 2030, "cvc": "123"}}


@dataclass
class Tenant:
    merchant_id: str
    api_key: str
    email: str
    payment_id: str


def _tenant(stack: RunningStack, name: str) -> Tenant:
    merchant = stack.environment.create_merchant(name)
    email = f"{uuid.uuid4().hex[:10]}@{name.lower().replace(' ', '-')}.test"
    asyncio.run(ensure_user(stack.environment.settings.database_url, email, PASSWORD,
                            "merchant", merchant.merchant_id))
    response = httpx.post(f"{stack.base_url}/v1/payments", timeout=10,
                          headers={"Authorization": f"Bearer {merchant.api_key}"},
                          json={"amount": 1234, "currency": "usd", "payment_method": CARD})
    assert response.status_code in (201, 202), response.text
    return Tenant(merchant.merchant_id, merchant.api_key, email,
                  response.json()["transaction"]["id"])


@pytest.fixture(scope="module")
def tenants(stack: RunningStack) -> tuple[Tenant, Tenant]:
    return _tenant(stack, "Alpha Shop"), _tenant(stack, "Beta Shop")


@pytest.fixture
def browser(stack: RunningStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.base_url, timeout=10) as client:
        yield client


def login(client: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/api/auth/login", json={"email": email, "password": password})


def test_login_sets_an_httponly_samesite_session_cookie_and_returns_a_csrf_token(
    browser: httpx.Client, tenants: tuple[Tenant, Tenant]
) -> None:
    response = login(browser, tenants[0].email.upper())
    assert response.status_code == 200, response.text
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("payflow_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=" in cookie
    assert "Secure" not in cookie  # test mode; production adds it (test_cookie_is_secure...)
    body = response.json()
    assert body["user"]["merchant_id"] == tenants[0].merchant_id
    assert body["user"]["role"] == "merchant" and len(body["csrf_token"]) >= 32
    me = browser.get("/api/auth/me")
    assert me.status_code == 200 and me.json()["csrf_token"] == body["csrf_token"]


def test_wrong_password_and_unknown_email_get_the_same_401(browser: httpx.Client,
                                                           tenants: tuple[Tenant, Tenant]) -> None:
    wrong = login(browser, tenants[1].email, "not the password")
    unknown = login(browser, f"nobody-{uuid.uuid4().hex}@x.test")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert "set-cookie" not in wrong.headers


def test_every_login_rotates_the_session_and_the_old_one_stops_working(
    stack: RunningStack, tenants: tuple[Tenant, Tenant]
) -> None:
    with httpx.Client(base_url=stack.base_url, timeout=10) as client:
        first = login(client, tenants[0].email)
        old_token = client.cookies["payflow_session"]
        second = login(client, tenants[0].email)  # presents the old cookie
        assert client.cookies["payflow_session"] != old_token
        assert first.json()["csrf_token"] != second.json()["csrf_token"]
    stale = httpx.get(f"{stack.base_url}/api/auth/me", cookies={"payflow_session": old_token})
    assert stale.status_code == 401


def test_logout_needs_the_csrf_token_and_ends_the_session(
    browser: httpx.Client, tenants: tuple[Tenant, Tenant]
) -> None:
    csrf = login(browser, tenants[0].email).json()["csrf_token"]
    token = browser.cookies["payflow_session"]
    refused = browser.post("/api/auth/logout")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "csrf_token_invalid"
    assert browser.post("/api/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
    after = httpx.get(f"{browser.base_url}/api/auth/me", cookies={"payflow_session": token})
    assert after.status_code == 401


def test_cookie_authenticated_changes_need_the_csrf_token_before_the_body_is_read(
    browser: httpx.Client, tenants: tuple[Tenant, Tenant]
) -> None:
    csrf = login(browser, tenants[0].email).json()["csrf_token"]
    forged = browser.post("/v1/payments", content=b"not even json",
                          headers={"Content-Type": "application/json"})
    assert forged.status_code == 403
    with_token = browser.post("/v1/payments", content=b"not even json",
                              headers={"Content-Type": "application/json",
                                       "X-CSRF-Token": csrf})
    assert with_token.status_code == 400  # past authentication, refused by validation


def test_the_session_cookie_reads_the_merchants_payments_and_no_one_elses(
    browser: httpx.Client, tenants: tuple[Tenant, Tenant]
) -> None:
    alpha, beta = tenants
    login(browser, alpha.email)
    assert browser.get(f"/v1/payments/{alpha.payment_id}").status_code == 200
    assert browser.get(f"/v1/payments/{beta.payment_id}").status_code == 404
    switched = browser.get(f"/v1/payments/{beta.payment_id}",
                           headers={"X-Merchant-Id": beta.merchant_id})
    assert switched.status_code == 404  # a merchant user cannot switch
    listed = browser.get("/v1/payments", headers={"X-Merchant-Id": beta.merchant_id}).json()
    assert {t["merchant_id"] for t in listed["data"]} == {alpha.merchant_id}
    merchants = browser.get("/api/merchants").json()["data"]
    assert [m["id"] for m in merchants] == [alpha.merchant_id]


@pytest.mark.parametrize("role", ["admin", "analyst"])
def test_staff_switch_merchants_with_a_header_and_must_choose_one(
    stack: RunningStack, browser: httpx.Client, tenants: tuple[Tenant, Tenant], role: str
) -> None:
    alpha, beta = tenants
    email = f"{role}-{uuid.uuid4().hex[:8]}@payflow.test"
    asyncio.run(ensure_user(stack.environment.settings.database_url, email, PASSWORD,
                            role, None))  # type: ignore[arg-type]
    assert login(browser, email).status_code == 200
    assert browser.get("/v1/payments").json()["error"]["code"] == "merchant_required"
    ids = {m["id"] for m in browser.get("/api/merchants").json()["data"]}
    assert {alpha.merchant_id, beta.merchant_id} <= ids
    seen = browser.get(f"/v1/payments/{beta.payment_id}",
                       headers={"X-Merchant-Id": beta.merchant_id})
    assert seen.status_code == 200 and seen.json()["merchant_id"] == beta.merchant_id
    listed = browser.get("/v1/payments", headers={"X-Merchant-Id": alpha.merchant_id}).json()
    assert {t["merchant_id"] for t in listed["data"]} == {alpha.merchant_id}
    assert browser.get(f"/v1/payments/{beta.payment_id}",
                       headers={"X-Merchant-Id": alpha.merchant_id}).status_code == 404
    unknown = browser.get("/v1/payments", headers={"X-Merchant-Id": "mer_nope"})
    assert unknown.status_code == 404


def test_repeated_failed_logins_are_rate_limited_even_with_the_right_password(
    stack: RunningStack, browser: httpx.Client
) -> None:
    merchant = stack.environment.create_merchant("Gamma Shop")
    email = f"limited-{uuid.uuid4().hex[:8]}@gamma.test"
    asyncio.run(ensure_user(stack.environment.settings.database_url, email, PASSWORD,
                            "merchant", merchant.merchant_id))
    limit = stack.environment.settings.login_max_failures
    for _ in range(limit):
        assert login(browser, email, "wrong password!").status_code == 401
    blocked = login(browser, email)
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert blocked.json()["error"]["code"] == "too_many_login_attempts"


def test_a_session_expires_with_its_redis_ttl(
    stack: RunningStack, tenants: tuple[Tenant, Tenant]
) -> None:
    settings = stack.environment.settings

    async def short_session() -> str:
        redis = Redis.from_url(settings.redis_url)
        try:
            store = SessionStore(redis, settings.session_secret.get_secret_value().encode(),
                                 ttl_seconds=1, namespace=settings.topic_prefix)
            user = User("usr_expiry", "e@x.test", "merchant", tenants[0].merchant_id, "")
            token, _ = await store.create(user)
            return token
        finally:
            await redis.aclose()

    token = asyncio.run(short_session())
    cookies = {"payflow_session": token}
    assert httpx.get(f"{stack.base_url}/api/auth/me", cookies=cookies).status_code == 200
    time.sleep(1.6)
    expired = httpx.get(f"{stack.base_url}/v1/payments", cookies=cookies)
    assert expired.status_code == 401


def test_api_keys_still_work_and_do_not_need_csrf(stack: RunningStack,
                                                  tenants: tuple[Tenant, Tenant]) -> None:
    alpha = tenants[0]
    response = httpx.get(f"{stack.base_url}/v1/payments/{alpha.payment_id}",
                         headers={"Authorization": f"Bearer {alpha.api_key}"})
    assert response.status_code == 200
    assert httpx.get(f"{stack.base_url}/api/auth/me",
                     headers={"Authorization": f"Bearer {alpha.api_key}"}).status_code == 401

