"""The OpenTelemetry Collector gateway: receives OTLP from every workload, fans out to the backends.

One Deployment (``mode: deployment``) of the Kubernetes distribution (``otelcol-k8s``), named
``opentelemetry-collector`` so that its Service is the endpoint ``core/telemetry.py`` hands to
every kit workload. Metrics go to the OTLP receiver of every Prometheus replica (one exporter
each: the replicas share nothing, so a series pushed to one alone would be missing from the
other), logs to Loki's OTLP endpoint, traces to Tempo's OTLP receiver. Workloads send their logs
over OTLP (the kit sets ``OTEL_LOGS_EXPORTER=otlp``); what containers print reaches Loki through
the node log agent (node_logs.py), which labels its lines with the same processor as this gateway.

Values keys were read from open-telemetry/opentelemetry-helm-charts
charts/opentelemetry-collector/values.yaml (commit f352c0e7) and templates/_pod.tpl
(commit f8a8f7b6); exporter type names ``otlp_grpc``/``otlp_http`` are the collector 0.16x
names (winthebest/shopflow deploy/platform/otel-collector/base/values-gateway.yaml, chart 0.175).
"""
from __future__ import annotations

from typing import Any

from components.core.observability import topology as t
from components.kit.security import container_security_context, pod_security_context, resource_requirements
from components.core.observability.images import repository_tag_digest
from components.kit import KitContext
from components.settings import CollectorSettings

COLLECTOR_UID = 10001
PROCESSORS = ["memory_limiter", "batch"]
LOG_LABELS = "resource/loki-labels"


def label_processor() -> dict[str, Any]:
    """The ``resource`` processor that copies the Kubernetes attributes into the ones Loki indexes as
    ``namespace``, ``pod`` and ``container`` (the labels the dashboards and the runbook query by)."""
    return {
        "attributes": [
            {"key": label, "from_attribute": attribute, "action": "upsert"}
            for label, attribute in t.LOG_LABEL_ATTRIBUTES.items()
        ]
    }


def prometheus_exporters(topo: t.Topology) -> dict[str, dict[str, Any]]:
    """``otlp_http/prometheus-<i>`` for replica ``i``, addressed by its pod's own DNS name.

    A pipeline hands every batch to each of its exporters, and each exporter queues and retries on
    its own, so every replica receives every series and a replica that is down or restarting does
    not hold back the others. The Service ``kps-prometheus`` would balance each batch to one replica.
    """
    return {f"otlp_http/prometheus-{i}": {"endpoint": url, "tls": {"insecure": True}}
            for i, url in enumerate(topo.prometheus_otlp_urls)}


def pipeline_config(settings: CollectorSettings, topo: t.Topology) -> dict[str, Any]:
    """The collector configuration: OTLP in, memory limiter and batch from settings, one exporter
    per Prometheus replica, one for Loki and one for Tempo.

    Receivers bind the pod IP, not 0.0.0.0 (the chart's own default, per the collector's
    security guidance). The debug exporter, Jaeger, Zipkin and Prometheus receivers of the
    chart default are switched off with ``null``. Log records get ``namespace``, ``pod`` and
    ``container`` resource attributes copied from the Kubernetes ones, which Loki indexes as the
    labels the dashboards and the runbook query by.
    """
    prometheus = prometheus_exporters(topo)
    return {
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": f"${{env:MY_POD_IP}}:{t.OTLP_GRPC}"},
                    "http": {"endpoint": f"${{env:MY_POD_IP}}:{t.OTLP_HTTP}"},
                }
            },
            "jaeger": None,
            "zipkin": None,
            "prometheus": None,
        },
        "processors": {
            "memory_limiter": {
                "check_interval": "1s",
                "limit_percentage": settings.memory_limit_percentage,
                "spike_limit_percentage": settings.memory_spike_percentage,
            },
            "batch": {"send_batch_size": settings.batch_size, "timeout": t.go_duration(settings.batch_timeout)},
            LOG_LABELS: label_processor(),
        },
        "exporters": {
            "debug": None,
            **prometheus,
            "otlp_http/loki": {"endpoint": topo.loki_otlp_url, "tls": {"insecure": True}},
            "otlp_grpc/tempo": {"endpoint": topo.tempo_otlp_endpoint, "tls": {"insecure": True}},
        },
        "service": {
            "pipelines": {
                "metrics": {"receivers": ["otlp"], "processors": PROCESSORS, "exporters": sorted(prometheus)},
                "logs": {"receivers": ["otlp"], "processors": [PROCESSORS[0], LOG_LABELS, PROCESSORS[1]], "exporters": ["otlp_http/loki"]},
                "traces": {"receivers": ["otlp"], "processors": PROCESSORS, "exporters": ["otlp_grpc/tempo"]},
            }
        },
    }


def values(settings: CollectorSettings, ctx: KitContext, topo: t.Topology) -> dict[str, Any]:
    disabled = {"enabled": False}
    spread: list[dict] = []
    if settings.replicas > 1:
        spread = [{
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule" if ctx.high_availability else "ScheduleAnyway",
            "labelSelector": {"matchLabels": t.pods("collector")},
        }]
    return {
        "mode": "deployment",
        "fullnameOverride": topo.collector_service,
        "image": repository_tag_digest(ctx.catalog.image("opentelemetry-collector-k8s")),
        "command": {"name": "otelcol-k8s"},
        "replicaCount": settings.replicas,
        "resources": resource_requirements(settings.resources),
        "podSecurityContext": pod_security_context(COLLECTOR_UID),
        "securityContext": container_security_context(uid=COLLECTOR_UID),
        "serviceAccount": {"create": True, "automountServiceAccountToken": False},
        "ports": {
            "otlp": {"enabled": True},
            "otlp-http": {"enabled": True},
            "jaeger-compact": disabled,
            "jaeger-thrift": disabled,
            "jaeger-grpc": disabled,
            "zipkin": disabled,
            "metrics": {"enabled": True},
        },
        "config": pipeline_config(settings, topo),
        "serviceMonitor": {"enabled": True},
        "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1} if settings.replicas > 1 else {"enabled": False},
        "topologySpreadConstraints": spread,
        "networkPolicy": {"enabled": False},
    }
