"""k6's end-of-test summaries become the same checks and stage result as a local run.

The fixtures are in the two shapes k6 writes, as grafana/k6's own tests fix them at v2.2.0
(internal/js/summary_test.go: ``expectedHandleSummaryRawData`` for the handleSummary object, where a held
threshold is ``{"ok": true}``; ``expectedOldJSONExportResult`` for --summary-export, where ``true`` marks a
threshold that *failed*), with the metrics a scenario script produces (http_req_duration, http_req_failed).
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tools.ops import k6_summary, results
from tools.ops.k6_summary import SummaryError

FIXTURES = Path(__file__).parent / "fixtures"
HANDLE = (FIXTURES / "k6_handle_summary.json").read_text()
EXPORT = (FIXTURES / "k6_summary_export.json").read_text()


def by_name(summary):
    return {c.name: c for c in summary.checks}


def test_a_handle_summary_gives_k6s_verdicts_with_the_figures():
    summary = k6_summary.parse("workflow-run", HANDLE, "handle.json")
    checks = by_name(summary)
    assert set(checks) == {"workflow-run http_req_duration p(95)", "workflow-run http_req_duration p(99)",
                           "workflow-run http_req_failed rate"}
    p99 = checks["workflow-run http_req_duration p(99)"]
    assert (p99.passed, p99.observed, p99.threshold) == (False, "p(99)=912.4ms", "p(99)<800ms")
    assert checks["workflow-run http_req_failed rate"].passed and checks["workflow-run http_req_failed rate"].observed == "rate=0.001"
    assert (summary.requests, summary.achieved_rate, summary.passed) == (6000, 19.9725, False)


def test_a_summary_export_reads_true_as_failed():
    summary = k6_summary.parse("workflow-read", EXPORT, "export.json")
    checks = by_name(summary)
    assert checks["workflow-read http_req_duration p(95)"].passed and checks["workflow-read http_req_duration p(99)"].passed
    failed = checks["workflow-read http_req_failed rate"]
    assert (failed.passed, failed.observed) == (False, "rate=0.02")
    assert summary.requests == 9000


def test_a_runner_log_is_read_at_its_summary_line():
    log = "time=... level=info msg=starting\n" + "K6_SUMMARY_JSON " + json.dumps(json.loads(HANDLE)) + "\nbye\n"
    assert by_name(k6_summary.parse("r", log, "runner.log")) .keys() == by_name(k6_summary.parse("r", HANDLE, "h")).keys()


@pytest.mark.parametrize("text, message", [
    ("no json here", "runner.log: no k6 summary JSON"),
    ('{"state": {}}', "not a k6 summary (no `metrics` object)"),
    ('{"metrics": {"http_req_duration": {"values": {"p(95)": 1}}}}', "no thresholds on http_req_duration, http_req_failed"),
    ('{"metrics": {"http_req_duration": {"thresholds": {"p(95)<1": "yes"}}, "http_req_failed": {"thresholds": {"rate<0.1": false}}}}',
     "a threshold verdict is"),
])
def test_what_is_not_a_scenario_summary_is_refused(text, message):
    with pytest.raises(SummaryError, match=message.replace("(", r"\(").replace(")", r"\)")):
        k6_summary.parse("r", text, "runner.log")


def test_the_summaries_make_a_load_stage_result_that_promotion_reads(tmp_path):
    summaries = [k6_summary.parse("workflow-read", HANDLE.replace('"ok": false', '"ok": true'), "a"),
                 k6_summary.parse("tool-list", HANDLE.replace('"ok": false', '"ok": true'), "b")]
    when = datetime(2026, 11, 29, 20, 0, tzinfo=timezone.utc)
    result = k6_summary.stage_result("staging", "sha256:" + "b" * 64, summaries, "k6 TestRuns soma-ops", when)
    assert result.passed and result.kind == "load" and result.finished_at == "2026-11-29T20:00:00Z" and len(result.checks) == 6
    results.write(tmp_path, result)
    from datetime import timedelta

    assert results.require_green(tmp_path, "staging", "load", "sha256:" + "b" * 64, timedelta(hours=1), when).passed
    red = k6_summary.stage_result("staging", "sha256:" + "b" * 64, [k6_summary.parse("x", HANDLE, "c")], "k6", when)
    results.write(tmp_path, red)
    with pytest.raises(results.ResultError, match=r"failed \(x http_req_duration p\(99\)\)"):
        results.require_green(tmp_path, "staging", "load", "sha256:" + "b" * 64, timedelta(hours=1), when)


def test_the_command_prints_each_threshold_and_records_only_when_asked(tmp_path, capsys, monkeypatch):
    path = tmp_path / "handle.json"
    path.write_text(HANDLE)
    monkeypatch.chdir(tmp_path)
    assert k6_summary.main([f"workflow-run={path}"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  workflow-run http_req_duration p(99): p(99)=912.4ms (threshold p(99)<800ms)" in out
    assert not (tmp_path / "promotions").exists()
    assert k6_summary.main([f"workflow-run={path}", "--record", "staging"]) == 1
    recorded = results.StageResult.from_json((tmp_path / "promotions/results/staging/load.json").read_text(), "load.json")
    assert not recorded.passed and recorded.source.startswith("k6 TestRun summaries")


REAL = FIXTURES / "k6-1.1.0"
"""Written by a real k6 (v1.1.0, commit 0e3fb953be = grafana/k6's tag v1.1.0) running scripts generated from
scenarios.yaml against the gateway on 127.0.0.1 (docs/load-tests.md, "A real k6, once"): ``tool-list`` with the
load-test token (all held), ``unauthorized`` the same script without it (every request 401, k6 exited 99)."""


@pytest.mark.parametrize("shape", ["summary", "export"])
def test_a_real_k6_run_reads_the_same_in_both_shapes(shape):
    held = k6_summary.parse("tool-list", (REAL / f"tool-list.{shape}.json").read_text(), shape)
    assert held.passed and held.requests == 76 and held.achieved_rate == pytest.approx(15.2, abs=0.1)
    assert {c.name for c in held.checks} == {"tool-list http_req_duration p(95)", "tool-list http_req_duration p(99)",
                                             "tool-list http_req_failed rate"}
    refused = by_name(k6_summary.parse("tool-list", (REAL / f"unauthorized.{shape}.json").read_text(), shape))
    assert (refused["tool-list http_req_failed rate"].passed, refused["tool-list http_req_failed rate"].observed) == (False, "rate=1")
    assert refused["tool-list http_req_duration p(95)"].passed
