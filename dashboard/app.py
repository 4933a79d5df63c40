"""payflow dashboard (foundation): recent payments of the merchant whose key it holds.

It reads everything through the API (``GET /v1/payments``) and holds no database credentials.
Login, analytics pages and actions arrive with the dashboard issue.
"""

from __future__ import annotations

from typing import Any

import httpx
import streamlit as st

from payflow.settings import get_settings

st.set_page_config(page_title="payflow", page_icon="💳", layout="wide")


@st.cache_data(ttl=2)
def load_payments(base_url: str, api_key: str, limit: int) -> dict[str, Any]:
    response = httpx.get(
        f"{base_url}/v1/payments",
        params={"limit": limit},
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=5,
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def main() -> None:
    settings = get_settings()
    st.title("payflow")
    api_key = settings.dashboard_api_key.get_secret_value() or st.text_input(
        "API key", type="password", key="home_api_key"
    )
    if not api_key:
        st.info("Enter a secret API key (sk_test_...) to see that merchant's payments.")
        return
    try:
        page = load_payments(settings.api_base_url, api_key, 50)
    except httpx.HTTPError as error:
        st.error(f"The API did not answer: {error}")
        return
    rows = [
        {
            "id": t["id"],
            "created": t["created_at"],
            "amount": t["amount"],
            "currency": t["currency"],
            "status": t["status"],
            "fraud score": t["fraud_score"],
            "risk": t["risk_level"],
            "card": (t["payment_method"].get("card") or {}).get("last4"),
        }
        for t in page["data"]
    ]
    left, right = st.columns(2)
    left.metric("Payments", page["total"])
    right.metric("Shown", len(rows))
    st.dataframe(rows, use_container_width=True, hide_index=True)
    if st.button("Refresh", key="home_refresh"):
        load_payments.clear()
        st.rerun()


main()
