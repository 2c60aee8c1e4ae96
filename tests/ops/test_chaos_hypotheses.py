"""Each steady-state hypothesis, as the Workflow's StatusCheck sends it, evaluated by Prometheus' own engine.

``promtool test rules`` runs the guard query (components/ops/experiments.guard) over input series shaped like
what the platform's scrapes give (the labels the hypotheses match on; the services' pushed request series carry
``job`` = ``<namespace>/<service>`` and no ``namespace``, which tests/core/test_service_metrics_otlp.py checks against
a real export): while the hypothesis holds the query
returns nothing (Prometheus' HTTP API: 200, the check passes); when it does not hold, or its metrics are
missing, the query fails to execute ("found duplicate series for the match group", which the HTTP API answers
with 422, and the check fails). A hypothesis that silently passed on missing data would show here.
"""
from __future__ import annotations

import pytest
import yaml

from components.ops import experiments as ex
from tests.core.test_alert_rules_promtool import PROMTOOL, run, series

pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool not found (PROMTOOL, PATH, build/bin): `make promtool`")

NAMESPACES = {"core.secrets": "soma-secrets", "core.data": "soma-data", "agents.agents": "soma-agents",
              "governance.governance": "soma-governance"}
SECRETS, DATA, AGENTS = "soma-secrets", "soma-data", "soma-agents"
FAILS = "found duplicate series for the match group"


def requests(job: str, ok: str, errors: str | None = None, probes: str | None = None) -> list[dict]:
    """Request counters of ``job``: ``ok`` and ``errors`` are promtool value series for 200 and 503 answers to its API,
    ``probes`` for the kubelet's 200 answers on /healthz (which the hypotheses must not count)."""
    labels = {"job": f"{AGENTS}/{job}", "http_route": "/v1/runs"}
    found = [series("http_server_request_duration_seconds_count", {**labels, "http_response_status_code": "200"}, ok)]
    if errors is not None:
        found.append(series("http_server_request_duration_seconds_count", {**labels, "http_response_status_code": "503"}, errors))
    if probes is not None:
        found.append(series("http_server_request_duration_seconds_count",
                            {**labels, "http_route": "/healthz", "http_response_status_code": "200"}, probes))
    return found


def latency(le_half: str, le_two_half: str, total: str) -> list[dict]:
    labels = {"job": f"{AGENTS}/memory", "http_response_status_code": "200"}
    bucket = lambda le, values: series("http_server_request_duration_seconds_bucket", {**labels, "le": le}, values)
    return [bucket("0.5", le_half), bucket("2.5", le_two_half), bucket("+Inf", total),
            series("http_server_request_duration_seconds_count", labels, total)]


vault = lambda a, b: [series("vault_core_unsealed", {"namespace": SECRETS, "pod": "vault-0"}, a),
                      series("vault_core_unsealed", {"namespace": SECRETS, "pod": "vault-1"}, b)]
cnpg = lambda a, b: [series("cnpg_collector_up", {"namespace": DATA, "cluster": "app-db", "pod": "app-db-1"}, a),
                     series("cnpg_collector_up", {"namespace": DATA, "cluster": "app-db", "pod": "app-db-2"}, b)]
kafka = lambda v: [series("kafka_topic_partition_under_replicated_partition", {"namespace": DATA, "topic": "platform.audit.v1", "partition": "0"}, "0x10"),
                   series("kafka_topic_partition_under_replicated_partition", {"namespace": DATA, "topic": "platform.audit.v1", "partition": "1"}, v)]

CASES: dict[str, dict[str, list[dict]]] = {
    "vault-standby-kill": {"holds": vault("1x10", "1x10"), "broken": vault("1x10", "0x10")},
    "vault-active-kill": {"holds": vault("1x10", "1x10"), "broken": vault("0x10", "1x10")},
    "postgres-primary-failover": {"holds": cnpg("1x10", "1x10"), "broken": cnpg("1x10", "0x10")},
    "kafka-broker-kill": {"holds": kafka("0x10"), "broken": kafka("1x10")},
    "gateway-openfga-partition": {"holds": requests("gateway", "0+600x10", "0+6x10"), "broken": requests("gateway", "0+600x10", "0+300x10"),
                                  "no 5xx at all": requests("gateway", "0+600x10"), "no traffic": requests("gateway", "100x10", "5x10"),
                                  "broken, hidden by probes": requests("gateway", "0+6x10", "0+6x10", probes="0+600x10"),},
    "memory-qdrant-delay": {"holds": latency("0+60x10", "0+60x10", "0+60x10"), "broken": latency("0x10", "0x10", "0+60x10"),
                            "no traffic": latency("10x10", "10x10", "10x10")},
    "orchestrator-kill": {"holds": requests("orchestrator", "0+600x10"), "broken": requests("orchestrator", "0+60x10", "0+600x10"),
                          "broken, hidden by probes": requests("orchestrator", "0+6x10", "0+6x10", probes="0+600x10")},
}


def promtool_case(tmp_path, name: str, query: str, input_series: list[dict]):
    (tmp_path / "rules.yaml").write_text("groups: []\n")
    test = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": [{
        "name": name, "interval": "1m", "input_series": input_series,
        "promql_expr_test": [{"expr": query, "eval_time": "9m", "exp_samples": []}]}]}
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test))
    return run("test", "rules", "test.yaml", cwd=tmp_path)


def hypothesis(name: str) -> str:
    return ex.placeholders(next(e for e in ex.EXPERIMENTS if e.name == name).hypothesis, NAMESPACES)


def test_every_experiment_has_cases():
    assert set(CASES) == {e.name for e in ex.EXPERIMENTS}


@pytest.mark.parametrize("name,case", [(n, c) for n, cases in CASES.items() for c in cases])
def test_the_guard_passes_exactly_when_the_hypothesis_holds(tmp_path, name, case):
    result = promtool_case(tmp_path, f"{name}: {case}", ex.guard([hypothesis(name)]), CASES[name][case])
    output = result.stdout + result.stderr
    if case.startswith("broken"):
        assert result.returncode != 0 and FAILS in output, output
    else:
        assert result.returncode == 0, output


@pytest.mark.parametrize("name", sorted(CASES))
def test_missing_metrics_fail_the_check(tmp_path, name):
    result = promtool_case(tmp_path, f"{name}: no series", ex.guard([hypothesis(name)]), [series("up", {"job": "other"}, "1x10")])
    assert result.returncode != 0 and FAILS in result.stdout + result.stderr


def test_the_steady_state_check_needs_every_hypothesis(tmp_path):
    every = [hypothesis(e.name) for e in ex.EXPERIMENTS]
    healthy = [s for cases in CASES.values() for s in cases["holds"]]
    unique = list({s["series"]: s for s in healthy}.values())
    assert promtool_case(tmp_path, "all hold", ex.guard(every), unique).returncode == 0
    one_down = [s for s in unique if "kafka_topic_partition_under_replicated_partition" not in s["series"]] + CASES["kafka-broker-kill"]["broken"]
    result = promtool_case(tmp_path, "kafka does not", ex.guard(every), one_down)
    assert result.returncode != 0 and FAILS in result.stdout + result.stderr
