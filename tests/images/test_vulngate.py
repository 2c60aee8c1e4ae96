"""The vulnerability gate on reports in Trivy's JSON format (tests/images/trivy_reports/README.md says where
they come from): a CRITICAL finding fails the release, a dated waiver with a reason lets it through until its
date, and after that date it fails again."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tools.images import vulngate

REPORTS = Path(__file__).resolve().parent / "trivy_reports"
BUSTER = REPORTS / "debian-buster.trivy.json"
TODAY = dt.date(2026, 11, 29)


def gate(tmp_path: Path, waivers: str | None, *reports: Path, capsys) -> tuple[int, str]:
    path = tmp_path / "waivers.yaml"
    if waivers is not None:
        path.write_text(waivers)
    code = vulngate.main([str(r) for r in reports], path, today=TODAY)
    out = capsys.readouterr()
    return code, out.out + out.err


def test_the_report_is_read_with_every_finding_and_its_severity():
    findings = vulngate.read_report(BUSTER)
    assert [(f.vulnerability, f.package, f.severity, f.fixed) for f in findings] == [
        ("CVE-2019-18276", "bash", "LOW", ""), ("CVE-2019-18224", "libidn2-0", "CRITICAL", "2.0.5-1+deb10u1")]


def test_a_critical_finding_fails_and_names_the_cve_package_and_fix(tmp_path, capsys):
    code, out = gate(tmp_path, None, BUSTER, capsys=capsys)
    assert code == 1
    assert "BLOCKING CVE-2019-18224 CRITICAL in libidn2-0 2.0.5-1, fixed in 2.0.5-1+deb10u1" in out
    assert "CVE-2019-18276" not in out  # LOW does not block and is not listed


def test_reports_without_critical_findings_pass(tmp_path, capsys):
    code, out = gate(tmp_path, None, REPORTS / "clean.trivy.json", REPORTS / "low-only.trivy.json", capsys=capsys)
    assert code == 0, out
    assert "clean.trivy.json: pass" in out and "low-only.trivy.json: pass" in out


def test_one_failing_report_among_several_fails_the_gate(tmp_path, capsys):
    assert gate(tmp_path, None, REPORTS / "clean.trivy.json", BUSTER, capsys=capsys)[0] == 1


WAIVER = """
waivers:
  - id: CVE-2019-18224
    package: libidn2-0
    reason: IDNA conversion is never given untrusted names in this image
    expires: {expires}
"""


def test_a_current_waiver_lets_the_finding_through_and_says_why(tmp_path, capsys):
    code, out = gate(tmp_path, WAIVER.format(expires="2026-12-31"), BUSTER, capsys=capsys)
    assert code == 0, out
    assert "WAIVED   CVE-2019-18224" in out and "until 2026-12-31 (IDNA conversion" in out


def test_a_waiver_is_valid_through_its_date_and_fails_again_the_day_after(tmp_path, capsys):
    assert gate(tmp_path, WAIVER.format(expires="2026-11-29"), BUSTER, capsys=capsys)[0] == 0
    code, out = gate(tmp_path, WAIVER.format(expires="2026-11-28"), BUSTER, capsys=capsys)
    assert code == 1
    assert "CVE-2019-18224" in out and "waiver expired on 2026-11-28" in out


def test_a_waiver_for_another_package_or_app_does_not_apply(tmp_path, capsys):
    other_package = WAIVER.format(expires="2026-12-31").replace("package: libidn2-0", "package: libidn2-dev")
    assert gate(tmp_path, other_package, BUSTER, capsys=capsys)[0] == 1
    other_app = WAIVER.format(expires="2026-12-31") + "    app: gateway\n"
    assert gate(tmp_path, other_app, BUSTER, capsys=capsys)[0] == 1  # the report is app "debian-buster"


@pytest.mark.parametrize("entry, message", [
    ("  - id: CVE-2019-18224\n    expires: 2026-12-31\n", "needs a 'reason'"),
    ("  - id: CVE-2019-18224\n    reason: accepted\n", "needs an 'expires' date"),
    ("  - id: CVE-2019-18224\n    reason: accepted\n    expires: next year\n", "'expires' must be a date"),
    ("  - reason: accepted\n    expires: 2026-12-31\n", "needs 'id'"),
])
def test_a_waiver_without_reason_or_expiry_is_a_configuration_error(tmp_path, capsys, entry, message):
    code, out = gate(tmp_path, "waivers:\n" + entry, BUSTER, capsys=capsys)
    assert code == 2
    assert message in out and "waivers[0]" in out


def test_a_file_that_is_not_a_trivy_report_is_refused(tmp_path, capsys):
    grype_like = tmp_path / "grype.json"
    grype_like.write_text(json.dumps({"matches": []}))
    code, out = gate(tmp_path, None, grype_like, capsys=capsys)
    assert code == 2 and "not a Trivy JSON report" in out


def test_the_repository_waivers_file_is_valid():
    for waiver in vulngate.read_waivers(Path(vulngate.__file__).with_name("waivers.yaml")):
        assert waiver.reason and waiver.expires
