"""The Streamlit dashboard; it reaches data only through the API, as the logged-in merchant."""
