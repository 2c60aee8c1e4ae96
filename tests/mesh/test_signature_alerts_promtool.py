"""The signature webhook's alerts as deployed, unit-tested with ``promtool test rules``.

The rule file is the prod plan's PrometheusRule ``soma-image-signatures``; input series carry the ``job``
and ``namespace`` Prometheus gives the targets of the policy-controller chart's ServiceMonitor in that
plan (tests/scrapes.py), and the labels knative's webhook stats reporter sets (``admission_allowed``,
``resource_resource``: knative.dev/pkg webhook/stats_reporter.go at the commit policy-controller v0.13.1
builds with). So a rule whose matchers miss the scraped job does not fire here either.
"""
from __future__ import annotations

import pytest
import yaml

from components.core.observability import producers
from components.mesh.signatures import alerts
from tests.core.test_alert_rules_promtool import PROMTOOL, alert, case, rule_file, run, series
from tests.helpers import objects
from tests.scrapes import all_targets

pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool not found (PROMTOOL, PATH, build/bin): `make promtool`")


def target(plan: dict) -> dict[str, str]:
    monitor = producers.SIGNATURE_WEBHOOK
    key = next(k for k in all_targets(plan) if k[0] == monitor.kind and k[2] == monitor.name)
    (job, namespace), = {(t.job, t.namespace) for t in all_targets(plan)[key]}
    return {"job": job, "namespace": namespace}


def cases(t: dict[str, str]) -> list[dict]:
    pods = {**t, "resource_resource": "pods", "request_operation": "CREATE", "resource_namespace": "soma-data"}
    allowed, refused = {**pods, "admission_allowed": "true"}, {**pods, "admission_allowed": "false"}
    bucket = lambda le, values: series(alerts.LATENCY_BUCKETS, {**t, "le": le}, values)
    return [
        case("every replica down: ImageSignatureWebhookDown",
             [series("up", {**t, "pod": "policy-controller-webhook-0"}, "1 1 0x20"),
              series("up", {**t, "pod": "policy-controller-webhook-1"}, "1 1 0x20")],
             [("10m", "ImageSignatureWebhookDown", [alert("ImageSignatureWebhookDown", "critical")])]),
        case("one replica down of two: no alert",
             [series("up", {**t, "pod": "policy-controller-webhook-0"}, "1x20"),
              series("up", {**t, "pod": "policy-controller-webhook-1"}, "1 1 0x20")],
             [("10m", "ImageSignatureWebhookDown", [])]),
        case("no scrape at all (absent keeps the matchers' labels): ImageSignatureWebhookDown",
             [series("up", {"job": "other", "namespace": "soma-data"}, "1x20")],
             [("10m", "ImageSignatureWebhookDown", [alert("ImageSignatureWebhookDown", "critical", **t)])]),
        case("most pod admissions refused for 20 minutes: ImageSignatureRefusalsHigh",
             [series(alerts.REQUESTS, allowed, "0+1x40"), series(alerts.REQUESTS, refused, "0+3x40")],
             [("30m", "ImageSignatureRefusalsHigh", [alert("ImageSignatureRefusalsHigh", "critical")])]),
        case("an occasional unsigned image refused: no alert",
             [series(alerts.REQUESTS, allowed, "0+20x40"), series(alerts.REQUESTS, refused, "0+1x40")],
             [("30m", "ImageSignatureRefusalsHigh", [])]),
        case("p99 latency past 5 s: ImageSignatureWebhookSlow",
             [bucket("1000", "0+1x40"), bucket("5000", "0+1x40"), bucket("10000", "0+100x40"), bucket("+Inf", "0+100x40")],
             [("30m", "ImageSignatureWebhookSlow", [alert("ImageSignatureWebhookSlow", "warning")])]),
        case("fast answers: no alert",
             [bucket("1000", "0+100x40"), bucket("5000", "0+100x40"), bucket("10000", "0+100x40"), bucket("+Inf", "0+100x40")],
             [("30m", "ImageSignatureWebhookSlow", [])]),
    ]


def write_tests(plan: dict, folder, rules_edit=lambda text: text) -> None:
    (rule_object,) = [r for r in objects(plan, "PrometheusRule") if r["metadata"]["name"] == alerts.RULE_NAME]
    (folder / "rules.yaml").write_text(rules_edit(yaml.safe_dump(rule_file(rule_object, annotations=False))))
    (folder / "tests.yaml").write_text(yaml.safe_dump(
        {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": cases(target(plan))}, sort_keys=False))


def test_signature_alerts_fire_as_deployed(plans, tmp_path):
    write_tests(plans["prod"], tmp_path)
    result = run("test", "rules", "tests.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_rule_that_misses_the_scraped_job_fails_its_test(plans, tmp_path):
    write_tests(plans["prod"], tmp_path, lambda text: text.replace(alerts.JOB, "policy-controller-old"))
    result = run("test", "rules", "tests.yaml", cwd=tmp_path)
    assert result.returncode != 0 and "ImageSignatureRefusalsHigh" in result.stdout + result.stderr
