"""The dependency audit's verdicts (``payflow.dependency_audit``), from recorded answers of
pip-audit and PyPI: it never passes an audit that audited nothing, it names every package it
could not audit, and a known vulnerability fails it unless its id is explicitly ignored."""

from __future__ import annotations

from typing import Any

import pytest

from payflow import dependency_audit
from payflow.dependency_audit import AuditReport, classify_pip_audit, classify_project

SKIPPED = "Dependency not found on PyPI and could not be audited: {0}"


def project(version: str, vulnerabilities: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"info": {"version": version}, "vulnerabilities": vulnerabilities or []}


ADVISORY = {"id": "PYSEC-2099-1", "aliases": ["CVE-2099-0001"], "fixed_in": ["2.0.1"],
            "withdrawn": None}


def test_pip_audit_skipping_everything_is_not_a_pass() -> None:
    """pip-audit's own "No known vulnerabilities found" after skipping every package (its
    advisory service unreachable) ends as exit 2, with the packages named as not audited."""
    report = AuditReport()
    result = {"dependencies": [{"name": "Foo", "skip_reason": SKIPPED.format("foo")}]}
    skipped = classify_pip_audit(result, report, {"foo": "1.0"})
    assert skipped == ["foo"]
    report.not_audited.append("foo==1.0 (HTTP 404)")
    assert report.exit_status() == 2
    assert any("FAILED: no advisory source" in line for line in report.lines())


def test_a_vulnerability_found_by_pip_audit_fails_the_audit() -> None:
    report = AuditReport()
    result = {"dependencies": [{"name": "foo", "version": "1.0", "vulns": [
        {"id": "GHSA-xxxx", "aliases": ["CVE-2099-1"], "fix_versions": ["1.1"]}]}]}
    assert classify_pip_audit(result, report, {}) == []
    assert report.exit_status() == 1
    assert "foo==1.0 GHSA-xxxx (CVE-2099-1; fixed in 1.1; from pip-audit)" in report.lines()[0]


def test_a_package_at_its_latest_release_is_audited_by_the_project_data() -> None:
    """The project page's vulnerabilities are its latest release's: they count exactly when
    that is the installed release (version strings compared as versions)."""
    report = AuditReport()
    classify_project("foo", "2.0", project("2.0.0", [ADVISORY]), report)
    assert report.audited_by_latest_release == ["foo==2.0"]
    assert [f.advisory_id for f in report.findings] == ["PYSEC-2099-1"]
    assert report.exit_status() == 1


def test_a_package_behind_its_latest_release_is_named_as_not_audited() -> None:
    """The latest release's advisories say nothing of an older one: no verdict, but a name."""
    report = AuditReport()
    classify_project("bar", "1.0", project("1.2", [ADVISORY]), report)
    classify_project("foo", "2.0", project("2.0"), report)
    assert report.findings == []
    assert report.not_audited == ["bar==1.0 (latest 1.2)"]
    assert report.exit_status() == 0
    assert "NOT AUDITED (1)" in "\n".join(report.lines())


def test_withdrawn_advisories_do_not_count() -> None:
    report = AuditReport()
    classify_project("foo", "2.0", project("2.0", [{**ADVISORY, "withdrawn": "2099-01-01"}]),
                     report)
    assert report.findings == [] and report.exit_status() == 0


def test_only_an_explicitly_ignored_advisory_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """An ignore names the advisory (or one of its aliases) and says why; it is printed."""
    monkeypatch.setattr(dependency_audit, "IGNORED", {"CVE-2099-0001": "payflow never calls X"})
    report = AuditReport()
    classify_project("foo", "2.0", project("2.0", [ADVISORY, {**ADVISORY, "id": "PYSEC-2"}]),
                     report)
    assert [f.advisory_id for f in report.ignored] == ["CVE-2099-0001", "CVE-2099-0001"]
    assert report.findings == [] and report.exit_status() == 0
    assert "payflow never calls X" in "\n".join(report.lines())


def test_payflow_itself_is_not_audited_as_a_pypi_project() -> None:
    """A PyPI project happens to be called payflow too: its advisories are not ours."""
    report = AuditReport()
    skipped = classify_pip_audit({"dependencies": [
        {"name": "payflow", "skip_reason": SKIPPED.format("payflow")},
        {"name": "payflow", "version": "0.1.0", "vulns": [{"id": "X", "fix_versions": []}]},
    ]}, report, {})
    assert skipped == [] and report.findings == []
