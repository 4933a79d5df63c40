"""Fraud model code shared by online scoring and offline training.

``facts`` (what a payment or label says) → ``features`` (per-entity window records, one
implementation) → ``history`` (offline replay) → ``training`` → ``scoring`` (skops artifacts,
batch predictions) → ``registry`` (PostgreSQL, promotions); ``decision`` turns features, the
model's opinion and a merchant's thresholds into a verdict. Pure except ``registry``."""
