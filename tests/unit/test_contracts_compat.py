"""Schema evolution: the generated schemas are compatible with the published (committed) ones,
and the checker catches every kind of breaking change — on hand-made schemas, and on a
deliberately broken temporary copy of the repository's schemas, through
``payflow contracts generate``, which then refuses to write anything."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pytest
from typer.testing import CliRunner

from ingest.contracts import Message, PaymentEvent
from ingest.migration_window import MigrationWindow, derived_id, with_new_versions
from ingest.schema_compat import incompatibilities, published_problems
from payflow.cli.app import app
from payflow.contracts import files
from payflow.settings import REPO_ROOT
from tests.unit.test_contracts_files import example

Schema = dict[str, Any]


def test_the_generated_schemas_are_compatible_with_the_published_ones() -> None:
    problems = files.compatibility_problems(REPO_ROOT)
    assert not problems, (
        "backward-incompatible change to a published event type:\n  " + "\n  ".join(problems)
        + "\nA published version may only change compatibly: publish the change as a new "
          "version (.v2) and emit both during a migration window (docs/topics.md).")


def base() -> Schema:
    return {
        "type": "object",
        "required": ["id", "status", "data"],
        "properties": {
            "id": {"type": "string"},
            "status": {"enum": ["a", "b", "c"], "type": "string"},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
            "data": {"$ref": "#/$defs/Data"},
        },
        "$defs": {"Data": {"type": "object", "required": ["amount"], "properties": {
            "amount": {"type": "integer", "minimum": 1},
            "tags": {"type": "array", "items": {"type": "string"}},
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        }}},
    }


def changed(edit: Callable[[Schema], None]) -> Schema:
    schema = copy.deepcopy(base())
    edit(schema)
    return schema


def data(schema: Schema) -> Schema:
    fields: Schema = schema["$defs"]["Data"]["properties"]
    return fields


COMPATIBLE: dict[str, Callable[[Schema], None]] = {
    "a new optional field": lambda s: data(s).update(extra={"type": "string", "default": ""}),
    "an enum gains a value": lambda s: s["properties"]["status"]["enum"].append("d"),
    "a looser minimum": lambda s: data(s)["amount"].update(minimum=0),
    "a new description": lambda s: s["properties"]["id"].update(description="the id"),
}
BREAKING: dict[str, tuple[Callable[[Schema], None], str, str]] = {
    "a removed field": (lambda s: data(s).pop("tags"), "data.tags", "removed"),
    "a retyped field": (lambda s: data(s)["amount"].update(type="string"), "data.amount",
                        "retyped"),
    "a field becoming nullable": (
        lambda s: s["properties"].update(id={"anyOf": [{"type": "string"}, {"type": "null"}]}),
        "id", "retyped"),
    "a new required field": (
        lambda s: (data(s).update(fee={"type": "integer"}),
                   s["$defs"]["Data"]["required"].append("fee")), "data.fee", "required"),
    "an optional field made required": (lambda s: s["required"].append("note"), "note",
                                        "required"),
    "a required field made optional": (lambda s: s["required"].remove("status"), "status",
                                       "removed"),
    "a narrowed enum": (lambda s: s["properties"]["status"]["enum"].remove("b"), "status",
                        "narrowed"),
    "a stricter minimum": (lambda s: data(s)["amount"].update(minimum=100), "data.amount",
                           "narrowed"),
    "a retyped array item": (lambda s: data(s)["tags"].update(items={"type": "integer"}),
                             "data.tags[]", "retyped"),
    "a retyped map value": (lambda s: data(s)["metadata"].update(
        additionalProperties={"type": "integer"}), "data.metadata.*", "retyped"),
    "a changed default": (lambda s: s["properties"]["note"].update(default="-"), "note",
                          "default"),
}


@pytest.mark.parametrize("edit", COMPATIBLE.values(), ids=COMPATIBLE.keys())
def test_a_compatible_change_passes(edit: Callable[[Schema], None]) -> None:
    assert incompatibilities(base(), changed(edit)) == []


@pytest.mark.parametrize(("edit", "path", "rule"), BREAKING.values(), ids=BREAKING.keys())
def test_a_breaking_change_is_caught_with_its_path(edit: Callable[[Schema], None], path: str,
                                                   rule: str) -> None:
    found = incompatibilities(base(), changed(edit))
    assert [(i.path, i.rule) for i in found] == [(path, rule)], found


def test_a_published_type_may_only_disappear_when_retired_explicitly() -> None:
    published = {"x.happened.v1": base()}
    assert published_problems(published, {}) == [
        "x.happened.v1: was published and is no longer generated (retire it explicitly once "
        "its migration window has ended)"]
    assert published_problems(published, {}, retired=["x.happened.v1"]) == []
    assert published_problems({}, {"x.happened.v2": base()}) == []  # new types are welcome


def broken_copy(tmp_path: Path) -> Path:
    """A copy of the published schemas, edited as if the code had broken payment.captured.v1:
    the copy holds what was published, the code generates today's schema."""
    shutil.copytree(REPO_ROOT / files.SCHEMAS_DIR, tmp_path / files.SCHEMAS_DIR)
    path = tmp_path / files.SCHEMAS_DIR / "payment.captured.v1.json"
    schema = json.loads(path.read_text())
    transaction = schema["$defs"]["Transaction"]
    transaction["properties"]["settled_amount"] = {"type": "integer"}  # the code lost a field
    transaction["required"].append("settled_amount")
    transaction["properties"]["status"]["enum"].append("settling")  # the code narrowed the enum
    transaction["properties"]["amount"]["type"] = "number"  # the code retyped a field
    transaction["required"].remove("updated_at")  # the code added a required field
    path.write_text(json.dumps(schema, indent=2))
    return tmp_path


def test_the_checker_catches_a_deliberately_incompatible_change_to_a_temporary_copy(
    tmp_path: Path,
) -> None:
    problems = files.compatibility_problems(broken_copy(tmp_path))
    assert sorted(problems) == sorted([
        "payment.captured.v1: data.settled_amount: removed: the field is gone",
        "payment.captured.v1: data.status: narrowed: lost the values ['settling']",
        "payment.captured.v1: data.amount: retyped: was number, now integer",
        "payment.captured.v1: data.updated_at: required: now required",
    ])


def test_generate_refuses_a_breaking_change_and_writes_nothing(tmp_path: Path) -> None:
    root = broken_copy(tmp_path)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    result = CliRunner().invoke(app, ["contracts", "generate", "--root", str(root)])
    assert result.exit_code == 1
    assert "data.settled_amount: removed" in result.output
    assert "new version (.v2)" in result.output
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_generate_writes_every_file_into_an_empty_tree_then_finds_it_up_to_date(
    tmp_path: Path,
) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["contracts", "generate", "--root", str(tmp_path)]).exit_code == 0
    assert (tmp_path / "schemas" / "payment.captured.v1.json").is_file()
    check = runner.invoke(app, ["contracts", "generate", "--check", "--root", str(tmp_path)])
    assert check.exit_code == 0, check.output
    (tmp_path / files.DOCS).write_text("edited by hand\n")
    check = runner.invoke(app, ["contracts", "generate", "--check", "--root", str(tmp_path)])
    assert check.exit_code == 1
    assert "stale: docs/topics.md" in check.output


class PaymentCapturedV2(Message):
    """A hypothetical breaking successor: the transaction's amount as a decimal string."""

    type: Literal["payment.captured.v2"] = "payment.captured.v2"
    data: dict[str, str]


def upgrade(event: Message) -> Message:
    assert isinstance(event, PaymentEvent)
    return PaymentCapturedV2(source=event.source, merchant_id=event.merchant_id,
                             subject=event.subject, data={"amount": f"{event.data.amount}"})


def test_a_migration_window_emits_both_versions_with_stable_ids() -> None:
    window = MigrationWindow("payment.captured.v1", "payment.captured.v2", upgrade)
    event = example("payment.captured.v1")
    emitted = with_new_versions(event, [window])
    assert [e.type for e in emitted] == ["payment.captured.v1", "payment.captured.v2"]
    assert emitted[0] is event
    assert emitted[1].id == derived_id(event.id, "payment.captured.v2") != event.id
    assert (emitted[1].subject, emitted[1].time) == (event.subject, event.time)
    again = with_new_versions(event, [window])  # a re-published outbox row
    assert [e.id for e in again] == [e.id for e in emitted]
    other = example("payment.authorized.v1")
    assert with_new_versions(other, [window]) == [other]


def test_a_published_type_is_removed_only_with_retire(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["contracts", "generate", "--root", str(tmp_path)]).exit_code == 0
    gone = tmp_path / files.SCHEMAS_DIR / "payment.expired.v1.json"
    shutil.copy(tmp_path / files.SCHEMAS_DIR / "payment.voided.v1.json", gone)
    refused = runner.invoke(app, ["contracts", "generate", "--root", str(tmp_path)])
    assert refused.exit_code == 1 and "payment.expired.v1: was published" in refused.output
    assert gone.is_file()
    still = runner.invoke(app, ["contracts", "generate", "--root", str(tmp_path),
                                "--retire", "payment.voided.v1"])
    assert still.exit_code == 1 and "still produced" in still.output
    retired = runner.invoke(app, ["contracts", "generate", "--root", str(tmp_path),
                                  "--retire", "payment.expired.v1"])
    assert retired.exit_code == 0, retired.output
    assert not gone.exists()
