"""Telemetry every kit workload gets without asking: OTLP traces/logs, scraped metrics, JSON logs."""
from __future__ import annotations

import pulumi

from components.kit.context import Telemetry
from components.kit.custom import custom_resource
from components.kit.labels import recommended, selector

METRICS_PORT_NAME = "metrics"


def otel_env(service: str, namespace: str, stack: str, version: str, telemetry: Telemetry) -> list[dict]:
    """The OpenTelemetry SDK environment: who I am, where to send, in which format to log."""
    attributes = ",".join(
        [
            f"service.namespace={namespace}",
            f"service.version={version}",
            f"deployment.environment.name={stack}",
            f"k8s.namespace.name={namespace}",
        ]
    )
    return [
        {"name": "OTEL_SERVICE_NAME", "value": service},
        {"name": "OTEL_RESOURCE_ATTRIBUTES", "value": attributes},
        {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": telemetry.otlp_endpoint},
        {"name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": "grpc"},
        {"name": "OTEL_TRACES_EXPORTER", "value": "otlp"},
        {"name": "OTEL_LOGS_EXPORTER", "value": "otlp"},
        {"name": "OTEL_METRICS_EXPORTER", "value": "prometheus"},
        {"name": "LOG_FORMAT", "value": "json"},
        {"name": "LOG_OUTPUT", "value": "stdout"},
    ]


def service_monitor(name: str, namespace: str, opts: pulumi.ResourceOptions) -> pulumi.Resource:
    """Ask the Prometheus operator to scrape the Service's ``metrics`` port every 30 s."""
    return custom_resource(
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
        name,
        namespace,
        spec={
            "selector": {"matchLabels": selector(name)},
            "namespaceSelector": {"matchNames": [namespace]},
            "endpoints": [{"port": METRICS_PORT_NAME, "path": "/metrics", "interval": "30s", "scheme": "http"}],
        },
        labels=recommended(name, "service-monitor"),
        opts=opts,
    )
