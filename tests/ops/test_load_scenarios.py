"""The scenarios file: what it declares reaches the gateway's real routes, and bad input is named by file and key;
the k6 scripts generated from it carry the executor, rate and SLOs, and parse as JavaScript."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from components.ops import k6, scenarios
from components.ops.scenarios import ScenarioError
from tools.render import ROOT

for src in sorted((ROOT / "apps").glob("*/src")):
    if str(src) not in sys.path:
        sys.path.insert(0, str(src))

GOOD = """
scenarios:
  - name: runs
    route: workflow-run
    method: POST
    path: /v1/workflows/w/runs
    body: {input: {}}
    rate: 2.5
    duration: 2m
    slo: {p95_ms: 300, p99_ms: 800, error_rate: 0.01}
"""


def test_every_scenario_is_the_gateway_route_it_names():
    from soma_gateway.routes import DEFAULT_ROUTES

    declared = scenarios.load()
    assert len(declared) >= 5
    for scenario in declared:
        matched = DEFAULT_ROUTES.match(scenario.method, scenario.path)
        assert matched is not None and matched.route.name == scenario.route, scenario.name


def test_the_local_run_allows_exactly_the_checks_the_scenarios_make():
    from tools.ops.load_local import USER, decisions_for

    allowed = decisions_for(scenarios.load())
    assert ("user:" + USER, "can_run", "workflow:load-test") in allowed
    assert ("user:" + USER, "member", "tenant:load-test") in allowed   # tool-list, tool-mcp: the caller's tenant
    wrong = scenarios.Scenario("x", "workflow-read", "POST", "/v1/workflows/w/runs", 1, 1, scenarios.Slo(1, 2, 0.1))
    with pytest.raises(ScenarioError, match="is workflow-run in the gateway's route table, not workflow-read"):
        decisions_for((wrong,))


def test_a_good_file_reads_into_typed_values():
    (scenario,) = scenarios.parse(GOOD, "s.yaml")
    assert (scenario.rate, scenario.duration_s, scenario.duration, scenario.slo.p99_ms) == (2.5, 120, "120s", 800.0)
    assert scenario.body_bytes() == b'{"input":{}}'
    assert scenario.scaled(0.5).rate == 1.25


@pytest.mark.parametrize("change, message", [
    (("rate: 2.5", "rate: 0"), "s.yaml: scenarios[0].rate: must be a number above 0"),
    (("duration: 2m", "duration: 2 minutes"), "scenarios[0].duration: '2 minutes' is not a duration"),
    (("p95_ms: 300", "p95_ms: 900"), "scenarios[0].slo: p95_ms 900 is above p99_ms 800"),
    (("error_rate: 0.01", "error_rate: 2"), "scenarios[0].slo.error_rate: must be a number above 0 and at most 1"),
    (("method: POST", "method: GET"), "scenarios[0].body: a GET request carries no body"),
    (("path: /v1/workflows/w/runs", "path: /v1/workflows/{id}/runs"), "scenarios[0].path: '/v1/workflows/{id}/runs' must be a concrete"),
    (("name: runs", "name: Runs_1"), "scenarios[0].name: 'Runs_1' must be a DNS label"),
    (("    rate: 2.5", "    rate: 2.5\n    burst: 3"), "scenarios[0].burst: unknown key"),
    (("    route: workflow-run\n", ""), "scenarios[0].route: required"),
])
def test_bad_input_is_named_by_file_and_key(change, message):
    with pytest.raises(ScenarioError) as raised:
        scenarios.parse(GOOD.replace(*change), "s.yaml")
    assert message in str(raised.value)


def test_every_problem_is_reported_at_once_and_names_are_unique():
    twice = GOOD + GOOD.split("scenarios:\n", 1)[1].replace("rate: 2.5", "rate: -1")
    with pytest.raises(ScenarioError) as raised:
        scenarios.parse(twice, "s.yaml")
    assert "scenarios[1].rate" in str(raised.value) and "scenarios[1].name: 'runs' is declared twice" in str(raised.value)
    with pytest.raises(ScenarioError, match="no scenario nope in scenarios.yaml"):
        scenarios.select(scenarios.load(), ["nope"])


def test_the_script_holds_the_open_model_and_the_slos():
    (scenario,) = scenarios.parse(GOOD, "s.yaml")
    options = k6.options(scenario)
    executor = options["scenarios"]["runs"]
    assert executor["executor"] == "constant-arrival-rate"
    assert (executor["rate"], executor["timeUnit"], executor["duration"]) == (150, "1m", "120s")   # 2.5/s exactly
    assert options["thresholds"] == {"http_req_duration": ["p(95)<300", "p(99)<800"], "http_req_failed": ["rate<0.01"]}
    assert executor["preAllocatedVUs"] >= 2 and executor["maxVUs"] <= k6.MAX_VUS
    text = k6.script(scenario)
    assert "`${BASE_URL}/v1/workflows/w/runs`" in text and '"POST"' in text and k6.SUMMARY_MARKER in text


@pytest.mark.parametrize("rate, expected", [(20, (20, "1s")), (0.5, (30, "1m")), (0.01, (36, "1h")), (0.0001, (1, "1h"))])
def test_fractional_rates_keep_their_value(rate, expected):
    assert k6.arrival(rate) == expected


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: the scripts' JavaScript syntax is not checked")
def test_every_generated_script_is_valid_javascript(tmp_path):
    for scenario in scenarios.load():
        path = tmp_path / f"{scenario.name}.mjs"
        path.write_text(k6.script(scenario), encoding="utf-8")
        checked = subprocess.run(["node", "--check", str(path)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr


K6_BINARY = shutil.which("k6")


@pytest.mark.skipif(K6_BINARY is None, reason="no k6 on PATH (none is installed here; docs/load-tests.md, \"A real k6, once\"): "
                    "k6 itself does not check the generated scripts' options")
def test_k6_reads_each_generated_script_as_declared(tmp_path):
    import json

    for scenario in scenarios.load():
        path = tmp_path / k6.script_file(scenario)
        path.write_text(k6.script(scenario), encoding="utf-8")
        inspected = subprocess.run([K6_BINARY, "inspect", "--execution-requirements", str(path)], capture_output=True, text=True,
                                   env={"PATH": "/usr/bin:/bin", "K6_NO_USAGE_REPORT": "true"})
        assert inspected.returncode == 0, inspected.stderr
        options = json.loads(inspected.stdout)
        assert options["scenarios"][scenario.name]["executor"] == "constant-arrival-rate"
        assert options["thresholds"] == k6.thresholds(scenario)
