"""payflow's dashboard: the Streamlit entry point (``payflow dashboard`` runs it).

Logged out, the only page is Login. Logged in, the sidebar shows the user, a merchant picker
for analysts and admins, and Log out; the pages reach data only through the API, as that user
(``dashboard.client``). The dashboard holds no database credentials.
"""

from __future__ import annotations

import streamlit as st

from dashboard.client import ApiClient
from dashboard.state import clear_cache, current_auth, end_session, guarded

st.set_page_config(page_title="payflow", page_icon="💳", layout="wide")

PAGES = {
    "Money": [("app_pages/overview.py", "Overview", "📈"),
              ("app_pages/transactions.py", "Transactions", "💳"),
              ("app_pages/payouts.py", "Payouts", "🏦"),
              ("app_pages/exports.py", "Exports", "⬇️")],
    "Operations": [("app_pages/risk.py", "Risk", "🛡️"),
                   ("app_pages/webhooks.py", "Webhooks", "🔔")],
}


def sidebar() -> None:
    auth = current_auth()
    assert auth is not None
    st.sidebar.write(f"**{auth.email}** · {auth.role}")
    if auth.can_switch_merchant:
        merchants = guarded("Merchants", lambda: ApiClient(auth).merchants()) or []
        names = {m["id"]: f"{m['name']} ({m['id']})" for m in merchants}
        ids = list(names)
        current = ids.index(auth.merchant_id) if auth.merchant_id in ids else None
        chosen = st.sidebar.selectbox("Merchant", ids, index=current, key="nav_merchant",
                                      format_func=names.__getitem__,
                                      placeholder="Choose a merchant")
        if chosen != auth.merchant_id:
            st.session_state["auth"] = auth.acting_for(chosen)
            clear_cache()
            st.rerun()
    if st.sidebar.button("Log out", key="nav_logout"):
        guarded("Log out", lambda: ApiClient(auth).logout())
        end_session("You are logged out.")
        st.rerun()


def main() -> None:
    if current_auth() is None:
        navigation = st.navigation([st.Page("app_pages/login.py", title="Log in", icon="🔑")])
    else:
        sidebar()
        navigation = st.navigation({
            section: [st.Page(path, title=title, icon=icon) for path, title, icon in pages]
            for section, pages in PAGES.items()
        })
    navigation.run()


main()
