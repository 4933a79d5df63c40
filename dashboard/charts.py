"""Chart functions: data in, an Altair chart out. No Streamlit, no HTTP."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import altair as alt
import pandas as pd

from dashboard.formatting import exponent

MONEY_SERIES = {"gross_volume": "Gross volume", "net_amount": "Net revenue",
                "refunded_amount": "Refunded"}


def revenue_chart(points: Sequence[Mapping[str, Any]], currency: str) -> alt.Chart:
    """Gross volume, net revenue and refunds per period, in major units."""
    scale = 10 ** exponent(currency)
    rows = [{"period": p["period_start"], "series": label, "amount": p[field] / scale}
            for p in points if p["currency"] == currency for field, label in MONEY_SERIES.items()]
    frame = pd.DataFrame(rows, columns=["period", "series", "amount"])
    chart = alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("period:T", title=None),
        y=alt.Y("amount:Q", title=currency),
        color=alt.Color("series:N", title=None),
        tooltip=["period:T", "series:N", alt.Tooltip("amount:Q", format=",.2f")],
    ).properties(height=280)
    return cast(alt.Chart, chart)


def volume_chart(points: Sequence[Mapping[str, Any]], currency: str) -> alt.Chart:
    """Approved and declined payments per period."""
    rows = [{"period": p["period_start"], "outcome": outcome, "payments": p[field]}
            for p in points if p["currency"] == currency
            for field, outcome in (("approvals", "approved"), ("declines", "declined"))]
    frame = pd.DataFrame(rows, columns=["period", "outcome", "payments"])
    chart = alt.Chart(frame).mark_bar().encode(
        x=alt.X("period:T", title=None), y=alt.Y("payments:Q", title="payments"),
        color=alt.Color("outcome:N", title=None,
                        scale=alt.Scale(domain=["approved", "declined"],
                                        range=["#2e7d32", "#c62828"])),
        tooltip=["period:T", "outcome:N", "payments:Q"],
    ).properties(height=220)
    return cast(alt.Chart, chart)


def histogram_chart(buckets: Sequence[Mapping[str, Any]]) -> alt.Chart:
    frame = pd.DataFrame(list(buckets), columns=["scores", "payments"])
    chart = alt.Chart(frame).mark_bar().encode(
        x=alt.X("scores:N", sort=None, title="fraud score"),
        y=alt.Y("payments:Q"), tooltip=["scores:N", "payments:Q"],
    ).properties(height=240)
    return cast(alt.Chart, chart)


def decisions_chart(days: Sequence[Mapping[str, Any]]) -> alt.Chart:
    rows = [{"day": d["day"], "decision": name, "payments": d[field]} for d in days
            for field, name in (("approvals", "approved"), ("declines", "declined"),
                                ("reviews", "review"))]
    frame = pd.DataFrame(rows, columns=["day", "decision", "payments"])
    chart = alt.Chart(frame).mark_area(opacity=0.8).encode(
        x=alt.X("day:T", title=None), y=alt.Y("payments:Q", stack=True),
        color=alt.Color("decision:N", title=None), tooltip=["day:T", "decision:N", "payments:Q"],
    ).properties(height=240)
    return cast(alt.Chart, chart)


def flags_chart(flags: Sequence[Mapping[str, Any]]) -> alt.Chart:
    frame = pd.DataFrame(list(flags), columns=["flag", "payments"])
    chart = alt.Chart(frame).mark_bar().encode(
        x=alt.X("payments:Q"), y=alt.Y("flag:N", sort="-x", title=None),
        tooltip=["flag:N", "payments:Q"],
    ).properties(height=max(120, 28 * len(flags)))
    return cast(alt.Chart, chart)


RISK_COLORS = {"low": "#2e7d32", "medium": "#f9a825", "high": "#c62828"}


def risk_gauge(score: int | None, level: str | None) -> alt.LayerChart:
    """A half-dial 0-100 with the score's arc coloured by its risk level."""
    value = 0 if score is None else max(0, min(100, score))
    frame = pd.DataFrame([{"part": "score", "value": value, "order": 0},
                          {"part": "rest", "value": 100 - value, "order": 1}])
    color = RISK_COLORS.get(level or "", "#9e9e9e")
    base = alt.Chart(frame).encode(
        theta=alt.Theta("value:Q", stack=True, scale=alt.Scale(range=[-1.5708, 1.5708])),
        order=alt.Order("order:Q"),  # the score fills the dial from the left
        color=alt.Color("part:N", scale=alt.Scale(domain=["score", "rest"],
                                                  range=[color, "#e0e0e0"]), legend=None),
    )
    arc = base.mark_arc(innerRadius=60, outerRadius=90)
    label = alt.Chart(pd.DataFrame([{"text": "—" if score is None else str(score)}])).mark_text(
        fontSize=28, dy=-10).encode(text="text:N")
    return cast(alt.LayerChart, alt.layer(arc, label).properties(height=120, width=200))
