"""Risk: fraud-score distribution, decisions over time, top flags, and the fraud model."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import charts
from dashboard.client import ApiError
from dashboard.formatting import model_rows
from dashboard.state import cached_get, guarded, load, require_auth

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


def fraud_models() -> dict[str, Any] | None:
    """The registry's models; None (with a note) for merchant users, who may not see them."""
    try:
        result: dict[str, Any] = cached_get(auth, "/api/models")
    except ApiError as error:
        if error.status != 403:
            raise
        st.info("The fraud model's details are visible to analysts and admins.")
        return None
    return result


registry = guarded("Fraud model", fraud_models)
if registry is not None:
    if registry["data"]:
        st.dataframe(pd.DataFrame(model_rows(registry["data"])), hide_index=True,
                     width="stretch")
        if registry["champion_version"] is None:
            st.caption("No model has been promoted: decisions use the rules alone.")
    else:
        st.caption("No fraud model is registered yet (`payflow model bootstrap` trains one).")
