"""The PostgreSQL schema (versioned SQL migrations) and the runner that applies them."""
