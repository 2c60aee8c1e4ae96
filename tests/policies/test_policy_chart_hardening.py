"""chart-hardening against the real rendered plans and its map: every chart the program installs is
mapped, the map's paths are the ones the program writes, and documented exceptions show as WAIVED."""

from __future__ import annotations

from typing import Any

import pytest

from policies.chart_hardening_map import CHART_HARDENING
from policies.config import load_config_file, stack_config_path
from policies.evaluate import check_resource
from policies.model import ResourceView, dig
from policies.rules import RULES_BY_NAME
from policies.rules.chart_hardening import CHART_TYPES, chart_name
from tools.gate import run_gate

RULE = RULES_BY_NAME["chart-hardening"]


def _charts(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in plan["resources"] if r["type"] in CHART_TYPES]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_chart_of_the_stack_is_in_the_map(plans: dict[str, dict[str, Any]], stack: str) -> None:
    charts = _charts(plans[stack])
    assert charts, "the plan installs no chart"
    assert {chart_name(c["inputs"]["chart"]) for c in charts} <= set(CHART_HARDENING)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_map_paths_are_where_the_program_writes_security_contexts(plans: dict[str, dict[str, Any]], stack: str) -> None:
    """A typo in the map would point at an absent value and read as 'missing' rather than 'wrong place'."""
    for chart in _charts(plans[stack]):
        values = chart["inputs"].get("values") or {}
        for pod in CHART_HARDENING[chart_name(chart["inputs"]["chart"])]:
            if pod.unmapped or (pod.when_in and values.get(pod.when) not in pod.when_in):
                continue
            paths = [pod.pod_security_context, *(c.security_context for c in pod.containers)]
            for path in filter(None, paths):
                assert isinstance(dig(values, *path.split(".")), dict), f"{chart['name']}: values.{path}"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_optional_pod_runs_unmapped_and_exceptions_are_waived(plans: dict[str, dict[str, Any]], stack: str) -> None:
    report = run_gate(plans[stack], load_config_file(stack_config_path(stack)))
    lines = [line for line in report.lines if line.rule == "chart-hardening"]
    assert not [line for line in lines if "no hardening map" in line.message], report.render()
    waived = [line for line in lines if line.level == "waived"]
    assert waived, "kube-prometheus-stack's operator-generated containers are documented exceptions"
    assert all(line.waiver is not None and line.waiver.reason for line in waived)


def test_documented_exception_is_waived_in_prod_without_an_allow_list() -> None:
    chart = ResourceView.of(
        "kubernetes:helm.sh/v4:Chart",
        "kps",
        "urn:kps",
        {
            "chart": "kube-prometheus-stack",
            "values": {
                "prometheus": {"prometheusSpec": {"securityContext": {"runAsNonRoot": True}}},
                "prometheusOperator": {"enabled": False},
                "alertmanager": {"enabled": False},
                "kubeStateMetrics": {"enabled": False},
                "nodeExporter": {"enabled": False},
                "grafana": {"enabled": False},
            },
        },
    )
    config = {**RULE.defaults(), "waivers": "allow-list"}
    outcomes = check_resource(RULE, chart, config)
    waived = [o for o in outcomes if o.waived]
    assert waived and all("operator generates this container" in o.waiver.reason for o in waived)
    blocking = [o.message for o in outcomes if not o.waived]
    assert any("prometheusSpec.resources.limits.cpu must be set" in m for m in blocking)
    assert any("admission webhook patch jobs" in m for m in blocking)
