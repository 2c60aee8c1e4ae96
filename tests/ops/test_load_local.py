"""``make load-local``: the scenarios against the real gateway process on 127.0.0.1, printed against their SLOs;
a stage result only when asked."""
from __future__ import annotations

import sys

import pytest

from tools.render import ROOT

for src in sorted((ROOT / "apps").glob("*/src")):
    if str(src) not in sys.path:
        sys.path.insert(0, str(src))

from soma_gateway import standins  # noqa: E402

from tools.ops import load_local, results  # noqa: E402


@pytest.mark.skipif(standins.redis_server_binary() is None, reason="no redis-server (make redis): the gateway needs one")
def test_a_bounded_run_against_the_gateway_prints_each_slo_and_records_only_when_asked(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = load_local.main(["--scenario", "tool-list,workflow-run", "--scale", "0.5", "--max-seconds", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "tool-list: GET /v1/tools" in out and "workflow-run: POST /v1/workflows/load-test/runs" in out
    assert "15 sent in" in out and "statuses {200: 15}" in out          # 30/s x 0.5 for 1 s, all authorized
    assert "PASS      tool-list http_req_duration p(99)" in out and "PASS      workflow-run http_req_failed" in out
    assert not (tmp_path / "promotions").exists()



def test_recording_writes_the_checks_as_a_load_stage_result(tmp_path):
    from datetime import datetime, timezone

    from components.ops.scenarios import load
    from tools.ops.loadgen import RunStats

    scenario = next(s for s in load() if s.name == "tool-list")
    slow = RunStats(target_rate=30, duration_s=1, sent=30, failed=0, dropped=0, max_in_flight=3,
                    latencies_ms=tuple([10.0] * 28 + [600.0, 700.0]), statuses={200: 30})
    result = load_local.stage_result("staging", "sha256:" + "c" * 64, [(scenario, slow)], datetime(2026, 11, 29, 20, tzinfo=timezone.utc))
    results.write(tmp_path, result)
    recorded = results.StageResult.from_json((tmp_path / "promotions/results/staging/load.json").read_text(), "load.json")
    assert not recorded.passed and recorded.source == "local load generator" and recorded.finished_at == "2026-11-29T20:00:00Z"
    assert [(c.name, c.passed) for c in recorded.checks] == [("tool-list http_req_duration p(95)", False),
                                                             ("tool-list http_req_duration p(99)", False),
                                                             ("tool-list http_req_failed", True)]


def test_an_unknown_scenario_or_scale_is_refused_before_anything_starts(capsys):
    assert load_local.main(["--scenario", "nope"]) == 2
    assert load_local.main(["--scale", "0"]) == 2
    err = capsys.readouterr().err
    assert "no scenario nope" in err and "--scale must be positive" in err
