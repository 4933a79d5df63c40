"""Webhooks: the endpoint's settings, a signed test event, and the deliveries log with resend."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard.client import ApiClient, ApiError, NotAvailable
from dashboard.state import clear_cache, fresh_key, guarded, load, require_auth

DELIVERY_STATUSES = ["any", "pending", "succeeded", "failed"]

auth = require_auth()
st.title("Webhooks")


def current_endpoint() -> dict[str, Any] | None:
    try:
        result: dict[str, Any] = ApiClient(auth).get("/api/webhooks/endpoint")
    except NotAvailable:
        return None
    except ApiError as error:
        if error.status == 404:
            return None  # none configured yet
        raise
    return result


endpoint = guarded("Webhook endpoint", current_endpoint) or {}
with st.form("wh_endpoint"):
    url = st.text_input("Endpoint URL", value=endpoint.get("url", ""), key="wh_url")
    events = st.text_input("Events (comma-separated, * for all)",
                           value=", ".join(endpoint.get("enabled_events", ["*"])), key="wh_events")
    disabled = st.checkbox("Disabled", value=endpoint.get("status") == "disabled",
                           key="wh_disabled")
    saved = st.form_submit_button("Save endpoint")
if endpoint.get("disabled_reason") == "failing":
    st.warning("This endpoint was disabled automatically after failing continuously.")
if saved:
    body = {"url": url.strip(), "disabled": disabled,
            "enabled_events": [e.strip() for e in events.split(",") if e.strip()] or ["*"]}
    answer = guarded("Save endpoint",
                     lambda: ApiClient(auth).request("PUT", "/api/webhooks/endpoint", json=body))
    if answer is not None:
        secret = answer.json().get("secret")
        st.success("Saved." + (f" Signing secret (shown once): `{secret}`" if secret else ""))

if st.button("Send test event", key="wh_test"):
    result = guarded("Test event", lambda: ApiClient(auth).post("/api/webhooks/test", {}))
    if result:
        outcome = "succeeded" if result.get("success") else "failed"
        st.info(f"Test {outcome}: HTTP {result.get('status_code')} in "
                f"{result.get('latency_ms')} ms {result.get('error') or ''}")

st.subheader("Deliveries")
status = st.selectbox("Status", DELIVERY_STATUSES, key="wh_status")
page = int(st.number_input("Page", min_value=1, value=1, key="wh_page"))
deliveries = load("Deliveries", auth, "/api/webhooks/deliveries", page=page, limit=25,
                  status=None if status == "any" else status)
if deliveries is not None:
    rows = deliveries.get("data", [])
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption(f"{deliveries.get('total', len(rows)):,} deliveries")
    ids = [row["id"] for row in rows]
    chosen = st.selectbox("Resend a delivery", ids, index=None, key="wh_resend_id")
    if chosen and st.button("Resend", key="wh_resend"):
        done = guarded("Resend", lambda: ApiClient(auth).post(
            f"/api/webhooks/deliveries/{chosen}/resend", None, fresh_key()))
        if done is not None:
            clear_cache()
            st.success(f"Delivery {chosen} queued again.")
