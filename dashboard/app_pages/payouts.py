"""Payouts: balances per currency (pending, available, paid out) and payouts with their
settlement report as CSV."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.client import ApiClient
from dashboard.formatting import money
from dashboard.state import guarded, load, require_auth

auth = require_auth()
st.title("Payouts")
balances = load("Balances", auth, "/api/balances")
if balances is not None:
    st.subheader("Balances")
    for balance in balances.get("data", []):
        currency = balance["currency"]
        columns = st.columns(4)
        columns[0].metric("Currency", currency)
        columns[1].metric("Pending", money(balance.get("pending", 0), currency))
        columns[2].metric("Available", money(balance.get("available", 0), currency))
        columns[3].metric("Paid out", money(balance.get("paid_out", 0), currency))
    if not balances.get("data"):
        st.caption("No balances yet.")

payouts = load("Payouts", auth, "/api/payouts")
if payouts is not None:
    st.subheader("Payouts")
    rows = [{**p, "amount": money(p["amount"], p["currency"])} for p in payouts.get("data", [])]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    chosen = st.selectbox("Settlement report of payout", [p["id"] for p in rows], index=None,
                          key="po_report_id")
    if chosen:
        report = guarded("Settlement report", lambda: ApiClient(auth).request(
            "GET", f"/api/payouts/{chosen}/report.csv").content)
        if report is not None:
            st.download_button("Download CSV", report, file_name=f"{chosen}-settlement.csv",
                               mime="text/csv", key="po_download")

reconciliation = load("Reconciliation", auth, "/api/ledger/reconciliation")
if reconciliation is not None:
    st.subheader("Ledger reconciliation")
    if reconciliation.get("ran_at") is None:
        st.caption("No reconciliation has run yet (`payflow reconcile`).")
    elif reconciliation.get("ok"):
        st.success(f"Everything ties: {reconciliation['checks']} checks passed at "
                   f"{reconciliation['ran_at']}.")
    else:
        st.error(f"{reconciliation['problem_count']} problems found at "
                 f"{reconciliation['ran_at']}.")
        for problem in reconciliation.get("problems") or []:
            st.markdown(f"- {problem}")
