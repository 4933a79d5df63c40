# The README's two commands are `make demo` and `make test`; each prepares a fresh clone first.
.PHONY: setup demo test test-slow test-soak test-overload audit services-up services-down lint

setup:
	./scripts/setup

demo: setup
	.venv/bin/payflow demo

services-up: setup
	.venv/bin/payflow services up

services-down:
	.venv/bin/payflow services down

# The whole default suite: unit tests, then integration and end-to-end tests on the real
# Kafka, PostgreSQL and Redis that `payflow services up` starts.
test: services-up
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/pytest

# Known vulnerabilities in the installed packages (pip-audit against PyPI's advisory data; see
# payflow/dependency_audit.py for what is audited when PyPI's per-release data is unreachable).
audit: setup
	.venv/bin/python -m payflow.dependency_audit

# Long fault, soak and overload tests (CI runs them).
test-slow: services-up
	.venv/bin/pytest -m slow

# The overload test alone; its figures go to .payflow/reports/overload.json.
test-overload: services-up
	.venv/bin/pytest -m overload -s

# The 10-minute memory soak alone (PAYFLOW_SOAK_SECONDS / PAYFLOW_SOAK_RATE change its length
# and rate); its figures go to .payflow/reports/soak.json.
test-soak: services-up
	.venv/bin/pytest -m soak -s

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

# Benchmarks (figures, not tests): the whole suite, or its 5-minute version (README "Benchmarks").
.PHONY: bench bench-quick
bench: services-up
	.venv/bin/payflow bench

bench-quick: services-up
	.venv/bin/payflow bench --quick
