"""Reading a history file for ``payflow import``: CSV always, Parquet when pyarrow is installed.

A reader gives the header, then each row with its position (the CSV line, the Parquet row) and
how far through the file it is, for a progress bar. A row whose field count disagrees with the
header comes out as a ``RowProblem`` (the parser never sees it); a file that cannot be read at
all raises ``UnreadableFile``. Cells are text from CSV and typed values from Parquet; the parser
(``ingest.history``) accepts both.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.history import RowProblem, Value

PARQUET_SUFFIXES = (".parquet", ".pq")
BATCH_ROWS = 10_000


class UnreadableFile(ValueError):
    """The file is missing, not text, not valid CSV or Parquet, or needs a missing library."""


Row = tuple[int, Mapping[str, Value]] | RowProblem


@dataclass
class HistoryFile:
    """An open history file: its header, its rows, and progress through it."""

    path: Path
    header: tuple[str, ...]
    position: str
    """What a row's number counts: ``line`` (CSV) or ``row`` (Parquet)."""
    total: int
    """Bytes (CSV) or rows (Parquet) in the file."""
    rows: Iterator[Row]
    progress: Any = field(default=lambda: 0)
    """Bytes or rows read so far (a callable)."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def open_history(path: Path) -> HistoryFile:
    """The file at ``path``, by its suffix: Parquet for .parquet/.pq, CSV otherwise."""
    if not path.is_file():
        raise UnreadableFile(f"{path}: no such file")
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return _parquet(path)
    return _csv(path)


def _csv(path: Path) -> HistoryFile:
    raw = path.open("rb")
    reader = csv.reader(_lines(path, raw))
    try:
        header = tuple(next(reader))
    except StopIteration:
        raw.close()
        raise UnreadableFile(f"{path}: the file is empty (a header line is needed)") from None
    except (UnreadableFile, csv.Error) as error:
        raw.close()
        raise UnreadableFile(f"{path}: line 1 is not a CSV header: {error}") from error
    size = path.stat().st_size

    def progress() -> int:
        return size if raw.closed else int(raw.tell())

    return HistoryFile(path, header, "line", size, _csv_rows(path, raw, reader, header),
                       progress=progress)


def _lines(path: Path, raw: Any) -> Iterator[str]:
    """The file's lines as text, decoded one by one so that an error names its line (a UTF-8
    character never spans a line break)."""
    for number, line in enumerate(raw, start=1):
        try:
            text: str = line.decode("utf-8")
        except UnicodeDecodeError as error:
            raise UnreadableFile(f"{path}: line {number} is not UTF-8 text ({error.reason} at "
                                 f"byte {error.start + 1})") from error
        yield text.removeprefix("\ufeff") if number == 1 else text


def _csv_rows(path: Path, raw: Any, reader: Any, header: tuple[str, ...]) -> Iterator[Row]:
    try:
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                raise UnreadableFile(f"{path}: line {reader.line_num} is not CSV: "
                                     f"{error}") from error
            line = reader.line_num
            if not cells or cells == [""]:
                continue
            if len(cells) != len(header):
                yield RowProblem(line, None, f"{len(cells)} fields where the header has "
                                             f"{len(header)}")
                continue
            yield line, dict(zip(header, cells, strict=True))
    finally:
        raw.close()


def _parquet(path: Path) -> HistoryFile:
    try:
        import pyarrow.parquet as pq
    except ImportError as error:
        raise UnreadableFile("Parquet needs pyarrow, which is not installed here; convert the "
                             "file to CSV") from error
    try:
        parquet = pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises several unrelated types for a bad file
        raise UnreadableFile(f"{path}: not a Parquet file: {error}") from error
    header = tuple(parquet.schema_arrow.names)
    done = [0]

    def rows() -> Iterator[Row]:
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
            for row in batch.to_pylist():
                done[0] += 1
                yield done[0], row

    return HistoryFile(path, header, "row", parquet.metadata.num_rows, rows(),
                       progress=lambda: done[0])
