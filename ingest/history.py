"""Historical payments from a file: the columns, and each row checked into a typed record.

``payflow import`` loads a history (CSV, or Parquet) of past payments so that ``payflow
replay`` can push it through the stream worker and the fraud model can be trained on it. This
module says what a file must hold and turns each row into a ``HistoricalPayment`` or a
``RowProblem`` naming the line, the column and the reason — every problem of a row, not just
the first. No I/O: the file readers (``ingest.history_files``) and the database adapter
(``payflow.history_store``) sit at the edges.

Columns (header names, any order; unknown columns are ignored, so the simulator's files
import as written by ``payflow simulate generate``):

| column (alias) | needed | meaning |
|---|---|---|
| ``timestamp`` | yes | when it happened: ISO 8601 with a UTC offset, or Unix seconds |
| ``merchant_id`` (``merchant``) | yes | the merchant |
| ``card_id`` (``card``) | or terminal | the card (without one, ``terminal:<id>`` stands in) |
| ``terminal_id`` (``terminal``) | or card | the merchant's terminal |
| ``customer_id`` (``customer``) | yes, may be empty | the customer (empty: a guest) |
| ``amount_minor`` (``amount``) | yes | integer minor units, 1 ... 99,999,999 |
| ``currency`` | yes | ISO 4217, any case |
| ``payment_id`` | no | unique id; by default derived from the row's content |
| ``ip_address``, ``device_id``, ``country`` | no | the origin (country: ISO 3166 alpha-2) |
| ``is_fraud`` (``label``) | no | 1/0, true/false, yes/no; empty: not labelled |
| ``label_seconds`` / ``labelled_at`` | no | when the label became known (Unix s / ISO 8601) |

A fraud row without a label time counts as labelled at its own time (as if disputed at once).
A card column holding a card number (12-19 digits passing Luhn) is replaced by the number's
keyed fingerprint, the same one the API gives that card: numbers never go further.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from ingest.money import MAX_AMOUNT_MINOR, UnsupportedCurrency, normalize_currency

MAX_ID_LENGTH = 200
Value = str | int | float | bool | datetime | None
"""A cell as a reader gives it: text from CSV, typed values from Parquet."""

ALIASES: dict[str, str] = {
    "merchant": "merchant_id", "card": "card_id", "terminal": "terminal_id",
    "customer": "customer_id", "amount": "amount_minor", "label": "is_fraud",
}  # fmt: skip
"""Short header names accepted for the canonical ones."""
REQUIRED = ("timestamp", "merchant_id", "customer_id", "amount_minor", "currency")
OPTIONAL = ("card_id", "terminal_id", "payment_id", "ip_address", "device_id", "country",
            "is_fraud", "label_seconds", "labelled_at")
TRUE_WORDS, FALSE_WORDS = frozenset({"1", "true", "yes"}), frozenset({"0", "false", "no"})


@dataclass(frozen=True, slots=True)
class HistoricalPayment:
    """One past payment as imported: what the features need, and its label if it has one."""

    payment_id: str
    line: int
    """Where the row is in its file (the CSV line, the header being 1; the Parquet row): orders
    payments of the same instant."""
    occurred_at: datetime
    merchant_id: str
    card: str
    """The card id (or its fingerprint), else ``terminal:<terminal id>``; never a number."""
    terminal_id: str | None
    customer_id: str | None
    amount_minor: int
    currency: str
    ip_address: str | None
    device_id: str | None
    country: str | None
    is_fraud: bool | None
    """None when the file gave no label."""
    labelled_at: datetime | None
    """When the fraud label became known; set exactly when ``is_fraud`` is true."""


@dataclass(frozen=True, slots=True)
class RowProblem:
    """Why one cell (or a whole row, ``column`` None) cannot be imported."""

    line: int
    column: str | None
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.reason}"


class HeaderError(ValueError):
    """The file's header lacks a required column or names one twice."""


@dataclass(frozen=True)
class Columns:
    """How a file's header maps onto the canonical columns."""

    source: dict[str, str]
    """canonical name -> the header's own name for it"""
    ignored: tuple[str, ...]

    def cells(self, row: Mapping[str, Value]) -> dict[str, Value]:
        return {name: row.get(header) for name, header in self.source.items()}


def resolve_columns(header: Iterable[str]) -> Columns:
    """The canonical column of each header name; HeaderError listing every problem."""
    source: dict[str, str] = {}
    ignored, problems = [], []
    for raw in header:
        name = raw.strip().lower()
        canonical = ALIASES.get(name, name)
        if canonical not in REQUIRED + OPTIONAL:
            ignored.append(raw)
        elif canonical in source:
            problems.append(f"columns {source[canonical]!r} and {raw!r} both give {canonical}")
        else:
            source[canonical] = raw
    problems += [f"missing column {name}" for name in REQUIRED if name not in source]
    if "card_id" not in source and "terminal_id" not in source:
        problems.append("missing column card_id (or terminal_id)")
    if "label_seconds" in source and "labelled_at" in source:
        problems.append("give the label time once: label_seconds or labelled_at, not both")
    if problems:
        raise HeaderError("; ".join(problems))
    return Columns(source, tuple(ignored))


Fingerprint = Callable[[str], str]
"""The keyed fingerprint of a card number (``ingest.sandbox.card_fingerprint`` with the key)."""


def parse_rows(rows: Iterable[tuple[int, Mapping[str, Value]] | RowProblem], columns: Columns,
               fingerprint: Fingerprint) -> Iterator[HistoricalPayment | list[RowProblem]]:
    """Each (line, row) as a payment, or as the list of its problems (a reader's problem passes
    through). Payment ids derived from content are made unique by counting identical rows, so
    the same file always gives the same ids (the count costs memory in proportion to rows)."""
    seen: Counter[str] = Counter()
    for item in rows:
        if isinstance(item, RowProblem):
            yield [item]
            continue
        line, row = item
        parsed = parse_row(line, columns.cells(row), fingerprint)
        if isinstance(parsed, HistoricalPayment) and "payment_id" not in columns.source:
            base = derived_id(parsed)
            seen[base] += 1
            suffix = "" if seen[base] == 1 else f"_{seen[base]}"
            parsed = replace(parsed, payment_id=base + suffix)
        yield parsed


def parse_row(line: int, cells: Mapping[str, Value],
              fingerprint: Fingerprint) -> HistoricalPayment | list[RowProblem]:
    """One row's payment, or every problem found in it."""
    cell = _Cells(line, cells)
    occurred = cell.time("timestamp", required=True)
    is_fraud = cell.flag("is_fraud")
    label_column = "label_seconds" if "label_seconds" in cells else "labelled_at"
    labelled = cell.time(label_column, required=False)
    payment = HistoricalPayment(
        payment_id=cell.text("payment_id", required="payment_id" in cells) or "",
        line=line,
        occurred_at=occurred or datetime.min.replace(tzinfo=UTC),
        merchant_id=cell.text("merchant_id", required=True) or "",
        card=cell.card(fingerprint),
        terminal_id=cell.text("terminal_id"),
        customer_id=cell.text("customer_id"),
        amount_minor=cell.amount(),
        currency=cell.currency(),
        ip_address=cell.ip(),
        device_id=cell.text("device_id"),
        country=cell.country(),
        is_fraud=is_fraud,
        labelled_at=_label_time(cell, label_column, occurred, is_fraud, labelled),
    )
    return cell.problems or payment


def _label_time(cell: _Cells, column: str, occurred: datetime | None, is_fraud: bool | None,
                labelled: datetime | None) -> datetime | None:
    if labelled is not None and is_fraud is not True:
        cell.problem(column, "a label time on a row that is not labelled fraud (is_fraud=1)")
    if labelled is not None and occurred is not None and labelled < occurred:
        cell.problem(column, f"the label arrives before the payment ({labelled.isoformat()} < "
                             f"{occurred.isoformat()})")
    return (labelled or occurred) if is_fraud else None


def derived_id(payment: HistoricalPayment) -> str:
    """``hist_`` + a hash of the row's content: stable across re-imports of the same data."""
    fields = (payment.occurred_at.isoformat(), payment.merchant_id, payment.card,
              payment.terminal_id, payment.customer_id, payment.amount_minor, payment.currency,
              payment.ip_address, payment.device_id, payment.country)
    digest = hashlib.sha256(repr(fields).encode()).hexdigest()
    return f"hist_{digest[:24]}"


def is_card_number(value: str) -> bool:
    """12-19 digits (spaces or dashes allowed) passing the Luhn check."""
    digits = value.replace(" ", "").replace("-", "")
    if not (digits.isdigit() and digits.isascii() and 12 <= len(digits) <= 19):
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        doubled = int(char) * (2 if position % 2 else 1)
        total += doubled - 9 if doubled > 9 else doubled
    return total % 10 == 0


class _Cells:
    """A row's cells, read one column at a time; problems are collected, never raised."""

    def __init__(self, line: int, cells: Mapping[str, Value]) -> None:
        self.line, self.cells, self.problems = line, cells, list[RowProblem]()

    def problem(self, column: str | None, reason: str) -> None:
        self.problems.append(RowProblem(self.line, column, reason))

    def text(self, column: str, required: bool = False) -> str | None:
        raw = self.cells.get(column)
        value = "" if raw is None else str(raw).strip()
        if not value:
            if required:
                self.problem(column, "is empty")
            return None
        if len(value) > MAX_ID_LENGTH:
            self.problem(column, f"longer than {MAX_ID_LENGTH} characters")
        return value

    def time(self, column: str, required: bool) -> datetime | None:
        raw = self.cells.get(column)
        if isinstance(raw, datetime):
            return self._aware(column, raw)
        text = "" if raw is None else str(raw).strip()
        if not text:
            if required:
                self.problem(column, "is empty")
            return None
        try:
            seconds = float(text)
        except ValueError:
            try:
                return self._aware(column, datetime.fromisoformat(text.replace("Z", "+00:00")))
            except ValueError:
                self.problem(column, f"{text!r} is neither ISO 8601 nor Unix seconds")
                return None
        if not math.isfinite(seconds) or not 0 <= seconds < 253_402_300_800:
            self.problem(column, f"{text!r} is not a time")
            return None
        return datetime.fromtimestamp(seconds, UTC)

    def _aware(self, column: str, value: datetime) -> datetime | None:
        if value.tzinfo is None:
            self.problem(column, f"{value.isoformat()!r} has no UTC offset (add Z or +00:00)")
            return None
        return value.astimezone(UTC)

    def flag(self, column: str) -> bool | None:
        text = self.text(column)
        if text is None:
            return None
        word = text.lower()
        if word in TRUE_WORDS or word in FALSE_WORDS:
            return word in TRUE_WORDS
        self.problem(column, f"{text!r} is not 1/0, true/false or yes/no")
        return None

    def amount(self) -> int:
        raw = self.cells.get("amount_minor")
        text = "" if raw is None else str(raw).strip()
        if isinstance(raw, bool) or not text.isdigit() or not text.isascii():
            self.problem("amount_minor", f"{text!r} is not a whole number of minor units "
                                         "(cents: 12.50 USD is 1250)" if text else "is empty")
            return 0
        amount = int(text)
        if not 1 <= amount <= MAX_AMOUNT_MINOR:
            self.problem("amount_minor", f"{amount} is outside 1 ... {MAX_AMOUNT_MINOR}")
        return amount

    def currency(self) -> str:
        text = self.text("currency", required=True)
        if text is None:
            return ""
        try:
            return normalize_currency(text)
        except UnsupportedCurrency:
            self.problem("currency", f"{text!r} is not a supported ISO 4217 currency")
            return ""

    def card(self, fingerprint: Fingerprint) -> str:
        card = self.text("card_id")
        if card is not None:
            return fingerprint(card.replace(" ", "").replace("-", "")) \
                if is_card_number(card) else card
        terminal = self.text("terminal_id")
        if terminal is None:
            self.problem("card_id", "is empty, and so is terminal_id: one is needed")
            return ""
        return f"terminal:{terminal}"

    def ip(self) -> str | None:
        text = self.text("ip_address")
        if text is not None:
            try:
                ipaddress.ip_address(text)
            except ValueError:
                self.problem("ip_address", f"{text!r} is not an IP address")
        return text

    def country(self) -> str | None:
        text = self.text("country")
        if text is None:
            return None
        if not (len(text) == 2 and text.isascii() and text.isalpha()):
            self.problem("country", f"{text!r} is not an ISO 3166 alpha-2 code")
        return text.upper()
