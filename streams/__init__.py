"""The Faust stream worker: risk features, scoring and decisions on payment requests."""
