"""The dashboard's typed HTTP client for payflow's API, acting as the logged-in user.

The Streamlit server holds the session token (never the browser: it is not put in any page) and
sends it as the session cookie, with the session's CSRF token on every state change and, for
analysts and admins, ``X-Merchant-Id``. Errors become ``ApiError``; a route the API does not
have yet becomes ``NotAvailable`` and an ended session ``SessionExpired``, so pages can say so
instead of crashing. This is the dashboard's only HTTP code; it imports nothing from the API.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

import httpx

TIMEOUT_SECONDS = 10.0
SESSION_COOKIE = "payflow_session"


@dataclass(frozen=True, slots=True)
class Auth:
    """Everything needed to call the API as one logged-in user (kept server-side)."""

    base_url: str
    token: str
    csrf_token: str
    user_id: str
    email: str
    role: str
    own_merchant_id: str | None
    merchant_id: str | None = None
    """The merchant acted for: the user's own, or the one an analyst/admin chose."""
    cookie_name: str = SESSION_COOKIE

    @property
    def can_switch_merchant(self) -> bool:
        return self.role in {"analyst", "admin"}

    def acting_for(self, merchant_id: str | None) -> Auth:
        return replace(self, merchant_id=merchant_id)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param


class NotAvailable(ApiError):
    """The API has no such route (yet)."""


class SessionExpired(ApiError):
    """The session ended (expired, logged out elsewhere): log in again."""


def _error_of(response: httpx.Response) -> ApiError:
    try:
        error = response.json().get("error", {})
    except ValueError:
        error = {}
    code = str(error.get("code") or f"http_{response.status_code}")
    message = str(error.get("message") or response.reason_phrase or "request failed")
    if response.status_code == 401:
        return SessionExpired(401, code, message)
    if response.status_code == 405 or (response.status_code == 404 and code == "not_found"):
        return NotAvailable(response.status_code, code, message)
    return ApiError(response.status_code, code, message, error.get("param"))


def login(base_url: str, email: str, password: str, cookie_name: str = SESSION_COOKIE,
          transport: httpx.BaseTransport | None = None) -> Auth:
    """Log in; the answer's cookie becomes the server-side session token."""
    with httpx.Client(base_url=base_url, timeout=TIMEOUT_SECONDS, transport=transport) as http:
        response = http.post("/api/auth/login", json={"email": email, "password": password})
    if response.status_code != 200:
        error = _error_of(response)
        if response.status_code == 429:
            error.message += f" (retry in {response.headers.get('Retry-After', '?')} s)"
        raise error
    body = response.json()
    token = response.cookies.get(cookie_name)
    assert token, "the login answer set no session cookie"
    user = body["user"]
    return Auth(base_url=base_url, token=token, csrf_token=body["csrf_token"],
                user_id=user["id"], email=user["email"], role=user["role"],
                own_merchant_id=user["merchant_id"], merchant_id=user["merchant_id"],
                cookie_name=cookie_name)


class ApiClient:
    """Calls the API as ``auth``'s user. One short-lived HTTP client per call site."""

    def __init__(self, auth: Auth, transport: httpx.BaseTransport | None = None) -> None:
        self.auth = auth
        self.transport = transport

    def _headers(self, method: str, idempotency_key: str | None) -> dict[str, str]:
        headers = {"Cookie": f"{self.auth.cookie_name}={self.auth.token}"}
        if method not in {"GET", "HEAD"}:
            headers["X-CSRF-Token"] = self.auth.csrf_token
            headers["Idempotency-Key"] = idempotency_key or uuid.uuid4().hex
        if self.auth.can_switch_merchant and self.auth.merchant_id:
            headers["X-Merchant-Id"] = self.auth.merchant_id
        return headers

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                json: Any = None, idempotency_key: str | None = None) -> httpx.Response:
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        with httpx.Client(base_url=self.auth.base_url, timeout=TIMEOUT_SECONDS,
                          transport=self.transport) as http:
            response = http.request(method, path, params=clean, json=json,
                                    headers=self._headers(method, idempotency_key))
        if response.status_code >= 400:
            raise _error_of(response)
        return response

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params).json()

    def post(self, path: str, body: Any = None, idempotency_key: str | None = None) -> Any:
        return self.request("POST", path, json=body, idempotency_key=idempotency_key).json()

    # --- session ---------------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/api/auth/me")
        return result

    def logout(self) -> None:
        self.request("POST", "/api/auth/logout")

    def merchants(self) -> list[dict[str, Any]]:
        return list(self.get("/api/merchants", limit=1000)["data"])

    # --- payments --------------------------------------------------------------------------

    def payments(self, filters: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/v1/payments", **filters)
        return result

    def payment(self, payment_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/v1/payments/{payment_id}")
        return result

    def timeline(self, payment_id: str) -> list[dict[str, Any]]:
        return list(self.get(f"/v1/payments/{payment_id}/timeline")["data"])

    def ledger_entries(self, payment_id: str) -> list[dict[str, Any]]:
        return list(self.get(f"/v1/payments/{payment_id}/ledger_entries")["data"])

    def act(self, payment_id: str, action: str, body: dict[str, Any],
            idempotency_key: str) -> dict[str, Any]:
        """capture | void | refund; answers the transaction after the change."""
        assert action in {"capture", "void", "refund"}, action
        result: dict[str, Any] = self.post(f"/v1/payments/{payment_id}/{action}", body,
                                           idempotency_key)
        return result
