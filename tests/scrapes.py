"""What Prometheus will scrape, read from a rendered plan: every monitor's targets with their job and namespace.

The Prometheus operator turns each ServiceMonitor and PodMonitor into a scrape job whose targets
are the selected Services' endpoints or the selected pods' ports, and labels their series
(prometheus-operator v0.93.0 ``pkg/prometheus/promcfg.go``):

* ServiceMonitor: ``job`` is the Service's name, or the value of its ``jobLabel`` label when the
  Service has one; ``namespace`` the Service's; an endpoint's ``port`` names a Service port, a
  ``targetPort`` a container port of the pods behind it;
* PodMonitor: ``job`` is ``<namespace>/<name>`` of the monitor, or the pod's ``jobLabel`` label;
  ``namespace`` the pod's; ``port`` names a container port.

Pods are the plan's pod templates, plus the pods operators make from the plan's custom resources,
derived from each operator's source at its pinned version (:func:`operator_pods`); Services are the
plan's, plus the kubelet Service the Prometheus operator maintains (:func:`operator_services`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from tests.helpers import objects, pod_specs


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: dict
    ports: dict  # container port name -> number
    made_by: str


@dataclass(frozen=True)
class Service:
    namespace: str
    name: str
    labels: dict
    selector: dict
    ports: list  # [{"name", "port", "targetPort"}]
    made_by: str = "plan"


@dataclass(frozen=True)
class Target:
    monitor: tuple[str, str, str]  # kind, namespace, name
    job: str
    namespace: str
    path: str
    honor_labels: bool
    via: str = field(compare=False)


def _ports(containers: list[dict]) -> dict:
    return {p["name"]: p["containerPort"] for c in containers for p in c.get("ports", []) if p.get("name")}


def operator_pods(plan: dict) -> list[Pod]:
    """Pods operators create from the plan's custom resources, with the labels and named ports they give them."""
    pods = []
    for cluster in objects(plan, "Cluster"):
        if cluster["apiVersion"].startswith("postgresql.cnpg.io/"):
            # cloudnative-pg v1.30.0 pkg/specs/pods.go: labels cnpg.io/cluster and cnpg.io/podRole=instance,
            # container ports postgresql 5432, metrics 9187 (url.PostgresMetricsPort), status 8000
            pods.append(Pod(cluster["metadata"]["namespace"], {"cnpg.io/cluster": cluster["metadata"]["name"], "cnpg.io/podRole": "instance"},
                            {"postgresql": 5432, "metrics": 9187, "status": 8000}, f"CloudNativePG Cluster {cluster['metadata']['name']}"))
    for kafka in objects(plan, "Kafka"):
        name, ns = kafka["metadata"]["name"], kafka["metadata"]["namespace"]
        base = {"strimzi.io/cluster": name, "strimzi.io/kind": "Kafka"}
        # Strimzi 1.2.0: api/.../ResourceLabels.java (strimzi.io/*), KafkaPool.java (strimzi.io/name <cluster>-kafka on every
        # node pool's pods), KafkaCluster.java (tcp-prometheus 9404 when spec.kafka.metricsConfig is set)
        metrics = {"tcp-prometheus": 9404} if kafka["spec"]["kafka"].get("metricsConfig") else {}
        for pool in objects(plan, "KafkaNodePool"):
            if pool["metadata"]["namespace"] == ns and pool["metadata"].get("labels", {}).get("strimzi.io/cluster") == name:
                pods.append(Pod(ns, {**base, "strimzi.io/name": f"{name}-kafka", "strimzi.io/pool-name": pool["metadata"]["name"]},
                                metrics, f"Strimzi KafkaNodePool {pool['metadata']['name']}"))
        if kafka["spec"].get("kafkaExporter") is not None:
            # KafkaExporterResources.java (<cluster>-kafka-exporter), KafkaExporter.java (tcp-prometheus 9404)
            pods.append(Pod(ns, {**base, "strimzi.io/name": f"{name}-kafka-exporter"}, {"tcp-prometheus": 9404},
                            f"Strimzi Kafka Exporter of {name}"))
    for chi in objects(plan, "ClickHouseInstallation"):
        # clickhouse-operator release-0.25.6 pkg/model/chi/tags/labeler/list.go: clickhouse.altinity.com/chi=<name>;
        # the pod template's own labels and container ports are the CHI's
        for template in chi["spec"].get("templates", {}).get("podTemplates", []):
            labels = {**template.get("metadata", {}).get("labels", {}), "clickhouse.altinity.com/chi": chi["metadata"]["name"]}
            pods.append(Pod(chi["metadata"]["namespace"], labels, _ports(template["spec"]["containers"]),
                            f"ClickHouseInstallation {chi['metadata']['name']}"))
    for prometheus in objects(plan, "Prometheus"):
        name = prometheus["metadata"]["name"]
        # prometheus-operator v0.93.0 pkg/prometheus/server/operator.go makeSelectorLabels; statefulset.go adds
        # spec.podMetadata.labels; ports web 9090 and the config reloader's reloader-web 8080
        labels = {**(prometheus["spec"].get("podMetadata") or {}).get("labels", {}),
                  "app.kubernetes.io/managed-by": "prometheus-operator", "app.kubernetes.io/name": "prometheus",
                  "app.kubernetes.io/instance": name, "operator.prometheus.io/name": name, "prometheus": name}
        pods.append(Pod(prometheus["metadata"]["namespace"], labels, {"web": 9090, "reloader-web": 8080}, f"Prometheus {name}"))
    for alertmanager in objects(plan, "Alertmanager"):
        name = alertmanager["metadata"]["name"]
        # pkg/alertmanager/operator.go makeSelectorLabels, statefulset.go (podMetadata labels; web 9093, mesh 9094, reloader-web)
        labels = {**(alertmanager["spec"].get("podMetadata") or {}).get("labels", {}),
                  "app.kubernetes.io/managed-by": "prometheus-operator", "app.kubernetes.io/name": "alertmanager",
                  "app.kubernetes.io/instance": name, "alertmanager": name}
        pods.append(Pod(alertmanager["metadata"]["namespace"], labels,
                        {alertmanager["spec"].get("portName", "web"): 9093, "mesh-tcp": 9094, "reloader-web": 8080},
                        f"Alertmanager {name}"))
    return pods


def operator_services(plan: dict) -> list[Service]:
    """The kubelet Service the Prometheus operator keeps when started with ``--kubelet-service=<ns>/<name>``
    (prometheus-operator v0.93.0 pkg/kubelet/controller.go: labels k8s-app and app.kubernetes.io/name kubelet,
    ports https-metrics 10250, http-metrics 10255, cadvisor 4194; its endpoints are the nodes)."""
    found = []
    for deployment in objects(plan, "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            for arg in container.get("args", []):
                if arg.startswith("--kubelet-service="):
                    ns, name = arg.split("=", 1)[1].split("/")
                    found.append(Service(ns, name, {"k8s-app": "kubelet", "app.kubernetes.io/name": "kubelet",
                                                    "app.kubernetes.io/managed-by": "prometheus-operator"}, {},
                                         [{"name": "https-metrics", "port": 10250, "targetPort": 10250},
                                          {"name": "http-metrics", "port": 10255, "targetPort": 10255},
                                          {"name": "cadvisor", "port": 4194, "targetPort": 4194}],
                                         made_by=f"the Prometheus operator ({deployment['metadata']['name']} {arg})"))
    return found


def plan_pods(plan: dict) -> list[Pod]:
    pods = [Pod(o["metadata"]["namespace"], o["spec"]["template"]["metadata"].get("labels", {}), _ports(spec["containers"]),
                f"{o['kind']} {o['metadata']['name']}")
            for o, spec in pod_specs(plan) if o["kind"] not in ("CronJob", "Job", "Pod")]
    return pods + operator_pods(plan)


def plan_services(plan: dict) -> list[Service]:
    services = [Service(s["metadata"]["namespace"], s["metadata"]["name"], s["metadata"].get("labels", {}),
                        s["spec"].get("selector", {}), s["spec"].get("ports", []))
                for s in objects(plan, "Service")]
    return services + operator_services(plan)


def selects(selector: dict, labels: dict) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions) against a set of labels."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        key, values = expression["key"], expression.get("values", [])
        holds = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[expression["operator"]]
        if not holds:
            return False
    return True


def _in_namespaces(monitor: dict, namespace: str) -> bool:
    selector = monitor["spec"].get("namespaceSelector") or {}
    if selector.get("any"):
        return True
    return namespace in selector.get("matchNames", [monitor["metadata"]["namespace"]])


def _endpoints(monitor: dict) -> list[dict]:
    return monitor["spec"].get("endpoints" if monitor["kind"] == "ServiceMonitor" else "podMetricsEndpoints", [])


def monitor_targets(monitor: dict, pods: list[Pod], services: list[Service]) -> list[Target]:
    """The targets Prometheus scrapes for one monitor, labelled as the operator labels them."""
    meta, spec = monitor["metadata"], monitor["spec"]
    key = (monitor["kind"], meta["namespace"], meta["name"])
    job_label = spec.get("jobLabel")
    found = []
    if monitor["kind"] == "PodMonitor":
        for pod in pods:
            if not (_in_namespaces(monitor, pod.namespace) and selects(spec.get("selector", {}), pod.labels)):
                continue
            for ep in _endpoints(monitor):
                if ep.get("port") in pod.ports or ep.get("portNumber") in pod.ports.values():
                    job = pod.labels.get(job_label) if job_label else None
                    found.append(Target(key, job or f"{meta['namespace']}/{meta['name']}", pod.namespace,
                                        ep.get("path", "/metrics"), bool(ep.get("honorLabels")), pod.made_by))
        return found
    for service in services:
        if not (_in_namespaces(monitor, service.namespace) and selects(spec.get("selector", {}), service.labels)):
            continue
        behind = [p for p in pods if p.namespace == service.namespace and service.selector and service.selector.items() <= p.labels.items()]
        if service.made_by == "plan" and not behind:
            continue  # a Service without pods has no endpoints, so no targets
        for ep in _endpoints(monitor):
            if "port" in ep:
                serves = any(p.get("name") == ep["port"] for p in service.ports)
            else:  # targetPort: the pods' container port of that name or number
                wanted = ep.get("targetPort")
                serves = any(wanted in pod.ports or wanted in pod.ports.values() for pod in behind)
            if serves:
                job = service.labels.get(job_label) if job_label else None
                found.append(Target(key, job or service.name, service.namespace, ep.get("path", "/metrics"),
                                    bool(ep.get("honorLabels")), f"Service {service.name} ({service.made_by})"))
    return found


def all_targets(plan: dict) -> dict[tuple[str, str, str], list[Target]]:
    """Every monitor of the plan (ours and the charts') with its targets, by (kind, namespace, name)."""
    pods, services = plan_pods(plan), plan_services(plan)
    return {(m["kind"], m["metadata"]["namespace"], m["metadata"]["name"]): monitor_targets(m, pods, services)
            for m in objects(plan) if m["kind"] in ("ServiceMonitor", "PodMonitor")}


def matches(op: str, pattern: str, value: str) -> bool:
    """A PromQL label matcher (``=``, ``!=``, ``=~``, ``!~``; regexes anchored as Prometheus anchors them)."""
    if op == "=":
        return value == pattern
    if op == "!=":
        return value != pattern
    hit = re.fullmatch(pattern, value) is not None
    return hit if op == "=~" else not hit
