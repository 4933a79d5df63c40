"""Exports: every transaction matching a filter, as CSV (paged through the API)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard.client import ApiClient, Auth
from dashboard.formatting import STATUSES, Filters, transactions_csv
from dashboard.state import guarded, require_auth

MAX_ROWS = 50_000
PAGE_SIZE = 100


def collect(auth: Auth, filters: Filters, progress: Any) -> list[dict[str, Any]]:
    """Page through ``/v1/payments`` (100 a request) up to ``MAX_ROWS``."""
    client = ApiClient(auth)
    rows: list[dict[str, Any]] = []
    for page in range(1, MAX_ROWS // PAGE_SIZE + 1):
        answer = client.payments(filters.params(page, PAGE_SIZE))
        rows.extend(answer["data"])
        total = max(int(answer["total"]), 1)
        progress.progress(min(len(rows) / min(total, MAX_ROWS), 1.0),
                          text=f"{len(rows):,} of {total:,}")
        if not answer.get("has_more"):
            break
    return rows


auth = require_auth()
st.title("Exports")
with st.form("ex_filters"):
    top = st.columns(3)
    status = top[0].selectbox("Status", ["any", *STATUSES], key="ex_status")
    currency = top[1].text_input("Currency", max_chars=3, key="ex_currency")
    search = top[2].text_input("Search", key="ex_search")
    bottom = st.columns(2)
    start = bottom[0].date_input("From", value=None, key="ex_start")
    end = bottom[1].date_input("To (inclusive)", value=None, key="ex_end")
    build = st.form_submit_button("Build CSV")
filters = Filters(status=None if status == "any" else status,
                  currency=currency.strip().upper() or None, search=search or None,
                  start=start, end=end)
for problem in filters.problems():
    st.error(problem)
if build and not filters.problems():
    progress = st.progress(0.0, text="Collecting…")
    rows = guarded("Export", lambda: collect(auth, filters, progress))
    if rows is not None:
        st.session_state["ex_csv"] = transactions_csv(rows)
        st.session_state["ex_count"] = len(rows)
        if len(rows) >= MAX_ROWS:
            st.warning(f"Stopped at {MAX_ROWS:,} rows; narrow the filter for the rest.")
if "ex_csv" in st.session_state:
    st.download_button(f"Download {st.session_state['ex_count']:,} transactions (CSV)",
                       st.session_state["ex_csv"], file_name="transactions.csv",
                       mime="text/csv", key="ex_download")
