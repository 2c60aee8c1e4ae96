"""Prometheus, Alertmanager, the Prometheus operator and kube-state-metrics: kube-prometheus-stack.

Kept: operator, Prometheus, Alertmanager, kube-state-metrics and the kubelet/cAdvisor scrape
(the dashboards read container CPU, memory and volume series from it).
Switched off, each with its reason:

* ``nodeExporter`` - a DaemonSet on the host network and PID namespace with hostPath mounts;
  no-host-access and restricted Pod Security refuse it. Node metrics come from the kubelet.
* ``grafana`` - the standalone grafana chart is used (its own catalog pin, data sources, secrets).
* admission webhooks - the API server would need an ingress path into this namespace from the
  control-plane network, and the patch Jobs egress to the API; PrometheusRules are validated in
  CI instead (CRD schema and PromQL parsing, tests/core/test_observability_as_code.py). With the
  webhook Jobs gone the operator's TLS Secret is never created, so operator TLS is off as well.
* etcd, controller-manager, scheduler and kube-proxy scrapes (and their default rules) - not
  reachable on managed control planes; the alerts would fire forever. CoreDNS too: it lives in
  kube-system, where Prometheus' egress reaches DNS (53) only, so its target would always be down.

Alertmanager: its configuration (receivers, routes by severity, inhibitions, the Watchdog heartbeat)
comes from the stack settings through alerting.py and is rendered by the chart into the Secret the
operator reads; the receivers' credentials are files from an ESO Secret mounted into the pods.

Selectors: ServiceMonitors, PodMonitors, Probes, ScrapeConfigs and PrometheusRules are picked up
from every namespace (``*SelectorNilUsesHelmValues: false``), which is how kit workloads in later
phases are scraped. Metrics pushed by the collector arrive at Prometheus' OTLP receiver.

Values keys: lock file comments on ``kube-prometheus-stack`` (image keys) and
winthebest/shopflow deploy/platform/kube-prometheus-stack/base/values.yaml at 4a2e8281
(chart 91.x: enableOTLPReceiver, otlp, *SelectorNilUsesHelmValues, admissionWebhooks, tls).
"""
from __future__ import annotations

from typing import Any

from components.core.observability import alerting, topology as t
from components.kit.security import RETAIN_CLAIMS, container_security_context, pod_security_context, resource_requirements
from components.core.observability.images import registry_repository_tag_full_sha, registry_repository_tag_sha
from components.kit import KitContext
from components.kit.labels import waiver_annotations
from components.kit.network import PROMETHEUS_PODS
from components.settings import AlertmanagerSettings, PrometheusSettings, Resources

PROMETHEUS_UID = 65534
OPERATOR_UID = 65534
KUBE_STATE_METRICS_UID = 65534
ALERTMANAGER_STORAGE = "1Gi"
ALERTMANAGER_RESOURCES = Resources(cpu_request="10m", memory_request="32Mi", cpu_limit="200m", memory_limit="128Mi")
CONFIG_RELOADER_RESOURCES = Resources(cpu_request="10m", memory_request="32Mi", cpu_limit="100m", memory_limit="64Mi")
OPERATOR_RESOURCES = Resources(cpu_request="20m", memory_request="64Mi", cpu_limit="500m", memory_limit="256Mi")
KUBE_STATE_METRICS_RESOURCES = Resources(cpu_request="20m", memory_request="64Mi", cpu_limit="500m", memory_limit="256Mi")
UNREACHABLE_CONTROL_PLANE = ("kubeEtcd", "kubeControllerManager", "kubeScheduler", "kubeProxy", "coreDns")


def _claim(storage_class: str, size: str) -> dict[str, Any]:
    return {
        "volumeClaimTemplate": {
            "spec": {"storageClassName": storage_class, "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
        }
    }


def operator_generated(main: str, uid: int) -> dict[str, Any]:
    """Hardening for the containers the Prometheus operator generates, stated in the resource.

    The operator merges ``containers`` and ``initContainers`` into its generated pod by name. It
    applies a restrictive securityContext of its own, but the gate judges what the resource says,
    so the main container, the config reloader and its init container are hardened here
    explicitly, and the reloaders get their requests and limits.
    """
    hardened = container_security_context(uid=uid)
    reloader = {"securityContext": hardened, "resources": resource_requirements(CONFIG_RELOADER_RESOURCES)}
    return {
        "containers": [{"name": main, "securityContext": hardened}, {"name": "config-reloader", **reloader}],
        "initContainers": [{"name": "init-config-reloader", **reloader}],
    }


def _mesh_enrolment(ctx: KitContext) -> dict[str, Any]:
    """With the mesh on, the Prometheus pods alone join it (ambient, pod label), so they can scrape in-mesh
    pods under STRICT mTLS (components/mesh/istio/scraper.py). ``podMetadata`` (values.yaml: "Labels and
    Annotations gets propagated to the prometheus pods"; templates/prometheus/prometheus.yaml copies it to the
    CR; the operator copies its labels onto the pods: prometheus-operator v0.93.0 ``BuildPodMetadata``)."""
    if not ctx.mesh.enrols(ctx.telemetry.scraper_namespace, PROMETHEUS_PODS):
        return {}
    return {"podMetadata": {"labels": {"istio.io/dataplane-mode": "ambient"}}}


def values(settings: PrometheusSettings, ctx: KitContext, alerts: AlertmanagerSettings, vault_configured: bool) -> dict[str, Any]:
    """``alerts``: where Alertmanager notifies (alerting.py); its receivers are wired once
    ``vault_configured`` (Vault delivers their credentials)."""
    image = ctx.catalog.image
    credentials = [alerting.CREDENTIALS_SECRET] if alerting.delivers(alerts, vault_configured) and alerting.credential_keys(alerts) else []
    anti_affinity = "hard" if ctx.high_availability else "soft"
    selectors = {
        f"{kind}SelectorNilUsesHelmValues": False
        for kind in ("serviceMonitor", "podMonitor", "probe", "rule", "scrapeConfig")
    }
    return {
        "fullnameOverride": t.KPS_FULLNAME,
        "crds": {"enabled": True},
        "grafana": {"enabled": False},
        "nodeExporter": {"enabled": False},
        "kubeStateMetrics": {"enabled": True},
        **{component: {"enabled": False} for component in UNREACHABLE_CONTROL_PLANE},
        "defaultRules": {
            "create": True,
            "rules": {
                "etcd": False,
                "kubeControllerManager": False,
                "kubeSchedulerAlerting": False,
                "kubeSchedulerRecording": False,
                "kubeProxy": False,
                "node": False,
                "nodeExporterAlerting": False,
                "nodeExporterRecording": False,
                "windows": False,
            },
        },
        "prometheusOperator": {
            "image": registry_repository_tag_sha(image("prometheus-operator")),
            "prometheusConfigReloader": {
                "image": registry_repository_tag_sha(image("prometheus-config-reloader")),
                "resources": resource_requirements(CONFIG_RELOADER_RESOURCES),
            },
            "admissionWebhooks": {"enabled": False},
            "tls": {"enabled": False},
            "resources": resource_requirements(OPERATOR_RESOURCES),
            "securityContext": pod_security_context(OPERATOR_UID),
            "containerSecurityContext": container_security_context(uid=OPERATOR_UID),
        },
        "prometheus": {
            "prometheusSpec": {
                "image": registry_repository_tag_sha(image("prometheus")),
                "replicas": settings.replicas,
                "retention": settings.retention,
                "storageSpec": _claim(ctx.storage_class, settings.storage),
                "persistentVolumeClaimRetentionPolicy": RETAIN_CLAIMS,
                "resources": resource_requirements(settings.resources),
                "podAntiAffinity": anti_affinity,
                "securityContext": pod_security_context(PROMETHEUS_UID),
                "enableOTLPReceiver": True,
                "otlp": {"translationStrategy": "UnderscoreEscapingWithSuffixes"},
                "tsdb": {"outOfOrderTimeWindow": "30m"},
                **operator_generated("prometheus", PROMETHEUS_UID),
                **selectors,
                **_mesh_enrolment(ctx),
            }
        },
        "alertmanager": {
            # Routing only, rendered by the chart into the Secret the operator reads; credentials are files
            # from the ESO Secret mounted below (alerting.py), so the Secret carries a reviewed waiver.
            "config": alerting.config(alerts, vault_configured),
            "secret": {"annotations": waiver_annotations({"no-plaintext-secrets": alerting.CONFIG_WAIVER})},
            "alertmanagerSpec": {
                "image": registry_repository_tag_sha(image("alertmanager")),
                "replicas": settings.alertmanager_replicas,
                "storage": _claim(ctx.storage_class, ALERTMANAGER_STORAGE),
                "persistentVolumeClaimRetentionPolicy": RETAIN_CLAIMS,
                "resources": resource_requirements(ALERTMANAGER_RESOURCES),
                "podAntiAffinity": anti_affinity,
                "securityContext": pod_security_context(PROMETHEUS_UID),
                "useExistingSecret": False,
                "secrets": credentials,
                **operator_generated("alertmanager", PROMETHEUS_UID),
            }
        },
        "kube-state-metrics": {
            "image": registry_repository_tag_full_sha(image("kube-state-metrics")),
            "resources": resource_requirements(KUBE_STATE_METRICS_RESOURCES),
            "securityContext": pod_security_context(KUBE_STATE_METRICS_UID),
            "containerSecurityContext": container_security_context(uid=KUBE_STATE_METRICS_UID),
            # Listing Secrets returns their data: kube-state-metrics would read every credential of the
            # cluster for kube_secret_* metrics no dashboard or alert uses (tests/core/test_secret_isolation.py).
            "collectorsExclude": ["secrets"],
        },
    }
