"""Risk: fraud-score distribution, decisions over time, top flags, and the fraud model."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import streamlit as st

from dashboard import charts
from dashboard.client import ApiClient, NotAvailable
from dashboard.state import guarded, load, require_auth

auth = require_auth()
st.title("Risk")
days = st.select_slider("Days", options=[7, 14, 30, 90, 180], value=30, key="risk_days")
end = date.today() + timedelta(days=1)
risk = load("Risk figures", auth, "/api/analytics/risk", start=(end - timedelta(days=days)),
            end=end)
if risk:
    left, right = st.columns(2)
    with left:
        st.subheader("Score distribution")
        st.altair_chart(charts.histogram_chart(risk["histogram"]), width="stretch")
    with right:
        st.subheader("Decisions over time")
        st.altair_chart(charts.decisions_chart(risk["decisions"]), width="stretch")
    st.subheader("Top flags")
    if risk["top_flags"]:
        st.altair_chart(charts.flags_chart(risk["top_flags"]), width="stretch")
    else:
        st.caption("No flagged payments in this period.")

st.subheader("Fraud model")


def model_info() -> dict[str, object] | None:
    try:
        result: dict[str, object] = ApiClient(auth).get("/api/models")
    except NotAvailable:
        return None
    return result


info = guarded("Fraud model", model_info)
if info is None:
    st.info("Model details are not available yet (the API has no /api/models).")
else:
    models = info.get("data", info)
    st.dataframe(pd.DataFrame(models if isinstance(models, list) else [models]),
                 hide_index=True, width="stretch")
