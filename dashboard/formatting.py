"""Pure presentation logic for the dashboard: money, filters, KPI cards, tables, CSV, actions.

No Streamlit and no HTTP here, so every rule the pages follow can be tested directly.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF",
                          "UGX", "VND", "VUV", "XAF", "XOF", "XPF"})
STATUSES = ("pending", "authorized", "captured", "refunded", "voided", "failed")
REFUND_REASONS = ("requested_by_customer", "duplicate", "fraudulent")
ERROR_TEXT = {
    "invalid_state": "The payment's status does not allow this any more (it changed meanwhile?).",
    "amount_exceeds_captured": "That is more than remains refundable.",
    "amount_exceeds_authorized": "That is more than was authorized.",
    "request_in_progress": "The same action is still running; wait a moment.",
}


def exponent(currency: str) -> int:
    return 0 if currency.upper() in ZERO_DECIMAL else 2


def money(amount_minor: int | float | None, currency: str) -> str:
    """``12.50 USD``; ``1,250 JPY``. Minor units in, text out."""
    if amount_minor is None:
        return "—"
    digits = exponent(currency)
    value = Decimal(int(amount_minor)).scaleb(-digits)
    return f"{value:,.{digits}f} {currency.upper()}"


def to_minor(amount_major: float | Decimal | None, currency: str) -> int | None:
    """What the user typed (``12.5``) in minor units (``1250``); None stays None."""
    if amount_major is None:
        return None
    return int((Decimal(str(amount_major)).scaleb(exponent(currency))).to_integral_value())


@dataclass(frozen=True, slots=True)
class Filters:
    """The Transactions page's filters, as the user set them (amounts in major units)."""

    status: str | None = None
    currency: str | None = None
    search: str | None = None
    start: date | None = None
    end: date | None = None
    """Inclusive for the user; the API's end_date is exclusive (see ``params``)."""
    min_amount: float | None = None
    max_amount: float | None = None

    def problems(self) -> list[str]:
        found = []
        if self.start and self.end and self.start > self.end:
            found.append("The start date is after the end date.")
        if (self.min_amount is not None and self.max_amount is not None
                and self.min_amount > self.max_amount):
            found.append("The minimum amount is above the maximum.")
        if (self.min_amount is not None or self.max_amount is not None) and not self.currency:
            found.append("Choose a currency to filter by amount.")
        return found

    def params(self, page: int, limit: int) -> dict[str, Any]:
        """Query parameters of ``GET /v1/payments``."""
        currency = (self.currency or "").upper() or None
        end = date.fromordinal(self.end.toordinal() + 1) if self.end else None
        return {
            "page": page, "limit": limit, "status": self.status, "currency": currency,
            "search": (self.search or "").strip() or None,
            "start_date": self.start.isoformat() if self.start else None,
            "end_date": end.isoformat() if end else None,
            "min_amount": to_minor(self.min_amount, currency) if currency else None,
            "max_amount": to_minor(self.max_amount, currency) if currency else None,
        }


def transaction_rows(transactions: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Table rows of a payments page."""
    rows = []
    for t in transactions:
        method = t.get("payment_method") or {}
        details = method.get("card") or method.get("bank_account") or {}
        kind = details.get("brand", method.get("type", ""))
        rows.append({
            "id": t["id"], "created": t["created_at"], "status": t["status"],
            "amount": money(t["amount"], t["currency"]),
            "refunded": money(t.get("refunded_amount", 0), t["currency"]),
            "method": f"{kind} ••{details.get('last4', '')}",
            "risk": t.get("risk_level") or "—", "score": t.get("fraud_score"),
            "processor_ref": t.get("processor_ref") or "",
            "description": t.get("description") or "",
        })
    return rows


CSV_COLUMNS = ("id", "created_at", "status", "currency", "amount", "captured_amount",
               "refunded_amount", "fraud_score", "risk_level", "decline_code", "processor_ref",
               "card_brand", "last4", "description")


def transactions_csv(transactions: Iterable[Mapping[str, Any]]) -> str:
    """CSV of transactions: amounts in minor units, as the API gives them."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for t in transactions:
        method = t.get("payment_method") or {}
        details = method.get("card") or method.get("bank_account") or {}
        values = {**t, "card_brand": details.get("brand", ""), "last4": details.get("last4", "")}
        writer.writerow(["" if values.get(c) is None else values.get(c) for c in CSV_COLUMNS])
    return out.getvalue()


def available_actions(transaction: Mapping[str, Any]) -> list[str]:
    """What the dashboard offers for a payment in its current state."""
    status = transaction.get("status")
    if status == "authorized":
        return ["capture", "void"]
    remaining = (transaction.get("captured_amount", 0) - transaction.get("refunded_amount", 0)
                 - transaction.get("disputed_amount", 0))
    if status == "captured" and remaining > 0:
        return ["refund"]
    return []


def action_limit(transaction: Mapping[str, Any], action: str) -> int:
    """The largest amount (minor units) the action accepts."""
    if action == "capture":
        return int(transaction["amount"])
    return int(transaction.get("captured_amount", 0) - transaction.get("refunded_amount", 0)
               - transaction.get("disputed_amount", 0))


def error_text(code: str, message: str) -> str:
    return ERROR_TEXT.get(code, message)


@dataclass(frozen=True, slots=True)
class KpiCard:
    label: str
    value: str
    delta: str | None
    delta_color: str
    """``normal`` (up is good) or ``inverse`` (up is bad)."""


KPI_ORDER = (
    ("gross_volume", "Gross volume", "money", "normal"),
    ("net_revenue", "Net revenue", "money", "normal"),
    ("payments", "Payments", "count", "normal"),
    ("approval_rate", "Approval rate", "rate", "normal"),
    ("decline_rate", "Decline rate", "rate", "inverse"),
    ("fraud_rate", "Fraud rate", "rate", "inverse"),
    ("refunds", "Refunds", "money", "inverse"),
    ("average_ticket", "Average ticket", "money", "normal"),
)


def kpi_cards(kpis: Mapping[str, Mapping[str, Any]], currency: str) -> list[KpiCard]:
    """The Overview's cards with their period-over-period change."""
    cards = []
    for name, label, kind, color in KPI_ORDER:
        kpi = kpis.get(name) or {"value": 0, "previous": 0, "change": None}
        value = kpi["value"]
        if kind == "money":
            text = money(value, currency)
        elif kind == "rate":
            text = f"{100 * value:.1f} %"
        else:
            text = f"{int(value):,}"
        if kind == "rate":
            delta = f"{100 * (value - kpi['previous']):+.1f} pts" if kpi["previous"] else None
        else:
            delta = f"{100 * kpi['change']:+.1f} %" if kpi.get("change") is not None else None
        cards.append(KpiCard(label, text, delta, color))
    return cards


def _metric(metrics: Mapping[str, Any], name: str, digits: int = 3) -> str:
    value = metrics.get(name)
    return "—" if value is None else f"{float(value):.{digits}f}"


def _day(timestamp: str | None) -> str:
    """``2026-03-02T09:00:00Z`` → ``2026-03-02`` (ISO strings as the API sends them)."""
    return timestamp[:10] if timestamp else "—"


def model_rows(models: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Table rows of the Risk page's fraud models (``GET /api/models``), newest first, the
    champion marked."""
    rows = []
    for m in sorted(models, key=lambda m: int(m["version"]), reverse=True):
        metrics = m.get("metrics") or {}
        promoted = m.get("last_promoted_at")
        rows.append({
            "model": m["name"],
            "champion": "★ champion" if m["champion"] else "",
            "AUC": _metric(metrics, "test_auc_roc"),
            "AP": _metric(metrics, "test_average_precision"),
            "rows": int(metrics["rows"]) if "rows" in metrics else None,
            "fraud rate": (f"{float(metrics['fraud_rate']):.2%}" if "fraud_rate" in metrics
                           else "—"),
            "training window": (f"{_day(m['training_window_start'])} → "
                                f"{_day(m['training_window_end'])}"),
            "features": m["feature_count"],
            "created": str(m["created_at"])[:16].replace("T", " "),
            "last promoted": (f"{str(promoted)[:16].replace('T', ' ')} by "
                              f"{m.get('last_promoted_by') or '?'}" if promoted else "—"),
            "code": str(m["code_version"])[:12],
            "data fingerprint": str(m["data_fingerprint"])[:12],
        })
    return rows
