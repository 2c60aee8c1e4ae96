"""Telemetry every kit workload gets without asking: OTLP traces/logs, scraped metrics, JSON logs."""
from __future__ import annotations

import pulumi

from components.kit.context import KitContext, Telemetry
from components.kit.custom import custom_resource
from components.kit.labels import recommended, selector

METRICS_PORT_NAME = "metrics"
POD_NAME_ENV = "K8S_POD_NAME"
SCRAPE_INTERVAL = "30s"
MONITOR_KINDS = {"ServiceMonitor": "endpoints", "PodMonitor": "podMetricsEndpoints"}


def otel_env(service: str, namespace: str, stack: str, version: str, telemetry: Telemetry,
             metrics: str = "scrape") -> list[dict]:
    """The OpenTelemetry SDK environment: who I am, where to send, in which format to log.

    The pod and container names travel as resource attributes so that the collector can turn
    them (with the namespace) into the ``namespace``/``pod``/``container`` Loki labels the
    dashboards query; the pod name comes from the downward API, defined first so that
    Kubernetes expands ``$(K8S_POD_NAME)`` inside the attribute list. The container is named
    after the service by the kit. ``service.instance.id`` is the pod's name: Prometheus' OTLP
    receiver makes it the ``instance`` label, so the replicas of a service that push their
    metrics (``metrics="otlp"``) stay separate series instead of overwriting each other.
    ``OTEL_METRICS_EXPORTER`` says how the metrics leave: ``prometheus`` (scraped) or ``otlp``.
    """
    attributes = ",".join(
        [
            f"service.namespace={namespace}",
            f"service.version={version}",
            f"deployment.environment.name={stack}",
            f"k8s.namespace.name={namespace}",
            f"k8s.pod.name=$({POD_NAME_ENV})",
            f"k8s.container.name={service}",
            f"service.instance.id=$({POD_NAME_ENV})",
        ]
    )
    return [
        {"name": POD_NAME_ENV, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "OTEL_SERVICE_NAME", "value": service},
        {"name": "OTEL_RESOURCE_ATTRIBUTES", "value": attributes},
        {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": telemetry.otlp_endpoint},
        {"name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": "grpc"},
        {"name": "OTEL_TRACES_EXPORTER", "value": "otlp"},
        {"name": "OTEL_LOGS_EXPORTER", "value": "otlp"},
        {"name": "OTEL_METRICS_EXPORTER", "value": "otlp" if metrics == "otlp" else "prometheus"},
        {"name": "LOG_FORMAT", "value": "json"},
        {"name": "LOG_OUTPUT", "value": "stdout"},
    ]


def service_monitor(
    name: str, namespace: str, ctx: KitContext, opts: pulumi.ResourceOptions, path: str = "/metrics"
) -> pulumi.Resource:
    """Ask the Prometheus operator to scrape the Service's ``metrics`` port every 30 s (at ``path``)."""
    return monitor(
        "ServiceMonitor", name, namespace, selector(name),
        [{"port": METRICS_PORT_NAME, "path": path, "interval": SCRAPE_INTERVAL, "scheme": "http"}],
        ctx, opts,
    )


def monitor(
    kind: str,
    name: str,
    namespace: str,
    match_labels: dict[str, str],
    endpoints: list[dict],
    ctx: KitContext,
    opts: pulumi.ResourceOptions,
) -> pulumi.Resource:
    """A ServiceMonitor (Services labelled ``match_labels``) or PodMonitor (pods labelled so) in ``namespace``.

    Prometheus names the scrape job after the Service (ServiceMonitor) or ``<namespace>/<name>``
    (PodMonitor); the alert rules match on those job names. The object waits for the CRDs.
    """
    if kind not in MONITOR_KINDS:
        raise ValueError(f"monitor {namespace}/{name}: kind must be one of {MONITOR_KINDS}")
    spec = {
        "selector": {"matchLabels": dict(match_labels)},
        "namespaceSelector": {"matchNames": [namespace]},
        MONITOR_KINDS[kind]: endpoints,
    }
    return custom_resource(
        "monitoring.coreos.com/v1", kind, name, namespace, spec=spec,
        labels=recommended(name, kind.lower().replace("monitor", "-monitor")), opts=ctx.after_metrics_crds(opts),
    )


def pod_monitor(
    name: str, namespace: str, match_labels: dict[str, str], endpoints: list[dict], ctx: KitContext, opts: pulumi.ResourceOptions
) -> pulumi.Resource:
    """Scrape the pods ``match_labels`` selects (operator-made pods that have no Service of ours)."""
    return monitor("PodMonitor", name, namespace, match_labels, endpoints, ctx, opts)
