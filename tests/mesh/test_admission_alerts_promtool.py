"""Gatekeeper's alerts as deployed, unit-tested with ``promtool test rules``.

The rule file is the prod plan's PrometheusRule ``gatekeeper``. Input series carry what Prometheus would
give them in that plan: Gatekeeper's own series the ``job`` and ``namespace`` of the targets of the
PodMonitor over its pods (tests/scrapes.py) and the labels its stats reporter sets (``admission_status``:
gatekeeper v3.23.0 pkg/webhook/stats_reporter.go); the Deployment's series kube-state-metrics' job with the
Deployment's own ``namespace`` and ``deployment`` labels. A rule whose matchers miss what is scraped does
not fire here either.
"""
from __future__ import annotations

import pytest
import yaml

from components.core.observability import producers
from components.mesh.admission import alerts
from tests.core.test_alert_rules_promtool import PROMTOOL, alert, case, rule_file, run, series
from tests.helpers import objects
from tests.scrapes import all_targets

pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool not found (PROMTOOL, PATH, build/bin): `make promtool`")

DEPLOYMENT = "gatekeeper-controller-manager"


def target(plan: dict, monitor: producers.Monitor) -> dict[str, str]:
    key = next(k for k in all_targets(plan) if k[0] == monitor.kind and k[2] == monitor.name)
    jobs = {(t.job, t.namespace) for t in all_targets(plan)[key]}
    job, namespace = sorted(jobs)[0]
    return {"job": job, "namespace": namespace}


def cases(gatekeeper: dict[str, str], ksm_job: str) -> list[dict]:
    deployment = {"job": ksm_job, "namespace": gatekeeper["namespace"], "deployment": DEPLOYMENT}
    bucket = lambda le, values: series(alerts.DURATION_BUCKETS, {**gatekeeper, "le": le}, values)
    allowed, denied = {**gatekeeper, "admission_status": "allow"}, {**gatekeeper, "admission_status": "deny"}
    return [
        case("no replica available: GatekeeperWebhookUnavailable",
             [series("kube_deployment_status_replicas_available", deployment, "3 0x10")],
             [("5m", "GatekeeperWebhookUnavailable", [alert("GatekeeperWebhookUnavailable", "critical", **deployment)])]),
        case("replicas available: no alert",
             [series("kube_deployment_status_replicas_available", deployment, "3x10")],
             [("5m", "GatekeeperWebhookUnavailable", [])]),
        case("one of three missing for 15 minutes: GatekeeperWebhookDegraded",
             [series("kube_deployment_status_replicas_available", deployment, "2x20"),
              series("kube_deployment_spec_replicas", deployment, "3x20")],
             [("15m", "GatekeeperWebhookDegraded", [alert("GatekeeperWebhookDegraded", "warning", **deployment)])]),
        case("p99 past half the timeout: GatekeeperWebhookSlow",
             [bucket("0.5", "0+1x40"), bucket("1", "0+1x40"), bucket("2.5", "0+100x40"), bucket("+Inf", "0+100x40")],
             [("30m", "GatekeeperWebhookSlow", [alert("GatekeeperWebhookSlow", "warning")])]),
        case("fast answers: no alert",
             [bucket("0.5", "0+100x40"), bucket("1", "0+100x40"), bucket("2.5", "0+100x40"), bucket("+Inf", "0+100x40")],
             [("30m", "GatekeeperWebhookSlow", [])]),
        case("steady refusals: GatekeeperDenialsRising",
             [series(alerts.REQUESTS, allowed, "0+100x40"), series(alerts.REQUESTS, denied, "0+60x40")],
             [("35m", "GatekeeperDenialsRising", [alert("GatekeeperDenialsRising", "warning")])]),
        case("an occasional refusal: no alert",
             [series(alerts.REQUESTS, allowed, "0+100x40"), series(alerts.REQUESTS, denied, "0+1x40")],
             [("35m", "GatekeeperDenialsRising", [])]),
    ]


def write_tests(plan: dict, folder, rules_edit=lambda text: text) -> None:
    (rule_object,) = [r for r in objects(plan, "PrometheusRule") if r["metadata"]["name"] == alerts.RULE_NAME]
    (folder / "rules.yaml").write_text(rules_edit(yaml.safe_dump(rule_file(rule_object, annotations=False))))
    ksm_job = target(plan, producers.KUBE_STATE_METRICS)["job"]
    (folder / "tests.yaml").write_text(yaml.safe_dump(
        {"rule_files": ["rules.yaml"], "evaluation_interval": "1m",
         "tests": cases(target(plan, producers.GATEKEEPER), ksm_job)}, sort_keys=False))


def test_gatekeeper_alerts_fire_as_deployed(plans, tmp_path):
    write_tests(plans["prod"], tmp_path)
    result = run("test", "rules", "tests.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_counter_read_without_its_total_suffix_fails_its_test(plans, tmp_path):
    """The exporter appends _total (OpenTelemetry's Prometheus exporter): a rule on the bare name never fires."""
    write_tests(plans["prod"], tmp_path, lambda text: text.replace(alerts.REQUESTS, alerts.REQUESTS.removesuffix("_total")))
    result = run("test", "rules", "tests.yaml", cwd=tmp_path)
    assert result.returncode != 0 and "GatekeeperDenialsRising" in result.stdout + result.stderr
