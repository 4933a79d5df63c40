"""Reading historical payment files for `payflow import`: the simulator's files as they are,
Parquet as CSV, and every bad row named by its line, column and reason."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.history import (
    HeaderError,
    HistoricalPayment,
    RowProblem,
    is_card_number,
    parse_rows,
    resolve_columns,
)
from ingest.history_files import UnreadableFile, open_history
from ingest.traffic import COLUMNS, SimulationConfig, simulate, to_row, write_csv

SMALL = SimulationConfig(days=3, customers=40, merchants=5, seed=5)
HEADER = ("timestamp", "merchant_id", "card_id", "customer_id", "amount_minor", "currency")
GOOD = ("2026-01-02T10:00:00Z", "m_1", "card_1", "cus_1", "1250", "usd")


def fingerprint(number: str) -> str:
    return f"fp_{number[-4:]}"


def read(path: Path) -> list[HistoricalPayment | list[RowProblem]]:
    opened = open_history(path)
    return list(parse_rows(opened.rows, resolve_columns(opened.header), fingerprint))


def write(path: Path, header: tuple[str, ...], *rows: tuple[str, ...]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def problems_of(path: Path) -> list[str]:
    (parsed,) = read(path)
    assert isinstance(parsed, list), parsed
    return [str(problem) for problem in parsed]


def test_a_simulator_file_imports_as_written(tmp_path: Path) -> None:
    payments = simulate(SMALL)
    write_csv(payments, tmp_path / "history.csv")
    parsed = read(tmp_path / "history.csv")
    assert all(isinstance(p, HistoricalPayment) for p in parsed)
    assert resolve_columns(("timestamp", *COLUMNS)).ignored == ("time_seconds", "fraud_pattern")
    for simulated, imported in zip(payments, parsed, strict=True):
        assert isinstance(imported, HistoricalPayment)
        assert imported.payment_id == simulated.payment_id
        assert imported.occurred_at.timestamp() == simulated.time_seconds
        assert (imported.merchant_id, imported.card, imported.customer_id, imported.terminal_id,
                imported.amount_minor, imported.currency, imported.ip_address,
                imported.device_id, imported.country) == (
            simulated.merchant_id, simulated.card_id, simulated.customer_id,
            simulated.terminal_id, simulated.amount_minor, simulated.currency,
            simulated.ip_address, simulated.device_id, simulated.country)
        assert imported.is_fraud is simulated.is_fraud
        label = imported.labelled_at.timestamp() if imported.labelled_at else None
        assert label == simulated.label_seconds


def test_parquet_reads_like_csv(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [to_row(p) for p in simulate(SMALL)]
    pq.write_table(pa.table({c: [r[c] for r in rows] for c in ("timestamp", *COLUMNS)}),
                   tmp_path / "history.parquet")
    write_csv(simulate(SMALL), tmp_path / "history.csv")
    from_parquet = read(tmp_path / "history.parquet")
    from_csv = read(tmp_path / "history.csv")
    assert [p.payment_id for p in from_parquet if isinstance(p, HistoricalPayment)] == \
           [p.payment_id for p in from_csv if isinstance(p, HistoricalPayment)]
    assert len(from_parquet) == len(rows)


def test_short_column_names_and_unix_seconds_are_accepted(tmp_path: Path) -> None:
    path = write(tmp_path / "short.csv",
                 ("Timestamp", "merchant", "card", "customer", "amount", "currency", "label"),
                 ("1767261600.5", "m_1", "card_1", "", "99", "JPY", "yes"))
    (payment,) = read(path)
    assert isinstance(payment, HistoricalPayment)
    assert payment.occurred_at == datetime(2026, 1, 1, 10, 0, 0, 500_000, tzinfo=UTC)
    assert (payment.customer_id, payment.currency, payment.is_fraud) == (None, "JPY", True)
    assert payment.labelled_at == payment.occurred_at, "no label time: labelled at once"


def test_a_header_without_required_columns_names_every_one_missing() -> None:
    with pytest.raises(HeaderError) as raised:
        resolve_columns(("timestamp", "amount", "amount_minor"))
    message = str(raised.value)
    for expected in ("merchant_id", "customer_id", "currency", "card_id (or terminal_id)",
                     "'amount' and 'amount_minor' both give amount_minor"):
        assert expected in message


def test_every_problem_of_a_bad_row_is_reported_with_line_and_column(tmp_path: Path) -> None:
    header = (*HEADER, "ip_address", "country", "is_fraud", "label_seconds")
    path = write(tmp_path / "bad.csv", header,
                 ("2026-01-02 10:00:00", "", "card_1", "cus_1", "12.50", "xxx", "10.0.0.999",
                  "USA", "maybe", "1767261600"))
    assert problems_of(path) == [
        "line 2, column timestamp: '2026-01-02T10:00:00' has no UTC offset (add Z or +00:00)",
        "line 2, column is_fraud: 'maybe' is not 1/0, true/false or yes/no",
        "line 2, column merchant_id: is empty",
        "line 2, column amount_minor: '12.50' is not a whole number of minor units "
        "(cents: 12.50 USD is 1250)",
        "line 2, column currency: 'xxx' is not a supported ISO 4217 currency",
        "line 2, column ip_address: '10.0.0.999' is not an IP address",
        "line 2, column country: 'USA' is not an ISO 3166 alpha-2 code",
        "line 2, column label_seconds: a label time on a row that is not labelled fraud "
        "(is_fraud=1)",
    ]


@pytest.mark.parametrize(("cells", "expected"), [
    ({"timestamp": "yesterday"}, "column timestamp: 'yesterday' is neither ISO 8601 nor Unix"),
    ({"amount_minor": "0"}, "column amount_minor: 0 is outside 1 ... 99999999"),
    ({"amount_minor": "100000000"}, "column amount_minor: 100000000 is outside"),
    ({"amount_minor": ""}, "column amount_minor: is empty"),
    ({"card_id": ""}, "column card_id: is empty, and so is terminal_id"),
    ({"merchant_id": "m" * 201}, "column merchant_id: longer than 200 characters"),
])
def test_one_bad_cell(tmp_path: Path, cells: dict[str, str], expected: str) -> None:
    row = tuple(cells.get(name, value) for name, value in zip(HEADER, GOOD, strict=True))
    (problem,) = problems_of(write(tmp_path / "one.csv", HEADER, row))
    assert problem.startswith(f"line 2, {expected}")


def test_a_label_cannot_arrive_before_its_payment(tmp_path: Path) -> None:
    path = write(tmp_path / "early.csv", (*HEADER, "is_fraud", "labelled_at"),
                 (*GOOD, "1", "2026-01-01T00:00:00+00:00"))
    (problem,) = problems_of(path)
    assert problem.startswith("line 2, column labelled_at: the label arrives before the payment")


def test_a_row_with_the_wrong_number_of_fields_is_a_problem_of_its_line(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text(",".join(HEADER) + "\n" + ",".join(GOOD) + "\n" + "x,y\n\n" + ",".join(GOOD)
                    + "\n")
    parsed = read(path)
    assert [type(p).__name__ for p in parsed] == ["HistoricalPayment", "list",
                                                  "HistoricalPayment"]
    assert parsed[1] == [RowProblem(3, None, "2 fields where the header has 6")]


def test_a_card_number_is_replaced_by_its_fingerprint(tmp_path: Path) -> None:
    path = write(tmp_path / "pan.csv", HEADER,
                 ("2026-01-02T10:00:00Z", "m_1", "4242 4242 4242 4242", "c", "100", "USD"))
    (payment,) = read(path)
    assert isinstance(payment, HistoricalPayment) and payment.card == "fp_4242"
    assert "4242424242424242" not in repr(payment) and "4242 4242" not in repr(payment)
    assert is_card_number("4000-0000-0000-0002") and not is_card_number("4242424242424241")


def test_without_a_card_the_terminal_stands_in(tmp_path: Path) -> None:
    path = write(tmp_path / "terminal.csv", ("timestamp", "merchant", "terminal", "customer",
                                             "amount", "currency"),
                 ("2026-01-02T10:00:00Z", "m_1", "t_9", "", "100", "USD"))
    (payment,) = read(path)
    assert isinstance(payment, HistoricalPayment) and payment.card == "terminal:t_9"


def test_derived_payment_ids_are_stable_and_unique_for_identical_rows(tmp_path: Path) -> None:
    path = write(tmp_path / "same.csv", HEADER, GOOD, GOOD, (*GOOD[:4], "1251", "USD"))
    first, second = read(path), read(path)
    ids = [p.payment_id for p in first if isinstance(p, HistoricalPayment)]
    assert ids == [p.payment_id for p in second if isinstance(p, HistoricalPayment)]
    assert len(set(ids)) == 3 and all(i.startswith("hist_") for i in ids)
    assert ids[1] == f"{ids[0]}_2"


def test_unreadable_files_say_why(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(UnreadableFile, match="empty"):
        open_history(empty)
    with pytest.raises(UnreadableFile, match="no such file"):
        open_history(tmp_path / "missing.csv")
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b",".join(h.encode() for h in HEADER) + b"\n"
                      b"2026-01-02T10:00:00Z,m\xe9,c,c,1,USD\n")
    with pytest.raises(UnreadableFile, match="line 2 is not UTF-8 text"):
        read(latin)
    with pytest.raises(UnreadableFile, match="not a Parquet file"):
        open_history(write(tmp_path / "fake.parquet", HEADER, GOOD))
