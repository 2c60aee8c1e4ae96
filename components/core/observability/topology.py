"""Where each observability component listens and how its pods are labelled, decided once.

The chart values (fullnameOverride, ports), the Grafana data sources, the collector exporters
and the NetworkPolicies all read these names from here, so a renamed Service or a moved port
cannot leave one of them pointing at nothing.

Pod labels are the charts' own, not ours: each one was read from the chart templates
(``app.kubernetes.io/name`` is the chart name unless ``nameOverride`` is set, which we never
set; the Prometheus operator labels the pods it creates ``prometheus`` / ``alertmanager``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from components.core.telemetry import COLLECTOR_SERVICE

OTLP_GRPC = 4317
OTLP_HTTP = 4318
COLLECTOR_METRICS = 8888
PROMETHEUS_WEB = 9090
ALERTMANAGER_WEB = 9093
ALERTMANAGER_CLUSTER = 9094
LOKI_HTTP = 3100
TEMPO_HTTP = 3200
STORE_GRPC = 9095
MEMBERLIST = 7946
GRAFANA_HTTP = 3000
EXPORTER_HTTP = 8080
KUBELET = 10250
KUBERNETES_API = (443, 6443)

NAME_LABEL = "app.kubernetes.io/name"

# Every pod the observability namespace runs, by the app.kubernetes.io/name its chart gives it.
# collector: opentelemetry-collector _helpers.tpl selectorLabels; operator:
# kube-prometheus-stack templates/prometheus-operator/_prometheus-operator.tpl.
POD_NAMES = {
    "collector": "opentelemetry-collector",
    "prometheus": "prometheus",
    "alertmanager": "alertmanager",
    "operator": "kube-prometheus-stack-prometheus-operator",
    "kube-state-metrics": "kube-state-metrics",
    "loki": "loki",
    "tempo": "tempo",
    "grafana": "grafana",
}

# Loki labels (as the dashboards query them) and the OTLP resource attribute each is copied from.
LOG_LABEL_ATTRIBUTES = {"namespace": "k8s.namespace.name", "pod": "k8s.pod.name", "container": "k8s.container.name"}

KPS_FULLNAME = "kps"
PROMETHEUS_GOVERNING_SERVICE = "prometheus-operated"
"""The headless Service the Prometheus operator creates as every Prometheus StatefulSet's governing
Service when the resource names none (prometheus-operator v0.93.0 pkg/prometheus/server/statefulset.go,
``governingServiceName``; operator.go reconciles it). Each pod gets a DNS name under it."""
LOKI_FULLNAME = "loki"
TEMPO_FULLNAME = "tempo"
GRAFANA_FULLNAME = "grafana"

_GO_UNITS_IN_HOURS = {"d": 24, "w": 24 * 7, "y": 24 * 365}


def pods(component: str) -> dict[str, str]:
    """The label selector of one component's pods."""
    return {NAME_LABEL: POD_NAMES[component]}


def go_duration(value: str) -> str:
    """Settings allow ``15d`` and ``2w``; Go's time.Duration (Tempo, the collector) stops at hours."""
    match = re.fullmatch(r"([0-9]+)(ms|s|m|h|d|w|y)", value)
    if not match:
        raise ValueError(f"{value!r} is not a duration such as 30s, 15d or 2w")
    number, unit = int(match.group(1)), match.group(2)
    if unit in _GO_UNITS_IN_HOURS:
        return f"{number * _GO_UNITS_IN_HOURS[unit]}h"
    return value


@dataclass(frozen=True)
class ObjectStoreAddress:
    """Host, namespace and port of the S3 endpoint, read from the URL Core hands over."""

    host: str
    namespace: str | None
    port: int
    secure: bool

    @classmethod
    def parse(cls, endpoint: str) -> "ObjectStoreAddress":
        parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
        if not parts.hostname:
            raise ValueError(f"object storage endpoint {endpoint!r} has no host")
        secure = parts.scheme == "https"
        port = parts.port or (443 if secure else 80)
        labels = parts.hostname.split(".")
        in_cluster = len(labels) >= 3 and labels[2] == "svc"
        return cls(host=parts.hostname, namespace=labels[1] if in_cluster else None, port=port, secure=secure)

    @property
    def host_port(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Topology:
    """Service names and URLs inside the observability namespace for one stack."""

    namespace: str
    loki_scalable: bool
    prometheus_replicas: int = 1

    def host(self, service: str) -> str:
        return f"{service}.{self.namespace}.svc.cluster.local"

    @property
    def collector_service(self) -> str:
        return COLLECTOR_SERVICE

    @property
    def prometheus_service(self) -> str:
        return f"{KPS_FULLNAME}-prometheus"

    @property
    def alertmanager_service(self) -> str:
        return f"{KPS_FULLNAME}-alertmanager"

    @property
    def prometheus_url(self) -> str:
        return f"http://{self.host(self.prometheus_service)}:{PROMETHEUS_WEB}"

    @property
    def prometheus_resource(self) -> str:
        """The Prometheus resource kube-prometheus-stack renders (``<fullname>-prometheus``)."""
        return f"{KPS_FULLNAME}-prometheus"

    @property
    def prometheus_pods(self) -> tuple[str, ...]:
        """Every Prometheus replica's own DNS name, ``<pod>.prometheus-operated.<namespace>.svc``.

        The operator runs the (single-shard) resource as the StatefulSet ``prometheus-<resource>``
        (prometheus-operator v0.93.0 pkg/prometheus/common.go, ``prometheusNameByShard`` and
        ``PrefixedName``), whose pods are ``<statefulset>-<ordinal>`` under the governing Service.
        """
        statefulset = f"prometheus-{self.prometheus_resource}"
        return tuple(self.host(f"{statefulset}-{i}.{PROMETHEUS_GOVERNING_SERVICE}") for i in range(self.prometheus_replicas))

    @property
    def prometheus_otlp_urls(self) -> tuple[str, ...]:
        """Prometheus 3's OTLP receiver on each replica: the replicas do not share samples, so each is
        sent every series. The collector's otlp_http exporter appends /v1/metrics."""
        return tuple(f"http://{pod}:{PROMETHEUS_WEB}/api/v1/otlp" for pod in self.prometheus_pods)

    @property
    def loki_write_service(self) -> str:
        """SimpleScalable without the nginx gateway: writes go straight to the write targets."""
        return f"{LOKI_FULLNAME}-write" if self.loki_scalable else LOKI_FULLNAME

    @property
    def loki_read_service(self) -> str:
        return f"{LOKI_FULLNAME}-read" if self.loki_scalable else LOKI_FULLNAME

    @property
    def loki_otlp_url(self) -> str:
        """Loki 3's native OTLP endpoint; the exporter appends /v1/logs."""
        return f"http://{self.host(self.loki_write_service)}:{LOKI_HTTP}/otlp"

    @property
    def loki_query_url(self) -> str:
        return f"http://{self.host(self.loki_read_service)}:{LOKI_HTTP}"

    @property
    def tempo_otlp_endpoint(self) -> str:
        return f"{self.host(TEMPO_FULLNAME)}:{OTLP_GRPC}"

    @property
    def tempo_query_url(self) -> str:
        return f"http://{self.host(TEMPO_FULLNAME)}:{TEMPO_HTTP}"
