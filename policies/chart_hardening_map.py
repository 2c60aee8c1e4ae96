"""Where each Helm chart the platform installs takes its pods' securityContext and resources.

Helm charts are not expanded offline, so the gate cannot see the pods a chart renders; it can
see the values the program passes. This map says, per chart (keyed by the chart name as the
plan's Chart ``chart`` input names it, the last segment of an ``oci://`` reference), which
values paths hold the pod securityContext, the container securityContext and the resources of
every pod the chart runs, so chart-hardening can check those paths like a pod spec.

Derived from what components/core passes today (kit.security's pod/container security contexts
and resource_requirements, at the paths each module's docstring cites from the chart's
values.yaml) and from the charts' values.yaml keys.

* ``waived``: a check the chart cannot satisfy through its values, with the reason; reported as
  WAIVED in every stack, never silently skipped.
* ``when``: the pod runs only when this values path is truthy (``when_in``: equals one of these
  values); an absent value means the chart's default (``when_default``).
* ``unmapped``: a pod whose values paths are not mapped here; while it is switched on, the chart
  is reported ("chart X runs <pod>, which has no hardening map"), so turning on an optional pod
  needs its map entry first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ChartContainer:
    name: str
    security_context: str | None
    resources: str | None
    waived: Mapping[str, str] = field(default_factory=dict)
    """check name (``runAsNonRoot``, ``allowPrivilegeEscalation``, ``capabilities``,
    ``readOnlyRootFilesystem``, ``resources``) -> why the chart cannot set it."""


@dataclass(frozen=True)
class ChartPod:
    name: str
    pod_security_context: str | None = None
    containers: tuple[ChartContainer, ...] = ()
    when: str | None = None
    when_in: tuple[Any, ...] = ()
    when_default: bool = True
    unmapped: bool = False


OPERATOR_GENERATED = (
    "the Prometheus operator generates this container and sets allowPrivilegeEscalation: false, "
    "readOnlyRootFilesystem: true and capabilities.drop [ALL] on it itself; kube-prometheus-stack "
    "has no value for the container securityContext"
)
_GENERATED_WAIVERS = {
    "allowPrivilegeEscalation": OPERATOR_GENERATED,
    "capabilities": OPERATOR_GENERATED,
    "readOnlyRootFilesystem": OPERATOR_GENERATED,
}
_RELOADER_RESOURCES = "prometheusOperator.prometheusConfigReloader.resources"


def _single(pod_sc: str, container_sc: str, resources: str, name: str = "main", **when: Any) -> ChartPod:
    """A pod with one container whose three places are plain values paths."""
    return ChartPod(name, pod_sc, (ChartContainer(name, container_sc, resources),), **when)


KUBE_PROMETHEUS_STACK = (
    _single(
        "prometheusOperator.securityContext",
        "prometheusOperator.containerSecurityContext",
        "prometheusOperator.resources",
        "prometheus-operator",
        when="prometheusOperator.enabled",
    ),
    ChartPod(
        "prometheus",
        "prometheus.prometheusSpec.securityContext",
        (
            ChartContainer("prometheus", None, "prometheus.prometheusSpec.resources", _GENERATED_WAIVERS),
            ChartContainer("config-reloader", None, _RELOADER_RESOURCES, _GENERATED_WAIVERS),
        ),
        when="prometheus.enabled",
    ),
    ChartPod(
        "alertmanager",
        "alertmanager.alertmanagerSpec.securityContext",
        (
            ChartContainer("alertmanager", None, "alertmanager.alertmanagerSpec.resources", _GENERATED_WAIVERS),
            ChartContainer("config-reloader", None, _RELOADER_RESOURCES, _GENERATED_WAIVERS),
        ),
        when="alertmanager.enabled",
    ),
    _single(
        "kube-state-metrics.securityContext",
        "kube-state-metrics.containerSecurityContext",
        "kube-state-metrics.resources",
        "kube-state-metrics",
        when="kubeStateMetrics.enabled",
    ),
    ChartPod("node-exporter", when="nodeExporter.enabled", unmapped=True),
    ChartPod("grafana subchart", when="grafana.enabled", unmapped=True),
    ChartPod("admission webhook patch jobs", when="prometheusOperator.admissionWebhooks.enabled", unmapped=True),
    ChartPod("thanos ruler", when="thanosRuler.enabled", when_default=False, unmapped=True),
)

LOKI_SIMPLE_SCALABLE = ("SimpleScalable", "SimpleScalable<->Distributed", "SingleBinary<->SimpleScalable")


def _loki(target: str, modes: tuple[str, ...]) -> ChartPod:
    return _single(
        "loki.podSecurityContext", "loki.containerSecurityContext", f"{target}.resources", target,
        when="deploymentMode", when_in=modes,
    )


LOKI = (
    _loki("singleBinary", ("Monolithic", "SingleBinary", "SingleBinary<->SimpleScalable")),
    _loki("read", LOKI_SIMPLE_SCALABLE),
    _loki("write", LOKI_SIMPLE_SCALABLE),
    _loki("backend", LOKI_SIMPLE_SCALABLE),
    ChartPod("gateway", when="gateway.enabled", unmapped=True),
    ChartPod("chunks cache", when="chunksCache.enabled", unmapped=True),
    ChartPod("results cache", when="resultsCache.enabled", unmapped=True),
    ChartPod("canary", when="lokiCanary.enabled", unmapped=True),
    ChartPod("helm test", when="test.enabled", unmapped=True),
    ChartPod("minio subchart", when="minio.enabled", when_default=False, unmapped=True),
    ChartPod("rules sidecar", when="sidecar.rules.enabled", unmapped=True),
)

GRAFANA = (
    ChartPod(
        "grafana",
        "securityContext",
        (
            ChartContainer("grafana", "containerSecurityContext", "resources"),
            ChartContainer("dashboards sidecar", "sidecar.securityContext", "sidecar.resources"),
        ),
    ),
    ChartPod("init-chown-data", when="initChownData.enabled", unmapped=True),
    ChartPod("test framework", when="testFramework.enabled", unmapped=True),
)

EXTERNAL_SECRETS = (
    _single("podSecurityContext", "securityContext", "resources", "controller"),
    _single(
        "webhook.podSecurityContext", "webhook.securityContext", "webhook.resources", "webhook",
        when="webhook.create",
    ),
    _single(
        "certController.podSecurityContext", "certController.securityContext", "certController.resources",
        "cert-controller", when="certController.create",
    ),
)

CHART_HARDENING: dict[str, tuple[ChartPod, ...]] = {
    "kube-prometheus-stack": KUBE_PROMETHEUS_STACK,
    "loki": LOKI,
    "grafana": GRAFANA,
    "external-secrets": EXTERNAL_SECRETS,
    "tempo": (
        _single("securityContext", "tempo.securityContext", "tempo.resources", "tempo"),
        ChartPod("tempo-query", when="tempoQuery.enabled", unmapped=True),
    ),
    "vault": (
        _single(
            "server.statefulSet.securityContext.pod",
            "server.statefulSet.securityContext.container",
            "server.resources",
            "server",
        ),
        ChartPod("agent injector", when="injector.enabled", unmapped=True),
        ChartPod("csi provider", when="csi.enabled", when_default=False, unmapped=True),
    ),
    "altinity-clickhouse-operator": (
        _single("podSecurityContext", "operator.containerSecurityContext", "operator.resources", "operator"),
        ChartPod("metrics exporter container", when="metrics.enabled", unmapped=True),
    ),
    "cloudnative-pg": (_single("podSecurityContext", "containerSecurityContext", "resources", "operator"),),
    "strimzi-kafka-operator": (_single("podSecurityContext", "securityContext", "resources", "operator"),),
    "qdrant": (
        _single("podSecurityContext", "containerSecurityContext", "resources", "qdrant"),
        ChartPod("volume ownership init container", when="updateVolumeFsOwnership", unmapped=True),
    ),
    "opentelemetry-collector": (_single("podSecurityContext", "securityContext", "resources", "collector"),),
}
