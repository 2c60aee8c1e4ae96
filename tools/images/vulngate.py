"""The vulnerability gate: fail the release on a CRITICAL finding in a scanner report, unless waived.

Reads Trivy's JSON report (``trivy image --format json``; SchemaVersion 2: ``Results[].Vulnerabilities[]``
with ``VulnerabilityID``, ``PkgName``, ``InstalledVersion``, ``FixedVersion``, ``Severity``; a result
without findings has no ``Vulnerabilities`` key). The release workflow runs a pinned Trivy on each image
and hands its reports here, so CI and a laptop apply the same rule.

A waiver (tools/images/waivers.yaml) names the vulnerability, optionally the package and the app, and
must carry a ``reason`` and an ``expires`` date: a waiver without either is refused as a configuration
error, and once the date has passed the finding fails the gate again, saying which waiver expired.
"""
from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import yaml

from components.cve_waivers import Waiver, covering, parse_waivers

BLOCKING = "CRITICAL"


class GateConfigError(ValueError):
    """The waivers file or a report is unusable; the message names the file and the entry."""


@dataclass(frozen=True)
class Finding:
    report: str
    target: str
    vulnerability: str
    package: str
    installed: str
    fixed: str
    severity: str

    def describe(self) -> str:
        fix = f", fixed in {self.fixed}" if self.fixed else ", no fix yet"
        return f"{self.vulnerability} {self.severity} in {self.package} {self.installed}{fix} ({self.target}, {self.report})"


def read_report(path: Path) -> list[Finding]:
    """Every finding of a Trivy JSON report; a file of another shape is refused, naming what is missing."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise GateConfigError(f"{path}: not a readable JSON report ({error})") from error
    if not isinstance(document, dict) or document.get("SchemaVersion") != 2:
        raise GateConfigError(f"{path}: not a Trivy JSON report (SchemaVersion 2 expected, got "
                              f"{document.get('SchemaVersion') if isinstance(document, dict) else type(document).__name__!r})")
    findings = []
    for index, result in enumerate(document.get("Results") or []):
        for vuln in result.get("Vulnerabilities") or []:
            missing = [f for f in ("VulnerabilityID", "PkgName", "Severity") if not vuln.get(f)]
            if missing:
                raise GateConfigError(f"{path}: Results[{index}] has a vulnerability without {', '.join(missing)}")
            findings.append(Finding(report=path.name, target=result.get("Target", ""), vulnerability=vuln["VulnerabilityID"],
                                    package=vuln["PkgName"], installed=vuln.get("InstalledVersion", ""),
                                    fixed=vuln.get("FixedVersion", ""), severity=str(vuln["Severity"]).upper()))
    return findings


def read_waivers(path: Path) -> list[Waiver]:
    if not path.exists():
        return []
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = raw.get("waivers") if isinstance(raw, dict) else None
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise GateConfigError(f"{path}: 'waivers' must be a list")
    waivers, problems = parse_waivers(entries, f"{path}: waivers")
    if problems:
        raise GateConfigError(problems[0])
    return waivers


@dataclass(frozen=True)
class Verdict:
    blocking: list[str]
    waived: list[str]

    @property
    def passed(self) -> bool:
        return not self.blocking


def evaluate(findings: Iterable[Finding], waivers: list[Waiver], app: str = "", today: dt.date | None = None) -> Verdict:
    """CRITICAL findings block unless a waiver covers them and has not expired (it is valid through its date)."""
    today = today or dt.date.today()
    blocking, waived = [], []
    for finding in findings:
        if finding.severity != BLOCKING:
            continue
        matching = covering(waivers, finding.vulnerability, finding.package, app)
        current = [w for w in matching if w.current(today)]
        if current:
            waived.append(f"{finding.describe()}: waived until {current[0].expires} ({current[0].reason})")
        elif matching:
            blocking.append(f"{finding.describe()}: waiver expired on {max(w.expires for w in matching)}")
        else:
            blocking.append(finding.describe())
    return Verdict(blocking=blocking, waived=waived)


def app_of(report: Path) -> str:
    """Reports are named ``<app>.trivy.json`` by the workflow; the app scopes app-specific waivers."""
    return report.name.split(".")[0]


def main(reports: list[str], waivers_path: Path, today: dt.date | None = None) -> int:
    try:
        waivers = read_waivers(waivers_path)
        verdicts = [(Path(r), evaluate(read_report(Path(r)), waivers, app_of(Path(r)), today)) for r in reports]
    except GateConfigError as error:
        print(f"vulnerability gate: {error}", file=sys.stderr)
        return 2
    failed = False
    for report, verdict in verdicts:
        for line in verdict.waived:
            print(f"WAIVED   {line}")
        for line in verdict.blocking:
            print(f"BLOCKING {line}")
        failed |= not verdict.passed
        print(f"{report.name}: {'FAIL' if not verdict.passed else 'pass'} "
              f"({len(verdict.blocking)} blocking, {len(verdict.waived)} waived critical findings)")
    return 1 if failed else 0
