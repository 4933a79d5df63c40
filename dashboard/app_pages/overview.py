"""Overview: KPI cards with period-over-period change, revenue and volume over time."""

from __future__ import annotations

import streamlit as st

from dashboard import charts
from dashboard.formatting import kpi_cards
from dashboard.state import load, require_auth
from payflow.settings import get_settings

PERIODS = {"24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days",
           "90d": "Last 90 days"}

auth = require_auth()
st.title("Overview")
currencies = (load("Currencies", auth, "/api/analytics/currencies") or {}).get("data") or []
controls = st.columns([1, 1, 1, 1])
currency = controls[0].selectbox("Currency", currencies or ["USD"], key="ov_currency")
period: str = controls[1].selectbox("Period", list(PERIODS), index=2,
                                    format_func=lambda p: PERIODS[p], key="ov_period") or "30d"
granularity = controls[2].radio("Revenue by", ["day", "week", "month"], horizontal=True,
                                key="ov_granularity")
auto = controls[3].toggle("Auto-refresh", value=True, key="ov_autorefresh")
refresh = get_settings().dashboard_refresh_seconds if auto else None


@st.fragment(run_every=refresh)
def figures() -> None:
    summary = load("KPIs", auth, "/api/analytics/summary", currency=currency, period=period)
    if summary:
        cards = kpi_cards(summary["kpis"], summary["currency"] or currency)
        for row_start in range(0, len(cards), 4):
            for column, card in zip(st.columns(4), cards[row_start:row_start + 4], strict=False):
                column.metric(card.label, card.value, card.delta,
                              delta_color="inverse" if card.delta_color == "inverse" else "normal")
        st.caption(f"Compared with the {PERIODS[period].lower().replace('last ', 'previous ')}"
                   f"; updated every {refresh} s." if refresh else "")
    revenue = load("Revenue", auth, "/api/analytics/revenue", granularity=granularity,
                   currency=currency)
    if revenue:
        st.subheader(f"Revenue by {granularity}")
        st.altair_chart(charts.revenue_chart(revenue["data"], currency), width="stretch")
        st.subheader("Payments")
        st.altair_chart(charts.volume_chart(revenue["data"], currency), width="stretch")


figures()
