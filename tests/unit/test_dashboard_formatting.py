"""The dashboard's pure rules: money, filters to query parameters, actions, KPI cards, CSV."""

from __future__ import annotations

from datetime import date

import httpx

from dashboard.client import ApiClient, Auth, NotAvailable, SessionExpired
from dashboard.formatting import (
    Filters,
    action_limit,
    available_actions,
    kpi_cards,
    model_rows,
    money,
    to_minor,
    transactions_csv,
)

AUTH = Auth("http://api.test", "token-1", "csrf-1", "usr_1", "a@b.test", "admin", None,
            "mer_2")


def test_money_respects_zero_decimal_currencies() -> None:
    assert money(123456, "usd") == "1,234.56 USD"
    assert money(1250, "JPY") == "1,250 JPY"
    assert to_minor(12.5, "EUR") == 1250 and to_minor(12.5, "JPY") == 12


def test_filters_become_query_parameters_with_an_inclusive_end_date() -> None:
    filters = Filters(status="captured", currency="eur", search=" 4242 ",
                      start=date(2025, 1, 1), end=date(2025, 1, 31), min_amount=10.0)
    assert filters.params(2, 50) == {
        "page": 2, "limit": 50, "status": "captured", "currency": "EUR", "search": "4242",
        "start_date": "2025-01-01", "end_date": "2025-02-01", "min_amount": 1000,
        "max_amount": None}
    assert Filters(min_amount=5.0).problems() == ["Choose a currency to filter by amount."]
    assert Filters(start=date(2025, 2, 1), end=date(2025, 1, 1)).problems()


def test_actions_follow_the_payment_state() -> None:
    authorized = {"status": "authorized", "amount": 900}
    captured = {"status": "captured", "amount": 900, "captured_amount": 900,
                "refunded_amount": 300}
    assert available_actions(authorized) == ["capture", "void"]
    assert available_actions(captured) == ["refund"] and action_limit(captured, "refund") == 600
    assert available_actions({**captured, "refunded_amount": 900}) == []
    assert available_actions({"status": "failed"}) == []


def test_kpi_cards_show_change_and_mark_bad_directions() -> None:
    cards = kpi_cards({"gross_volume": {"value": 20000, "previous": 10000, "change": 1.0},
                       "decline_rate": {"value": 0.1, "previous": 0.05, "change": 1.0}}, "USD")
    gross = cards[0]
    decline = next(c for c in cards if c.label == "Decline rate")
    assert (gross.value, gross.delta) == ("200.00 USD", "+100.0 %")
    assert (decline.value, decline.delta, decline.delta_color) == ("10.0 %", "+5.0 pts",
                                                                   "inverse")


def test_csv_has_a_header_and_one_line_per_transaction() -> None:
    text = transactions_csv([{"id": "pay_1", "status": "captured", "currency": "USD",
                              "amount": 100, "payment_method": {"card": {"last4": "4242"}}}])
    header, line = text.strip().splitlines()
    assert header.startswith("id,created_at,status") and "4242" in line


def test_the_client_sends_cookie_csrf_and_merchant_and_maps_errors() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/gone":
            return httpx.Response(404, json={"error": {"code": "not_found", "message": "x"}})
        if request.url.path == "/expired":
            return httpx.Response(401, json={"error": {"code": "invalid_api_key"}})
        return httpx.Response(200, json={"ok": True})

    api = ApiClient(AUTH, transport=httpx.MockTransport(answer))
    api.post("/v1/payments/pay_1/refund", {"amount": 5}, "key-1")
    sent = seen[-1].headers
    assert sent["cookie"] == "payflow_session=token-1" and sent["x-csrf-token"] == "csrf-1"
    assert sent["x-merchant-id"] == "mer_2" and sent["idempotency-key"] == "key-1"
    api.get("/v1/payments")
    assert "x-csrf-token" not in seen[-1].headers
    for path, error in (("/gone", NotAvailable), ("/expired", SessionExpired)):
        try:
            api.get(path)
        except error:
            pass
        else:
            raise AssertionError(f"{path} should raise {error.__name__}")


def _model(version: int, champion: bool, **metrics: float) -> dict[str, object]:
    return {"version": version, "name": f"fraud-v{version}", "champion": champion,
            "metrics": metrics, "training_window_start": "2026-03-01T00:00:00Z",
            "training_window_end": "2026-03-09T00:00:00Z", "data_fingerprint": "ab" * 32,
            "code_version": "0123456789abcdef", "description": "", "feature_count": 25,
            "created_at": "2026-03-10T08:30:12Z",
            "last_promoted_at": "2026-03-10T09:00:00Z" if champion else None,
            "last_promoted_by": "ops@payflow.test" if champion else None}


def test_model_rows_put_the_newest_first_and_mark_only_the_champion() -> None:
    rows = model_rows([_model(1, False), _model(2, True, test_auc_roc=0.91234, rows=1200,
                                                  fraud_rate=0.0125,
                                                  test_average_precision=0.5)])
    assert [r["model"] for r in rows] == ["fraud-v2", "fraud-v1"]
    assert [r["champion"] for r in rows] == ["★ champion", ""]
    assert (rows[0]["AUC"], rows[0]["AP"], rows[0]["rows"], rows[0]["fraud rate"]) == (
        "0.912", "0.500", 1200, "1.25%")
    assert rows[0]["training window"] == "2026-03-01 → 2026-03-09"
    assert rows[0]["last promoted"] == "2026-03-10 09:00 by ops@payflow.test"
    assert (rows[1]["AUC"], rows[1]["rows"], rows[1]["last promoted"]) == ("—", None, "—")
