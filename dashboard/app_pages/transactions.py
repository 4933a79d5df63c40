"""Transactions: filter and page through payments; open one for its timeline, risk, ledger
entries, and capture, void or refund it (full or partial) after a confirmation."""

from __future__ import annotations

from typing import Any

import httpx
import pandas as pd
import streamlit as st

from dashboard import charts
from dashboard.client import ApiClient, ApiError, Auth, NotAvailable, SessionExpired
from dashboard.formatting import (
    REFUND_REASONS,
    STATUSES,
    Filters,
    action_limit,
    available_actions,
    error_text,
    exponent,
    money,
    to_minor,
    transaction_rows,
)
from dashboard.state import clear_cache, end_session, fresh_key, load, require_auth

PAGE_KEY = "tx_page_number"
PENDING_KEY = "tx_pending"
FLASH_KEY = "tx_flash"


def filter_form() -> tuple[Filters, int]:
    with st.form("tx_filters"):
        top = st.columns(4)
        status = top[0].selectbox("Status", ["any", *STATUSES], key="tx_status")
        currency = top[1].text_input("Currency", max_chars=3, key="tx_currency")
        search = top[2].text_input("Search: id, last4, processor ref", key="tx_search")
        limit = top[3].selectbox("Rows per page", [25, 50, 100], key="tx_limit")
        bottom = st.columns(4)
        start = bottom[0].date_input("From", value=None, key="tx_start")
        end = bottom[1].date_input("To (inclusive)", value=None, key="tx_end")
        low = bottom[2].number_input("Min amount", value=None, min_value=0.0, key="tx_min")
        high = bottom[3].number_input("Max amount", value=None, min_value=0.0, key="tx_max")
        if st.form_submit_button("Apply filters"):
            st.session_state[PAGE_KEY] = 1
    filters = Filters(status=None if status == "any" else status,
                      currency=currency.strip().upper() or None, search=search or None,
                      start=start, end=end, min_amount=low, max_amount=high)
    return filters, int(limit)


def pager(total: int, limit: int, page: int, has_more: bool) -> None:
    pages = max(1, -(-total // limit))
    left, middle, right = st.columns([1, 3, 1])
    if left.button("← Newer", key="tx_prev", disabled=page <= 1):
        st.session_state[PAGE_KEY] = page - 1
        st.rerun()
    middle.caption(f"Page {page} of {pages:,} · {total:,} payments")
    if right.button("Older →", key="tx_next", disabled=not has_more):
        st.session_state[PAGE_KEY] = page + 1
        st.rerun()


def show_detail(auth: Auth, payment_id: str) -> None:
    transaction = load("Payment", auth, f"/v1/payments/{payment_id}")
    if not transaction:
        return
    currency = transaction["currency"]
    st.subheader(f"Payment {transaction['id']}")
    if flash := st.session_state.pop(FLASH_KEY, None):
        (st.success if flash[0] == "ok" else st.error)(flash[1])
    figures = st.columns(4)
    figures[0].metric("Status", transaction["status"])
    figures[1].metric("Amount", money(transaction["amount"], currency))
    figures[2].metric("Captured", money(transaction["captured_amount"], currency))
    figures[3].metric("Refunded", money(transaction["refunded_amount"], currency))
    gauge, facts = st.columns([1, 2])
    with gauge:
        st.altair_chart(charts.risk_gauge(transaction["fraud_score"], transaction["risk_level"]))
        st.markdown(f"**Risk:** {transaction['risk_level'] or 'not scored yet'}")
        for flag in transaction.get("fraud_flags") or []:
            st.markdown(f"- {flag}")
    with facts:
        method = transaction["payment_method"]
        details = method.get("card") or method.get("bank_account") or {}
        st.markdown(f"**Method:** {method['type']} {details.get('brand', '')} "
                    f"••{details.get('last4', '')}  \n**Processor ref:** "
                    f"{transaction['processor_ref'] or '—'}  \n**Decline code:** "
                    f"{transaction['decline_code'] or '—'}  \n**Created:** "
                    f"{transaction['created_at']}  \n**Description:** "
                    f"{transaction['description'] or '—'}")
    actions(auth, transaction)
    timeline_tab, ledger_tab = st.tabs(["Timeline", "Ledger entries"])
    with timeline_tab:
        timeline = load("Timeline", auth, f"/v1/payments/{payment_id}/timeline")
        if timeline is not None:
            st.dataframe(pd.DataFrame(timeline["data"]), hide_index=True,
                         width="stretch")
    with ledger_tab:
        entries = load("Ledger entries", auth, f"/v1/payments/{payment_id}/ledger_entries")
        if entries is not None:
            rows = [{**e, "amount": money(e["amount"], e["currency"])} for e in entries["data"]]
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def actions(auth: Auth, transaction: dict[str, Any]) -> None:
    available = available_actions(transaction)
    pending = st.session_state.get(PENDING_KEY)
    if pending and pending["payment_id"] == transaction["id"]:
        confirm(auth, transaction, pending)
        return
    if not available:
        st.caption(f"No actions for a {transaction['status']} payment.")
        return
    currency = transaction["currency"]
    step = 1.0 if exponent(currency) == 0 else 0.01
    for action, column in zip(available, st.columns(len(available)), strict=True):
        with column:
            amount = None
            reason = None
            if action in {"capture", "refund"}:
                amount = st.number_input(f"{action.title()} amount ({currency}); empty = all",
                                         value=None, min_value=step, step=step,
                                         key=f"tx_{action}_amount")
            if action == "refund":
                reason = st.selectbox("Reason", ["—", *REFUND_REASONS], key="tx_refund_reason")
            if st.button(action.title() + "…", key=f"tx_{action}"):
                request(transaction, action, to_minor(amount, currency),
                        None if reason in (None, "—") else reason)


def request(transaction: dict[str, Any], action: str, amount: int | None,
            reason: str | None) -> None:
    limit = action_limit(transaction, action)
    if amount is not None and amount > limit:
        done = {"capture": "captured", "refund": "refunded"}[action]
        st.error(f"At most {money(limit, transaction['currency'])} can be {done}.")
        return
    st.session_state[PENDING_KEY] = {"payment_id": transaction["id"], "action": action,
                                     "amount": amount, "reason": reason, "key": fresh_key()}
    st.rerun()


def confirm(auth: Auth, transaction: dict[str, Any], pending: dict[str, Any]) -> None:
    amount = pending["amount"] or action_limit(transaction, pending["action"])
    shown = money(amount, transaction["currency"]) if pending["action"] != "void" else "the hold"
    st.warning(f"{pending['action'].title()} {shown} of payment {transaction['id']}?")
    yes, no = st.columns(2)
    if yes.button(f"Confirm {pending['action']}", key="tx_confirm", type="primary"):
        perform(auth, pending)
    if no.button("Cancel", key="tx_cancel"):
        st.session_state.pop(PENDING_KEY, None)
        st.rerun()


def perform(auth: Auth, pending: dict[str, Any]) -> None:
    body: dict[str, Any] = {}
    if pending["amount"] is not None:
        body["amount"] = pending["amount"]
    if pending["reason"]:
        body["reason"] = pending["reason"]
    try:
        result = ApiClient(auth).act(pending["payment_id"], pending["action"], body,
                                     pending["key"])
    except SessionExpired:
        end_session("Your session ended. Please log in again.")
        st.rerun()
    except NotAvailable:
        flash = ("error", f"{pending['action'].title()} is not available yet in this API.")
    except ApiError as error:
        flash = ("error", f"{pending['action'].title()} refused: "
                          f"{error_text(error.code, error.message)}")
    except httpx.HTTPError as error:
        flash = ("error", f"The API did not answer ({type(error).__name__}); nothing was "
                          "confirmed. Check the payment before trying again.")
    else:
        flash = ("ok", f"{pending['action'].title()} done: the payment is now "
                       f"{result['status']}.")
    st.session_state.pop(PENDING_KEY, None)
    st.session_state[FLASH_KEY] = flash
    clear_cache()
    st.rerun()


auth = require_auth()
st.title("Transactions")
filters, limit = filter_form()
for problem in filters.problems():
    st.error(problem)
if not filters.problems():
    page = int(st.session_state.get(PAGE_KEY, 1))
    result = load("Payments", auth, "/v1/payments", **filters.params(page, limit))
    if result is not None:
        rows = transaction_rows(result["data"])
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                     key="tx_table")
        pager(int(result["total"]), limit, page, bool(result.get("has_more")))
        ids = [row["id"] for row in rows]
        chosen = st.selectbox("Open a payment", ids, index=None, key="tx_selected",
                              placeholder="Choose a payment on this page")
        typed = st.text_input("…or open by id", key="tx_open_id").strip()
        if opened := typed or chosen:
            show_detail(auth, str(opened))
