"""The dependency audit CI runs (``make audit``): known vulnerabilities in installed packages.

pip-audit checks every installed distribution against PyPI's advisory data (the
``vulnerabilities`` of PyPI's per-release JSON API, fed from the OSV database). Where that
per-release endpoint cannot be reached — the build machines reach PyPI's index and project
pages but not ``/pypi/<name>/<version>/json``, and pip-audit then skips every package and
still says "No known vulnerabilities found" — a skipped package is looked up on its project
page instead, whose ``vulnerabilities`` are those of the project's latest release: exact for a
package installed at its latest release, silent for an older one. So every package ends in
one of three states, and all three are printed:

- audited, by pip-audit or by the latest-release data, with its known vulnerabilities;
- not audited: installed behind its latest release while no per-release data was reachable
  (named, with the latest version, so that an upgrade or a better network closes the gap);
- ignored vulnerabilities: each one in ``IGNORED`` with the reason it does not apply.

Exit status: 1 when a known, not ignored vulnerability is found; 2 when no package could be
audited at all (no advisory source reachable: the audit did not happen, so it cannot pass);
0 otherwise.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import httpx
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

IGNORED: dict[str, str] = {}
"""Advisory id → why it does not apply to payflow. Empty: nothing is ignored today."""

OWN_DISTRIBUTIONS = frozenset({"payflow"})
"""payflow itself: not a dependency (and PyPI's project of that name is somebody else's)."""
PROJECT_URL = "https://pypi.org/pypi/{name}/json"
LOOKUP_TIMEOUT_SECONDS = 20.0
AUDIT_DEADLINE_SECONDS = 300.0
MAX_PACKAGES = 1_000


@dataclass(frozen=True)
class Finding:
    """One known vulnerability of one installed package."""

    package: str
    version: str
    advisory_id: str
    aliases: tuple[str, ...]
    fixed_in: tuple[str, ...]
    source: str


@dataclass
class AuditReport:
    audited_by_pip_audit: list[str] = field(default_factory=list)
    audited_by_latest_release: list[str] = field(default_factory=list)
    not_audited: list[str] = field(default_factory=list)
    """``name==version (why)`` of every package no advisory data covered."""
    findings: list[Finding] = field(default_factory=list)
    ignored: list[Finding] = field(default_factory=list)

    @property
    def audited(self) -> int:
        return len(self.audited_by_pip_audit) + len(self.audited_by_latest_release)

    def exit_status(self) -> int:
        if self.findings:
            return 1
        return 2 if self.audited == 0 else 0

    def lines(self) -> list[str]:
        out = [f"audit: {f.package}=={f.version} {f.advisory_id} "
               f"({', '.join(f.aliases) or 'no aliases'}; fixed in "
               f"{', '.join(f.fixed_in) or 'no release yet'}; from {f.source})"
               for f in self.findings]
        out += [f"audit: ignored {f.advisory_id} in {f.package}=={f.version}: "
                f"{IGNORED[f.advisory_id]}" for f in self.ignored]
        if self.not_audited:
            out.append(f"audit: NOT AUDITED ({len(self.not_audited)}), no advisory data "
                       f"reachable for the installed release: {', '.join(self.not_audited)}")
        out.append(
            f"audit: {self.audited} packages audited against PyPI's advisory data "
            f"({len(self.audited_by_pip_audit)} by pip-audit per release, "
            f"{len(self.audited_by_latest_release)} at their latest release by the project "
            f"data), {len(self.not_audited)} not audited, {len(self.findings)} known "
            f"vulnerabilities, {len(self.ignored)} ignored")
        if self.audited == 0:
            out.append("audit: FAILED: no advisory source was reachable; nothing was audited")
        return out


def classify_pip_audit(result: Mapping[str, Any], report: AuditReport,
                       versions: Mapping[str, str]) -> list[str]:
    """Fold pip-audit's JSON into the report; return the names pip-audit skipped."""
    skipped: list[str] = []
    for dependency in result["dependencies"]:
        name = canonicalize_name(dependency["name"])
        if name in OWN_DISTRIBUTIONS:
            continue
        if "skip_reason" in dependency:
            skipped.append(name)
            continue
        version = dependency.get("version") or versions.get(name, "?")
        report.audited_by_pip_audit.append(f"{name}=={version}")
        for vuln in dependency.get("vulns", []):
            _add(report, Finding(name, version, vuln["id"], tuple(vuln.get("aliases", [])),
                                 tuple(vuln.get("fix_versions", [])), "pip-audit"))
    return skipped


def classify_project(name: str, installed: str, project: Mapping[str, Any],
                     report: AuditReport) -> None:
    """Fold one project page (``/pypi/<name>/json``) into the report."""
    latest = str(project["info"]["version"])
    if not _same_version(installed, latest):
        report.not_audited.append(f"{name}=={installed} (latest {latest})")
        return
    report.audited_by_latest_release.append(f"{name}=={installed}")
    for vuln in project.get("vulnerabilities") or []:
        if vuln.get("withdrawn"):
            continue
        _add(report, Finding(name, installed, vuln["id"], tuple(vuln.get("aliases") or []),
                             tuple(vuln.get("fixed_in") or []), "PyPI latest-release data"))


def _add(report: AuditReport, finding: Finding) -> None:
    ids = {finding.advisory_id, *finding.aliases}
    if ids & IGNORED.keys():
        report.ignored.append(
            Finding(finding.package, finding.version, sorted(ids & IGNORED.keys())[0],
                    finding.aliases, finding.fixed_in, finding.source))
    else:
        report.findings.append(finding)


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def installed_versions() -> dict[str, str]:
    """Every distribution installed in this interpreter's environment, by canonical name."""
    versions: dict[str, str] = {}
    for distribution in metadata.distributions():
        name = distribution.metadata["Name"]
        if name:
            versions[canonicalize_name(name)] = distribution.version
    assert len(versions) <= MAX_PACKAGES, len(versions)
    return versions


def run_pip_audit() -> dict[str, Any]:
    command = [sys.executable, "-m", "pip_audit", "--format", "json", "--progress-spinner",
               "off", "--skip-editable", "--aliases", "on", "--desc", "off"]
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          timeout=AUDIT_DEADLINE_SECONDS)
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise RuntimeError(f"pip-audit failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def look_up_projects(names: Iterable[str], versions: Mapping[str, str],
                     report: AuditReport) -> None:
    """One project page per skipped package, one at a time, within the audit's deadline."""
    deadline = time.monotonic() + AUDIT_DEADLINE_SECONDS
    with httpx.Client(timeout=LOOKUP_TIMEOUT_SECONDS, follow_redirects=True) as client:
        for name in sorted(names):
            installed = versions.get(name, "?")
            if time.monotonic() > deadline:
                report.not_audited.append(f"{name}=={installed} (audit deadline passed)")
                continue
            try:
                response = client.get(PROJECT_URL.format(name=name))
            except httpx.HTTPError as error:
                report.not_audited.append(f"{name}=={installed} ({type(error).__name__})")
                continue
            if response.status_code != 200:
                report.not_audited.append(f"{name}=={installed} (HTTP {response.status_code})")
                continue
            classify_project(name, installed, response.json(), report)


def main() -> int:
    versions = installed_versions()
    report = AuditReport()
    skipped = classify_pip_audit(run_pip_audit(), report, versions)
    look_up_projects(skipped, versions, report)
    for line in report.lines():
        print(line)
    return report.exit_status()


if __name__ == "__main__":
    sys.exit(main())
