"""Which scrape job produces each metric the alerts and dashboards query, and where that was read.

An alert on a metric nothing scrapes never fires, and a panel on one stays empty. Every metric a
rule or a Prometheus panel selects must belong to one family below; tests/core/test_alerts_can_fire.py
parses every rendered rule and dashboard, maps each metric to its producer and checks, in the
rendered plans of both stacks, that the producer's monitor exists, selects pods or Services the plan
runs on the endpoint that serves the metric, keeps the labels the exporter sets itself
(``honorLabels``) and produces the ``job`` and ``namespace`` the query matches. The program does not
read this module; docs/observability-metrics.md lists every metric with where its name was read.

``up`` is produced by every scrape target (Prometheus, "Jobs and instances"), so its matchers are
checked against the targets of every monitor in the plan; a metric a PrometheusRule of the plan
records is produced by that rule, whose own expression is checked in turn.
"""
from __future__ import annotations

from dataclasses import dataclass

from components.core import certificates
from components.core.data import kafka, postgres
from components.core.secrets import external_secrets, vault_server

EVERY_TARGET = "up"


@dataclass(frozen=True)
class Monitor:
    """A ServiceMonitor or PodMonitor by kind, Core namespace purpose and name."""

    kind: str
    namespace: str
    name: str


def family_covers(family: str, name: str) -> bool:
    """A family ending in ``_`` is a prefix (``kafka_server_`` covers ``kafka_server_x``); any other is one exact name."""
    return name.startswith(family) if family.endswith("_") else name == family


@dataclass(frozen=True)
class Producer:
    """A metric family (an exact name, or a prefix ending in ``_``) and the scrape that produces it.

    ``path``: the endpoint path that serves the family. ``own_labels``: labels the exporter sets on
    the series itself that Prometheus would otherwise overwrite with the target's (``namespace``,
    ``pod``, ``container``): the endpoint must honour them, and matchers on them are about the object
    the series describes, not about the target. ``ksm_resource``: the kube-state-metrics resource
    (``--resources``) that must be collected.
    """

    family: str
    monitor: Monitor
    source: str
    path: str = "/metrics"
    own_labels: tuple[str, ...] = ()
    ksm_resource: str | None = None

    def covers(self, name: str) -> bool:
        return family_covers(self.family, name)


VAULT = Monitor("PodMonitor", "secrets", vault_server.MONITOR)
EXTERNAL_SECRETS = Monitor("ServiceMonitor", "operators", external_secrets.METRICS_SERVICE)
POSTGRES = Monitor("PodMonitor", "data", postgres.CLUSTER)
KAFKA_EXPORTER = Monitor("PodMonitor", "data", kafka.EXPORTER_MONITOR)
CERT_MANAGER = Monitor("ServiceMonitor", "operators", certificates.RELEASE)
# kube-prometheus-stack 88.5.3 renders these (release kube-prometheus-stack, fullnameOverride kps)
KUBE_STATE_METRICS = Monitor("ServiceMonitor", "observability", "kube-prometheus-stack-kube-state-metrics")
KUBELET = Monitor("ServiceMonitor", "observability", "kps-kubelet")
PROMETHEUS = Monitor("ServiceMonitor", "observability", "kps-prometheus")
COLLECTOR = Monitor("ServiceMonitor", "observability", "opentelemetry-collector")
# Mesh, signatures: the policy-controller chart's own ServiceMonitor (templates/webhook/service_monitor_webhook.yaml,
# <fullname>-webhook-monitor); ``mesh.admission`` names a namespace of another phase as <phase>.<purpose>.
SIGNATURE_WEBHOOK = Monitor("ServiceMonitor", "mesh.admission", "policy-controller-webhook-monitor")
# Mesh, admission: the PodMonitor components/mesh/admission makes over Gatekeeper's pods (MONITOR "gatekeeper").
GATEKEEPER = Monitor("PodMonitor", "mesh.admission", "gatekeeper")

KSM = "kube-state-metrics v2.20.0 (the pinned image)"
KPS_RULES = "charts/kube-prometheus-stack/templates/prometheus/rules-1.14"

PRODUCERS: tuple[Producer, ...] = (
    Producer("vault_", VAULT, path="/v1/sys/metrics",
             source="Vault telemetry at /v1/sys/metrics?format=prometheus (developer.hashicorp.com/vault/docs/internals/"
                    "telemetry/metrics/core-system: vault.core.unsealed); OpenBao keeps the vault. prefix"),
    Producer("externalsecret_", EXTERNAL_SECRETS, own_labels=("namespace",),
             source="external-secrets v2.9.0 pkg/controllers/externalsecret/esmetrics/esmetrics.go (subsystem externalsecret, "
                    "status_condition) with the labels of pkg/controllers/metrics/labels.go (name, namespace, condition, status)"),
    Producer("cnpg_", POSTGRES,
             source="cloudnative-pg v1.30.0 docs/src/monitoring.md (cnpg_collector_*) and config/manager/default-monitoring.yaml "
                    "(pg_stat_archiver), served on each instance's metrics port (pkg/specs/pods.go)"),
    Producer("barman_cloud_cloudnative_pg_io_", POSTGRES,
             source="plugin-barman-cloud v0.13.0 internal/cnpgi/instance/metrics.go, exposed through the instance's metrics endpoint"),
    Producer("kafka_consumergroup_", KAFKA_EXPORTER,
             source="danielqsj/kafka_exporter README, Consumer Groups table; Strimzi 1.2.0 runs it for spec.kafkaExporter "
                    "(cluster-operator/.../model/KafkaExporter.java, port tcp-prometheus)"),
    Producer("kafka_topic_", KAFKA_EXPORTER, source="danielqsj/kafka_exporter README, Topics table"),
    Producer("certmanager_", CERT_MANAGER, own_labels=("namespace",),
             source="cert-manager v1.21.1 internal/collectors/certificate_collector.go (labels name, namespace, issuer_*, condition)"),
    Producer("kube_pod_", KUBE_STATE_METRICS, own_labels=("namespace", "pod", "container"), ksm_resource="pods",
             source=f"{KSM} docs/metrics/workload/pod-metrics.md"),
    Producer("kube_deployment_", KUBE_STATE_METRICS, own_labels=("namespace",), ksm_resource="deployments",
             source=f"{KSM} docs/metrics/workload/deployment-metrics.md"),
    Producer("kube_cronjob_", KUBE_STATE_METRICS, own_labels=("namespace",), ksm_resource="cronjobs",
             source=f"{KSM} docs/metrics/workload/cronjob-metrics.md"),
    Producer("kubelet_volume_stats_", KUBELET, own_labels=("namespace",),
             source=f"the kubelet's /metrics; {KPS_RULES}/kubernetes-storage.yaml reads it from the kubelet job with "
                    "metrics_path /metrics and its namespace and persistentvolumeclaim labels"),
    Producer("container_", KUBELET, path="/metrics/cadvisor", own_labels=("namespace", "pod", "container"),
             source=f"the kubelet's cAdvisor endpoint; {KPS_RULES}/k8s.rules.container_cpu_usage_seconds_total.yaml and "
                    "k8s.rules.container_memory_working_set_bytes.yaml read it with metrics_path /metrics/cadvisor"),
    Producer("prometheus_", PROMETHEUS,
             source=f"Prometheus' own /metrics; {KPS_RULES}/prometheus.yaml (PrometheusRuleFailures) reads "
                    "prometheus_rule_evaluation_failures_total from the Prometheus job"),
    Producer("policy_controller_", SIGNATURE_WEBHOOK,
             source="knative.dev/pkg webhook/stats_reporter.go (request_count, request_latencies) at the commit policy-controller "
                    "v0.13.1's go.mod requires (v0.0.0-20230612155445-74c4be5e935e), prefixed with the component policy-controller "
                    "(cmd/webhook/main.go sharedmain.MainWithContext; metrics/exporter.go turns - into _)"),
    Producer("gatekeeper_", GATEKEEPER,
             source="gatekeeper v3.23.0 pkg/webhook/stats_reporter.go (validation_request_count with admission_status, "
                    "validation_request_duration_seconds), exported with the gatekeeper_ prefix on the metrics port 8888"),
    Producer("otelcol_", COLLECTOR,
             source="opentelemetry.io docs/collector/internal-telemetry.md (basic-level metrics), served on the collector's "
                    "metrics port 8888 (service.telemetry.metrics)"),
)


@dataclass(frozen=True)
class Pushed:
    """A metric family that no scrape produces: kit workloads with ``metrics="otlp"`` push it over OTLP to the
    collector, which forwards it to Prometheus' OTLP receiver. Its series carry ``job`` =
    ``<service.namespace>/<service.name>`` (the kit: ``<namespace>/<OTEL_SERVICE_NAME>``) and no ``namespace``
    label (docs/observability-metrics.md, "Agents phase"). A plan without such a workload (the stacks keep the
    services off until the release pipeline pins them) produces none: the panels stay empty, the alerts quiet."""

    family: str
    source: str

    def covers(self, name: str) -> bool:
        return family_covers(self.family, name)


PUSHED: tuple[Pushed, ...] = (
    Pushed("http_server_request_duration_seconds_",
           source="apps/common soma_service.middleware records http.server.request.duration (unit s) per request; "
                  "Prometheus' OTLP translation UnderscoreEscapingWithSuffixes (prometheus/otlptranslator v1.0.0 "
                  "metric_namer.go) appends _seconds, and _bucket/_sum/_count for an explicit-bucket histogram "
                  "(prometheus v3.14.0 storage/remote/otlptranslator/prometheusremotewrite/helper.go)"),
)


def pushed_of(metric: str) -> Pushed | None:
    found = [p for p in PUSHED if p.covers(metric)]
    return found[0] if found else None


def producer_of(metric: str) -> Producer | None:
    """The family that covers ``metric`` (the longest one, should two overlap)."""
    found = [p for p in PRODUCERS if p.covers(metric)]
    return max(found, key=lambda p: len(p.family)) if found else None


def monitor_namespace(monitor: Monitor, settings) -> str:
    """The namespace a monitor lives in: a Core purpose (``data``), or ``<phase>.<purpose>`` of a later phase."""
    if "." in monitor.namespace:
        return settings.namespace_named_by(monitor.namespace)
    return getattr(settings.core.namespaces, monitor.namespace).name


__all__ = ["EVERY_TARGET", "Monitor", "PRODUCERS", "PUSHED", "Producer", "Pushed", "monitor_namespace", "producer_of", "pushed_of"]
