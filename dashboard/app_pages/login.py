"""Login: email and password; the session stays on the Streamlit server."""

from __future__ import annotations

import httpx
import streamlit as st

from dashboard import client
from dashboard.state import AUTH_KEY, NOTICE_KEY, api_base_url, clear_cache
from payflow.settings import get_settings

st.title("payflow")
st.caption("Sign in to see your payments, revenue and risk.")
if notice := st.session_state.pop(NOTICE_KEY, None):
    st.warning(notice)

with st.form("login_form"):
    email = st.text_input("Email", key="login_email")
    password = st.text_input("Password", type="password", key="login_password")
    submitted = st.form_submit_button("Log in", type="primary")

if submitted:
    if not email or not password:
        st.error("Enter your email and password.")
    else:
        try:
            auth = client.login(api_base_url(), email, password,
                                cookie_name=get_settings().session_cookie_name)
        except client.ApiError as error:
            st.error("Wrong email or password." if error.status == 401 else error.message)
        except httpx.HTTPError as error:
            st.error(f"The API did not answer ({type(error).__name__}).")
        else:
            st.session_state[AUTH_KEY] = auth
            clear_cache()
            st.rerun()
