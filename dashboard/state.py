"""Streamlit glue shared by the pages: the logged-in session, cached API reads, error display.

The session token lives only in ``st.session_state`` on the Streamlit server. Reads go through
``st.cache_data`` keyed by the session token and acting merchant, so two users never share a
cached answer; after an action the cache is cleared.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import streamlit as st

from dashboard.client import ApiClient, ApiError, Auth, NotAvailable, SessionExpired
from payflow.settings import get_settings

AUTH_KEY = "auth"
NOTICE_KEY = "auth_notice"
BASE_URL_KEY = "api_base_url"
CACHE_SECONDS = 15
T = TypeVar("T")


def api_base_url() -> str:
    url: str = st.session_state.get(BASE_URL_KEY) or get_settings().api_base_url
    return url


def current_auth() -> Auth | None:
    auth: Auth | None = st.session_state.get(AUTH_KEY)
    return auth


def require_auth() -> Auth:
    """The logged-in user's Auth; otherwise a hint to log in, and the page stops."""
    auth = current_auth()
    if auth is None:
        st.warning("Please log in.")
        st.stop()
    assert auth is not None
    if auth.merchant_id is None:
        st.info("Choose a merchant in the sidebar.")
        st.stop()
    return auth


def end_session(notice: str | None = None) -> None:
    st.session_state.pop(AUTH_KEY, None)
    if notice:
        st.session_state[NOTICE_KEY] = notice
    clear_cache()


def clear_cache() -> None:
    _cached_get.clear()


@st.cache_data(ttl=CACHE_SECONDS, show_spinner=False, max_entries=2000)
def _cached_get(token: str, merchant_id: str, path: str, params: tuple[tuple[str, Any], ...],
                _auth: Auth) -> Any:
    return ApiClient(_auth).get(path, **dict(params))


def cached_get(auth: Auth, path: str, **params: Any) -> Any:
    """A GET answer, cached per session and merchant for ``CACHE_SECONDS``."""
    return _cached_get(auth.token, auth.merchant_id or "", path, tuple(sorted(params.items())),
                       _auth=auth)


def guarded(what: str, call: Callable[[], T]) -> T | None:
    """Run an API call; show what went wrong instead of crashing (None then)."""
    try:
        return call()
    except NotAvailable:
        st.info(f"{what}: not available yet — this API endpoint has not been deployed.")
    except SessionExpired:
        end_session("Your session ended. Please log in again.")
        st.rerun()
    except ApiError as error:
        st.error(f"{what}: {error.message} ({error.code})")
    except httpx.HTTPError as error:
        st.error(f"{what}: the API did not answer ({type(error).__name__}).")
    return None


def load(what: str, auth: Auth, path: str, **params: Any) -> Any:
    """A cached GET with errors shown on the page."""
    return guarded(what, lambda: cached_get(auth, path, **params))


def fresh_key() -> str:
    """An Idempotency-Key for one user action (reused if that action is retried)."""
    return uuid.uuid4().hex
