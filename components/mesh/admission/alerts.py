"""Alerts on the admission webhook: unavailable, slow, and refusing more than it did.

Metric names from Gatekeeper's docs at v3.23.0 (website/docs/metrics.md, "Webhook"):
``gatekeeper_validation_request_count`` (labels admission_status allow|deny, admission_dryrun) and
``gatekeeper_validation_request_duration_seconds`` (a distribution, exported as a Prometheus histogram).
The counter is scraped as ``gatekeeper_validation_request_count_total``: Gatekeeper v3.23.0 exports
through OpenTelemetry's Prometheus exporter (pkg/metrics/exporters/prometheus/prometheus_exporter.go:
``prometheus.New(WithNamespace("gatekeeper"), WithoutScopeInfo())``, go.opentelemetry.io/otel/exporters/
prometheus v0.63.0 in its go.mod), which appends ``_total`` to every counter unless told
``WithoutCounterSuffixes``; the metrics page itself warns that exporters may append it.
Gatekeeper has no "error" status: a webhook call that fails never reaches it. The API server's own
``apiserver_admission_webhook_rejection_count`` / ``apiserver_admission_webhook_admission_duration_seconds``
would show those, but the platform does not scrape the API server (no such scrape in
components/core/observability), so a failing webhook is seen as webhook replicas not available
(kube-state-metrics, which the platform scrapes) and Gatekeeper's own targets down.
"""
from __future__ import annotations

from components.kit import KitContext, custom_resource

REQUESTS = "gatekeeper_validation_request_count_total"
DURATION_BUCKETS = "gatekeeper_validation_request_duration_seconds_bucket"
RULE_NAME = "gatekeeper"
TIMEOUT_SECONDS = 3
"""``validatingWebhookTimeoutSeconds`` (values.yaml): past it the API server fails the call (Fail: refused)."""


def rules(namespace: str) -> list[dict]:
    deployment = f'namespace="{namespace}", deployment="gatekeeper-controller-manager"'
    return [
        {"alert": "GatekeeperWebhookUnavailable",
         "expr": f"kube_deployment_status_replicas_available{{{deployment}}} == 0",
         "for": "2m", "labels": {"severity": "critical"},
         "annotations": {"summary": "No Gatekeeper webhook replica is available",
                         "description": "With failurePolicy Fail every pod create outside the exempt namespaces is refused. "
                                        "Follow docs/runbooks/admission.md (break-glass)."}},
        {"alert": "GatekeeperWebhookDegraded",
         "expr": f"kube_deployment_status_replicas_available{{{deployment}}} < kube_deployment_spec_replicas{{{deployment}}}",
         "for": "10m", "labels": {"severity": "warning"},
         "annotations": {"summary": "Gatekeeper webhook runs fewer replicas than it should"}},
        {"alert": "GatekeeperWebhookSlow",
         "expr": f"histogram_quantile(0.99, sum by (le) (rate({DURATION_BUCKETS}"
                 f'{{namespace="{namespace}"}}[5m]))) > {TIMEOUT_SECONDS * 0.5}',
         "for": "10m", "labels": {"severity": "warning"},
         "annotations": {"summary": "Gatekeeper's p99 validation time is over half the webhook timeout",
                         "description": f"Calls slower than {TIMEOUT_SECONDS}s fail at the API server (refused in prod)."}},
        {"alert": "GatekeeperDenialsRising",
         "expr": f'sum(rate({REQUESTS}{{namespace="{namespace}", admission_status="deny"}}[10m])) > 0.1',
         "for": "15m", "labels": {"severity": "warning"},
         "annotations": {"summary": "Gatekeeper is refusing requests steadily",
                         "description": "Something keeps asking for pods the policy refuses: read the denials "
                                        "(logDenies is on) in the manager's logs."}},
    ]


def alert_rules(namespace: str, ctx: KitContext, opts):
    return custom_resource("monitoring.coreos.com/v1", "PrometheusRule", RULE_NAME, namespace,
                           {"groups": [{"name": "admission-gatekeeper", "rules": rules(namespace)}]},
                           ctx.after_metrics_crds(opts))
