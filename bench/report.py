"""What a benchmark run hands back and how it is written down: summary rows (figure, the
reference measured in the same run, their ratio, the issue's target and whether it was met),
detail tables, the ``results.json`` document and the ``summary.md`` text.

Pure: the runner does the I/O; unit tests check the rendering and the JSON shape.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from bench.stats import ratio

SCHEMA = "payflow-bench/1"
Status = Literal["ok", "failed", "interrupted", "not_done"]
STATUSES: tuple[Status, ...] = ("ok", "failed", "interrupted", "not_done")
LOAD_NOTE = ("The machine is shared (2 cores; other engineers' tests, the broker and PostgreSQL "
             "run beside the benchmark): rates are indications, CPU per operation is the more "
             "stable figure; compare load averages before reading two runs side by side.")


@dataclass(frozen=True)
class Target:
    """A target from issue 10 (or the seed): the figure must be at least / at most ``value``."""

    comparison: Literal["at_least", "at_most"]
    value: float
    text: str
    """How the summary shows it, e.g. ``≥ 5,000/s``."""

    def met(self, figure: float | None) -> bool | None:
        if figure is None:
            return None
        return figure >= self.value if self.comparison == "at_least" else figure <= self.value


@dataclass(frozen=True)
class SummaryRow:
    """One line of the summary table."""

    benchmark: str
    figure: str
    """What was measured, e.g. ``decisions/s of one worker``."""
    value: float | None
    unit: str
    reference: str = ""
    """The same-run reference it is compared with, e.g. ``raw aiokafka pass-through``."""
    reference_value: float | None = None
    reference_unit: str = ""
    target: Target | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return ratio(self.value, self.reference_value)

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self.value)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "met": self.met}


@dataclass(frozen=True)
class Table:
    """A detail table (per rate, per page, ...) shown under the summary."""

    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def __post_init__(self) -> None:
        assert all(len(row) == len(self.headers) for row in self.rows), self.title


@dataclass
class BenchResult:
    """Everything one benchmark reports; ``figures`` holds every number, JSON-ready."""

    name: str
    status: Status
    parameters: dict[str, Any]
    figures: dict[str, Any] = field(default_factory=dict)
    rows: list[SummaryRow] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    seconds: float = 0.0
    load_average_start: tuple[float, float, float] | None = None
    load_average_end: tuple[float, float, float] | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status, "seconds": round(self.seconds, 1), "error": self.error,
            "load_average_start": self.load_average_start,
            "load_average_end": self.load_average_end,
            "parameters": self.parameters, "figures": self.figures,
            "summary": [row.to_json() for row in self.rows],
            "tables": [asdict(table) for table in self.tables],
        }


def results_document(run: dict[str, Any], conditions: dict[str, Any],
                     results: list[BenchResult]) -> dict[str, Any]:
    """The ``results.json`` document: the run, its conditions, and each benchmark's result."""
    return {"schema": SCHEMA, "run": run, "conditions": conditions, "note": LOAD_NOTE,
            "benchmarks": {result.name: result.to_json() for result in results}}


def shape_problems(document: dict[str, Any]) -> list[str]:
    """Every way ``document`` departs from the results shape (empty when it conforms)."""
    problems = []
    if document.get("schema") != SCHEMA:
        problems.append(f"schema is {document.get('schema')!r}, not {SCHEMA!r}")
    for key in ("run", "conditions", "benchmarks"):
        if not isinstance(document.get(key), dict):
            problems.append(f"{key} is missing or not an object")
    conditions = document.get("conditions") or {}
    for key in ("cores", "memory_bytes", "load_average_start", "load_average_end", "python",
                "git_commit"):
        if key not in conditions:
            problems.append(f"conditions.{key} is missing")
    for name, result in (document.get("benchmarks") or {}).items():
        if result.get("status") not in STATUSES:
            problems.append(f"benchmarks.{name}.status is {result.get('status')!r}")
        for key in ("parameters", "figures"):
            if not isinstance(result.get(key), dict):
                problems.append(f"benchmarks.{name}.{key} is missing or not an object")
        if not isinstance(result.get("summary"), list):
            problems.append(f"benchmarks.{name}.summary is missing or not a list")
        if result.get("status") == "ok" and "load_average_end" not in result:
            problems.append(f"benchmarks.{name}.load_average_end is missing")
    return problems


def format_quantity(value: float | None, unit: str) -> str:
    """A figure as the summary shows it: thousands separated, precision by size, unit after."""
    if value is None:
        return "—"
    if unit.endswith("/s"):
        text = f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:,.1f}"
        return f"{text}{unit}"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 1:
        text = f"{value:,.1f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


def _ratio_text(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}" if value >= 0.1 else f"{value:.3f}"


def _met_text(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "—"}[met]


def summary_table(rows: list[SummaryRow]) -> str:
    """The markdown table: benchmark, figure, value, reference, ratio, target, met?"""
    lines = ["| benchmark | figure | value | reference measured in the same run | ratio "
             "| target | met? |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        reference = "—" if not row.reference else (
            f"{row.reference}: {format_quantity(row.reference_value, row.reference_unit)}")
        figure = f"{row.figure} ({row.note})" if row.note else row.figure
        lines.append(f"| {row.benchmark} | {figure} | {format_quantity(row.value, row.unit)} | "
                     f"{reference} | {_ratio_text(row.ratio)} | "
                     f"{row.target.text if row.target else '—'} | {_met_text(row.met)} |")
    return "\n".join(lines)


def markdown_table(table: Table) -> str:
    lines = [f"### {table.title}", "", "| " + " | ".join(table.headers) + " |",
             "|" + "---|" * len(table.headers)]
    lines += ["| " + " | ".join(row) + " |" for row in table.rows]
    return "\n".join(lines)


def _load_text(load: Any) -> str:
    return "?" if not load else f"{load[0]:.2f}"


def summary_markdown(run: dict[str, Any], conditions: dict[str, Any],
                     results: list[BenchResult]) -> str:
    """The whole ``summary.md``: heading, conditions, the table, failures, detail tables."""
    rows = [row for result in results for row in result.rows]
    memory_gib = (conditions.get("memory_bytes") or 0) / 2**30
    header = [
        f"# payflow benchmarks: {run.get('mode', '?')} run {run.get('started_at', '')}",
        "",
        f"Command: `{run.get('command', '')}`  ",
        f"Commit {conditions.get('git_commit', '?')}"
        f"{' (uncommitted changes in the tree)' if conditions.get('git_dirty') else ''}; "
        f"{conditions.get('cores', '?')} cores, {memory_gib:.1f} GiB; Python "
        f"{conditions.get('python', '?')}, Kafka {conditions.get('kafka', '?')}, PostgreSQL "
        f"{conditions.get('postgresql', '?')}, Redis {conditions.get('redis', '?')}.  ",
        f"Load average (1 min) {_load_text(conditions.get('load_average_start'))} at the start, "
        f"{_load_text(conditions.get('load_average_end'))} at the end. {LOAD_NOTE}",
        "",
        summary_table(rows),
    ]
    notes = [f"- **{result.name}**: {result.status}"
             f"{': ' + result.error if result.error else ''}"
             for result in results if result.status != "ok"]
    if notes:
        header += ["", "Not measured:", "", *notes]
    per_bench = [f"- {result.name}: {result.seconds:.0f} s, load average "
                 f"{_load_text(result.load_average_start)} → {_load_text(result.load_average_end)}"
                 for result in results]
    header += ["", "Duration and load per benchmark:", "", *per_bench]
    for result in results:
        for table in result.tables:
            header += ["", markdown_table(table)]
    return "\n".join(header) + "\n"
