"""Alerts on the signature webhook: down, refusing, slow.

The metric names were read from the webhook's own code at the versions policy-controller v0.13.1 builds
with (go.mod: knative.dev/pkg v0.0.0-20230612155445-74c4be5e935e): webhook/stats_reporter.go records
``request_count`` and ``request_latencies`` (milliseconds, buckets 1 ms .. 100 s) for every admission
request, labelled ``admission_allowed``, ``resource_resource``, ``resource_namespace`` and more; the
Prometheus exporter prefixes them with the component (metrics/exporter.go: ``-`` becomes ``_``), which
cmd/webhook/main.go names ``policy-controller`` (``sharedmain.MainWithContext(ctx, "policy-controller", ...)``).
The chart's ServiceMonitor scrapes the Service ``<release>-webhook-metrics``, which names the job.
"""
from __future__ import annotations

import pulumi

from components.kit import KitContext, custom_resource, recommended

PREFIX = "policy_controller_"
REQUESTS = f"{PREFIX}request_count"
LATENCY_BUCKETS = f"{PREFIX}request_latencies_bucket"
JOB = "policy-controller-webhook-metrics"
RULE_NAME = "soma-image-signatures"
RUNBOOK = "docs/runbooks/admission-signatures.md"
SLOW_MS = 5000
"""Half the API server's default webhook timeout (10 s; the chart sets none): past it, pod creation stalls."""
REFUSED_SHARE = 0.25


def groups(namespace: str) -> list[dict]:
    target = f'namespace="{namespace}", job="{JOB}"'
    pods = f'{target}, resource_resource="pods"'
    return [{
        "name": "somaagenthub.image-signatures",
        "rules": [
            {
                "alert": "ImageSignatureWebhookDown",
                "expr": f"(max(up{{{target}}}) == 0) or absent(up{{{target}}})",
                "for": "5m",
                "labels": {"severity": "critical"},
                "annotations": {
                    "summary": "No image signature webhook replica answers.",
                    "description": "With failurePolicy Fail no pod can be created in a verified namespace; with Ignore, pods are admitted unverified.",
                    "runbook_url": f"{RUNBOOK}#imagesignaturewebhookdown",
                },
            },
            {
                "alert": "ImageSignatureRefusalsHigh",
                "expr": (f'sum(rate({REQUESTS}{{{pods}, admission_allowed="false"}}[10m])) '
                         f"/ sum(rate({REQUESTS}{{{pods}}}[10m])) > {REFUSED_SHARE}"),
                "for": "10m",
                "labels": {"severity": "critical"},
                "annotations": {
                    "summary": "More than a quarter of pod admissions fail signature verification.",
                    "description": "An unsigned image is refused one at a time; this many at once means verification itself fails "
                                   "(signature source unreachable, platform key rotated without the policy, TUF root stale).",
                    "runbook_url": f"{RUNBOOK}#imagesignaturerefusalshigh",
                },
            },
            {
                "alert": "ImageSignatureWebhookSlow",
                "expr": (f"histogram_quantile(0.99, sum by (le) (rate({LATENCY_BUCKETS}{{{target}}}[10m]))) > {SLOW_MS}"),
                "for": "10m",
                "labels": {"severity": "warning"},
                "annotations": {
                    "summary": "The image signature webhook takes more than 5 s for 1% of admissions.",
                    "description": "The API server gives up after 10 s; a slow registry or signature source makes pod creation fail or stall.",
                    "runbook_url": f"{RUNBOOK}#imagesignaturewebhookslow",
                },
            },
        ],
    }]


def rule(namespace: str, ctx: KitContext, opts: pulumi.ResourceOptions) -> pulumi.Resource:
    return custom_resource("monitoring.coreos.com/v1", "PrometheusRule", RULE_NAME, namespace, spec={"groups": groups(namespace)},
                           labels=recommended(RULE_NAME, "alert-rules"), opts=ctx.after_metrics_crds(opts))
