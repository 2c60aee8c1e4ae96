"""Every Core component the alerts watch is scraped, reachable, and applied after the monitoring CRDs.

Read from the rendered plans of both stacks (charts expanded into the objects they deploy):

* each component named in the core-components / audit-pipeline alerts has a monitor: a
  ServiceMonitor or PodMonitor object of ours whose selector picks the component's pods or Service
  as rendered, or a ServiceMonitor its chart renders;
* the job label that monitor produces (Service name, or ``<namespace>/<podmonitor>``) is the one
  the alert matches, in the namespace the alert names;
* every monitor's port is admitted by a NetworkPolicy from Prometheus, and every monitor a chart
  renders targets pods Prometheus may reach (its egress and their ingress), or its
  kube-prometheus-stack TargetDown alert fires forever;
* every monitor, PrometheusRule and chart other than kube-prometheus-stack waits for
  kube-prometheus-stack (directly or through a parent), which installs their CRDs; the monitors
  and rules kube-prometheus-stack renders itself wait for its CRD objects.

Not shown offline: that the targets answer (no cluster); docs/runbooks/observability.md says how
to check on a cluster.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass

import pytest
import yaml

from components import settings as platform_settings
from components.core.data import clickhouse, kafka, postgres, qdrant
from components.core.secrets import external_secrets, vault_server
from tests.helpers import objects, pod_specs, rule_values
from tests.scrapes import selects
from tools.render import stack_config

STACKS = ("dev", "prod")
CHART = "kubernetes:helm.sh/v4:Chart"
KPS = "kube-prometheus-stack"
MONITOR_KINDS = ("ServiceMonitor", "PodMonitor")
PROMETHEUS_POD = {"app.kubernetes.io/name": "prometheus"}


def core(stack: str):
    return platform_settings.parse(stack_config(stack), stack).core


@dataclass(frozen=True)
class Scraped:
    """A component the alerts watch, the monitor that scrapes it, and the port it is scraped on.

    ``pods`` are the labels the component's pods carry as the plan renders them (the labels its
    NetworkPolicies and pod templates use); ``port`` is the container port number the named
    endpoint port resolves to, read from the upstream source named in the component module.
    """

    alert: str
    namespace: str  # "data", "secrets", "operators": the Core namespace purpose
    kind: str
    name: str
    pods: dict
    port: int


OWN_MONITORS = (
    Scraped("VaultDown", "secrets", "PodMonitor", vault_server.MONITOR, vault_server.POD_LABELS, vault_server.PORT),
    Scraped("PostgresInstanceDown", "data", "PodMonitor", postgres.CLUSTER, postgres.INSTANCE_LABELS, postgres.METRICS_PORT),
    Scraped("QdrantDown", "data", "PodMonitor", qdrant.NAME, qdrant.POD_LABELS, qdrant.HTTP_PORT),
    Scraped("KafkaDown", "data", "PodMonitor", "kafka-brokers", kafka.BROKER_LABELS, kafka.METRICS_PORT),
    Scraped("KafkaDown", "data", "PodMonitor", "kafka-exporter", kafka.EXPORTER_LABELS, kafka.METRICS_PORT),
    Scraped("AuditConsumerLagHigh", "data", "PodMonitor", "kafka-exporter", kafka.EXPORTER_LABELS, kafka.METRICS_PORT),
    Scraped("ClickHouseDown", "data", "PodMonitor", "clickhouse", clickhouse.CHI_LABELS, clickhouse.METRICS_PORT),
    Scraped("MinIODown", "data", "ServiceMonitor", "minio", {"app.kubernetes.io/name": "minio", "app.kubernetes.io/part-of": "somaagenthub"}, 9000),
)


def namespace_of(stack: str, purpose: str) -> str:
    return getattr(core(stack).namespaces, purpose).name


def monitors(plan: dict) -> list[dict]:
    return [o for o in objects(plan) if o["kind"] in MONITOR_KINDS]


def find_monitor(plan: dict, kind: str, namespace: str, name: str) -> dict | None:
    return next((m for m in monitors(plan) if (m["kind"], m["metadata"]["namespace"], m["metadata"]["name"]) == (kind, namespace, name)), None)


def endpoints(monitor: dict) -> list[dict]:
    return monitor["spec"]["endpoints" if monitor["kind"] == "ServiceMonitor" else "podMetricsEndpoints"]


def job_of(monitor: dict) -> str:
    """Prometheus' job label: the Service's name for a ServiceMonitor, ``<namespace>/<name>`` for a PodMonitor."""
    assert "jobLabel" not in monitor["spec"], "a jobLabel would change the job the alerts match"
    if monitor["kind"] == "PodMonitor":
        return f"{monitor['metadata']['namespace']}/{monitor['metadata']['name']}"
    return monitor["metadata"]["name"]  # kit ServiceMonitors are named after their Service


def admits_prometheus(plan: dict, stack: str, namespace: str, pods: dict, port: int) -> bool:
    """Some NetworkPolicy in ``namespace`` selects ``pods`` and lets Prometheus in on ``port``."""
    obs = namespace_of(stack, "observability")
    for policy in objects(plan, "NetworkPolicy"):
        spec = policy["spec"]
        if policy["metadata"]["namespace"] != namespace or "Ingress" not in spec["policyTypes"]:
            continue
        if not spec["podSelector"].get("matchLabels", {}).items() <= pods.items():
            continue
        for rule in spec.get("ingress", []):
            ports = {p["port"] for p in rule.get("ports", [])}
            for peer in rule.get("from", []):
                ns = peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
                if ns == obs and peer.get("podSelector", {}).get("matchLabels") == PROMETHEUS_POD and (not ports or port in ports):
                    return True
    return False


def rendered_monitors(plan: dict, chart: str) -> list[dict]:
    """The ServiceMonitors a chart (by catalog key) renders that select a Service of the same chart."""
    services = chart_children(plan, chart, "Service")
    return [m for m in chart_children(plan, chart, "ServiceMonitor")
            if any(s in services for s in selected_services(plan, m))]


def coverage_problems(plan: dict, stack: str) -> list[str]:
    """What keeps an alerted Core component from being scraped: no monitor, a selector that misses
    the component's pods, a port Prometheus may not reach, a chart monitor left off."""
    problems = []
    for item in OWN_MONITORS:
        ns = namespace_of(stack, item.namespace)
        monitor = find_monitor(plan, item.kind, ns, item.name)
        if monitor is None:
            problems.append(f"{item.alert}: no {item.kind} {ns}/{item.name}")
            continue
        if monitor["spec"]["namespaceSelector"] != {"matchNames": [ns]}:
            problems.append(f"{item.alert}: {item.name} looks outside {ns}")
        selected = monitor["spec"]["selector"]["matchLabels"]
        if not selected.items() <= item.pods.items():
            problems.append(f"{item.alert}: {item.name} selects {selected}, the pods carry {item.pods}")
        if not admits_prometheus(plan, stack, ns, item.pods, item.port):
            problems.append(f"{item.alert}: no NetworkPolicy lets Prometheus reach {item.name} on {item.port}")
    problems += chart_monitor_problems(plan, stack)
    return problems


def chart_monitor_problems(plan: dict, stack: str) -> list[str]:
    """Vault, External Secrets and the telemetry backends are scraped through the ServiceMonitors their
    charts render."""
    problems = []
    eso_jobs = {s["metadata"]["name"] for m in rendered_monitors(plan, "external-secrets") for s in selected_services(plan, m)}
    if external_secrets.METRICS_SERVICE not in eso_jobs:
        problems.append(f"ExternalSecretsDown: no ServiceMonitor of the external-secrets chart scrapes {external_secrets.METRICS_SERVICE}")
    controller = next(o for o in objects(plan, "Deployment") if o["metadata"]["name"] == external_secrets.RELEASE)
    pod_labels = controller["spec"]["template"]["metadata"]["labels"]
    if not admits_prometheus(plan, stack, namespace_of(stack, "operators"), pod_labels, external_secrets.METRICS_PORT):
        problems.append("ExternalSecretsDown: no NetworkPolicy lets Prometheus reach the External Secrets controller")
    for chart in ("opentelemetry-collector", "loki", "tempo", "grafana"):
        if not rendered_monitors(plan, chart):
            problems.append(f"{chart}: the chart renders no ServiceMonitor")
    return problems


@pytest.mark.parametrize("stack", STACKS)
def test_every_alerted_core_component_is_scraped(plans, stack):
    assert coverage_problems(plans[stack], stack) == []


def test_the_coverage_check_notices_a_missing_monitor(plans):
    broken = copy.deepcopy(plans["prod"])
    broken["resources"] = [
        r for r in broken["resources"]
        if not (r["inputs"].get("kind") == "PodMonitor" and r["inputs"]["metadata"]["name"] == "qdrant")
    ]
    assert coverage_problems(broken, "prod") == ["QdrantDown: no PodMonitor soma-data/qdrant"]


def test_the_coverage_check_notices_a_selector_that_misses_the_pods_and_a_closed_port(plans):
    broken = copy.deepcopy(plans["prod"])
    for r in broken["resources"]:
        if r["inputs"].get("kind") == "PodMonitor" and r["inputs"]["metadata"]["name"] == "clickhouse":
            r["inputs"]["spec"]["selector"]["matchLabels"] = {"app.kubernetes.io/name": "clickhouse-server"}
        if r["inputs"].get("kind") == "NetworkPolicy" and r["inputs"]["metadata"]["name"] == "postgres-metrics-scrape":
            r["inputs"]["spec"]["ingress"][0]["ports"] = [{"protocol": "TCP", "port": 5432}]
    problems = coverage_problems(broken, "prod")
    assert any(p.startswith("ClickHouseDown: clickhouse selects") for p in problems), problems
    assert "PostgresInstanceDown: no NetworkPolicy lets Prometheus reach app-db on 9187" in problems


# --- the rendered selectors and ports are the components' own ------------------------------------

@pytest.mark.parametrize("stack", STACKS)
def test_clickhouse_pods_declare_the_port_the_pod_monitor_scrapes(plans, stack):
    (chi,) = objects(plans[stack], "ClickHouseInstallation")
    (template,) = chi["spec"]["templates"]["podTemplates"]
    (container,) = template["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": clickhouse.METRICS_PORT}
    assert f"<port>{clickhouse.METRICS_PORT}</port>" in chi["spec"]["configuration"]["files"]["config.d/prometheus.xml"]
    monitor = find_monitor(plans[stack], "PodMonitor", namespace_of(stack, "data"), "clickhouse")
    assert [e["port"] for e in endpoints(monitor)] == ["metrics"]


@pytest.mark.parametrize("stack", STACKS)
def test_minio_service_monitor_selects_the_kit_service_and_its_metrics_port(plans, stack):
    ns = namespace_of(stack, "data")
    monitor = find_monitor(plans[stack], "ServiceMonitor", ns, "minio")
    (service,) = [s for s in objects(plans[stack], "Service") if s["metadata"]["namespace"] == ns and s["metadata"]["name"] == "minio"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert "metrics" in {p["name"] for p in service["spec"]["ports"]}


@pytest.mark.parametrize("stack", STACKS)
def test_kafka_exports_jmx_metrics_and_runs_the_kafka_exporter(plans, stack):
    ns = namespace_of(stack, "data")
    (cluster,) = objects(plans[stack], "Kafka")
    ref = cluster["spec"]["kafka"]["metricsConfig"]
    assert ref["type"] == "jmxPrometheusExporter"
    key = ref["valueFrom"]["configMapKeyRef"]
    (config_map,) = [c for c in objects(plans[stack], "ConfigMap") if c["metadata"]["name"] == key["name"] and c["metadata"]["namespace"] == ns]
    rules = yaml.safe_load(config_map["data"][key["key"]])
    assert rules["lowercaseOutputName"] is True and rules["rules"]
    exporter = cluster["spec"]["kafkaExporter"]
    assert exporter["image"] == cluster["spec"]["kafka"]["image"], "the exporter runs the pinned Kafka image"
    assert re.fullmatch(exporter["groupRegex"], kafka.CLICKHOUSE_GROUP) and re.fullmatch(exporter["topicRegex"], kafka.AUDIT_TOPIC)


@pytest.mark.parametrize("stack", STACKS)
def test_qdrant_is_scraped_with_its_api_key_from_the_eso_secret(plans, stack):
    monitor = find_monitor(plans[stack], "PodMonitor", namespace_of(stack, "data"), "qdrant")
    (endpoint,) = endpoints(monitor)
    assert endpoint["authorization"] == {"type": "Bearer", "credentials": {"name": "qdrant-api-key", "key": "api-key"}}
    secrets = [s["spec"]["target"]["name"] for s in objects(plans[stack], "ExternalSecret") if s["metadata"]["namespace"] == namespace_of(stack, "data")]
    assert "qdrant-api-key" in secrets


def chart_children(plan: dict, chart: str, kind: str) -> list[dict]:
    """The objects of ``kind`` a chart (by catalog key) renders; of a chart installed twice (the collector:
    gateway and node log agent), the release named after it."""
    releases = [r for r in plan["resources"] if r["type"] == CHART and r["inputs"]["chart"] == f"./charts/{chart}"]
    (chart_urn,) = [r["urn"] for r in releases if len(releases) == 1 or r["name"] == chart]
    return [r["inputs"] for r in plan["resources"] if r["parent"] == chart_urn and r["inputs"].get("kind") == kind]


def selected_services(plan: dict, monitor: dict) -> list[dict]:
    namespaces = monitor["spec"].get("namespaceSelector", {}).get("matchNames", [monitor["metadata"]["namespace"]])
    return [s for s in objects(plan, "Service")
            if s["metadata"]["namespace"] in namespaces and selects(monitor["spec"]["selector"], s["metadata"].get("labels", {}))]


@pytest.mark.parametrize("stack", STACKS)
def test_every_vault_pod_is_scraped_over_tls_with_its_ca_in_raft_mode(plans, stack):
    """Every server pod, not only the active one (the chart's ServiceMonitor would see that one
    alone), so a sealed standby shows as a target that does not answer."""
    plan = plans[stack]
    assert chart_children(plan, "vault", "ServiceMonitor") == [], "the chart's active-only ServiceMonitor is off"
    (monitor,) = [m for m in objects(plan, "PodMonitor") if m["metadata"]["name"] == vault_server.MONITOR]
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    (statefulset,) = [s for s in chart_children(plan, "vault", "StatefulSet")]
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert selects(monitor["spec"]["selector"], pod_labels), "the monitor selects the server pods"
    assert "vault-active" not in monitor["spec"]["selector"].get("matchLabels", {})
    (port,) = [p for p in statefulset["spec"]["template"]["spec"]["containers"][0]["ports"] if p["name"] == endpoint["port"]]
    assert port["containerPort"] == vault_server.PORT
    assert endpoint["path"] == "/v1/sys/metrics" and endpoint["params"] == {"format": ["prometheus"]}
    if core(stack).vault.mode == "raft":
        assert (endpoint["scheme"], endpoint["port"]) == ("https", "https")
        assert endpoint["tlsConfig"] == {"ca": {"secret": {"name": vault_server.TLS_SECRET, "key": "ca.crt"}},
                                         "serverName": f"vault.{namespace_of(stack, 'secrets')}.svc"}
        (certificate,) = [c["spec"] for c in objects(plan, "Certificate") if c["spec"]["secretName"] == vault_server.TLS_SECRET]
        assert endpoint["tlsConfig"]["serverName"] in certificate["dnsNames"]
        (config,) = [c for c in chart_children(plan, "vault", "ConfigMap") if c["metadata"]["name"] == "vault-config"]
        assert "telemetry {\n    unauthenticated_metrics_access = true\n  }" in config["data"]["extraconfig-from-values.hcl"]
    else:
        assert endpoint["port"] == "http" and "scheme" not in endpoint and "tlsConfig" not in endpoint


def test_a_single_unreachable_vault_pod_alerts_without_waiting_for_all():
    expr = alert_exprs()["VaultPodUnreachable"]
    assert "max" not in expr and "up{" in expr, "per pod, not aggregated over the namespace"


# --- the alerts match the jobs the monitors produce -----------------------------------------------

def alert_exprs(stack: str = "prod") -> dict[str, str]:
    from components.core.observability.catalog import load_alert_groups

    return {rule["alert"]: rule["expr"] for spec in load_alert_groups(rule_values(stack)).values() for group in spec["groups"] for rule in group["rules"]}


def matchers(expr: str, label: str) -> set[tuple[str, str]]:
    return set(re.findall(rf'\b{label}\s*(=~|=)\s*"([^"]*)"', expr))


def matches(matcher: tuple[str, str], value: str) -> bool:
    op, pattern = matcher
    return value == pattern if op == "=" else re.fullmatch(pattern, value) is not None


def expected_jobs(plan: dict, stack: str) -> dict[str, tuple[str, set[str]]]:
    """Alert -> (namespace, jobs that must satisfy its job matchers)."""
    out: dict[str, tuple[str, set[str]]] = {}
    for item in OWN_MONITORS:
        if not item.alert.endswith("Down"):
            continue
        ns = namespace_of(stack, item.namespace)
        monitor = find_monitor(plan, item.kind, ns, item.name)
        out.setdefault(item.alert, (ns, set()))[1].add(job_of(monitor))
    out["ExternalSecretsDown"] = (namespace_of(stack, "operators"), {external_secrets.METRICS_SERVICE})
    return out


@pytest.mark.parametrize("stack", STACKS)
def test_down_alerts_match_the_jobs_and_namespaces_the_monitors_produce(plans, stack):
    exprs = alert_exprs(stack)
    for alert, (ns, jobs) in expected_jobs(plans[stack], stack).items():
        expr = exprs[alert]
        job_matchers = matchers(expr, "job")
        namespaces = matchers(expr, "namespace")
        assert namespaces and all(matches(m, ns) for m in namespaces), (alert, namespaces, ns)
        if alert == "PostgresInstanceDown":
            assert "cnpg_collector_up" in expr
        assert job_matchers, alert
        for job in jobs:
            assert all(matches(m, job) for m in job_matchers), (alert, job, job_matchers)


@pytest.mark.parametrize("stack", STACKS)
def test_the_external_secrets_alert_watches_the_service_its_chart_monitor_scrapes(plans, stack):
    """A ServiceMonitor's job is the Service it selects: the alert's job must be the name of the Service
    that External Secrets' own ServiceMonitor selects in the rendered chart, or it can never fire."""
    plan = plans[stack]
    ns = platform_settings.parse(stack_config(stack), stack).core.namespaces.operators.name
    monitors = [m for m in objects(plan, "ServiceMonitor") if m["metadata"]["namespace"] == ns
                and m["spec"]["selector"].get("matchLabels", {}).get("app.kubernetes.io/name") == "external-secrets"]
    assert monitors, "the chart renders the controller's ServiceMonitor"
    selected = {svc["metadata"]["name"] for m in monitors for svc in objects(plan, "Service")
                if svc["metadata"].get("namespace") == ns
                and m["spec"]["selector"]["matchLabels"].items() <= (svc["metadata"].get("labels") or {}).items()}
    (job,) = [j for op, j in matchers(alert_exprs()["ExternalSecretsDown"], "job")]
    assert job in selected, (job, selected)


# --- ordering: what needs a monitoring CRD waits for that CRD, and for nothing more of the stack -------

METRICS_CRDS = ("servicemonitors.monitoring.coreos.com", "podmonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com")


def crds_by_kind(plan: dict) -> dict[tuple[str, str], dict]:
    return {(r["inputs"]["spec"]["group"], r["inputs"]["spec"]["names"]["kind"]): r
            for r in plan["resources"] if r["inputs"].get("kind") == "CustomResourceDefinition"}


def waited(plan: dict, resource: dict) -> set[str]:
    """What a resource waits for: its own dependencies and, for a chart's child, the chart's (the engine
    calls the provider's Construct only once the chart's dependencies are done)."""
    by_urn = {r["urn"]: r for r in plan["resources"]}
    found = set(resource["dependencies"])
    parent = by_urn.get(resource["parent"])
    if parent is not None and parent["type"] == CHART:
        found |= set(parent["dependencies"])
    return found


def ordering_problems(plan: dict) -> list[str]:
    """A monitor or rule that does not wait for the CRD of its kind; a chart that does not wait for the
    monitoring CRDs it may render objects of; anything but kube-prometheus-stack's own objects that
    waits for the whole release."""
    (kps,) = [r["urn"] for r in plan["resources"] if r["type"] == CHART and r["name"] == KPS]
    crds = crds_by_kind(plan)
    metrics = {r["urn"] for r in crds.values() if r["inputs"]["metadata"]["name"] in METRICS_CRDS}
    problems = []
    for r in plan["resources"]:
        kind = r["inputs"].get("kind")
        deps = waited(plan, r)
        if kind in (*MONITOR_KINDS, "PrometheusRule"):
            crd = crds[(r["inputs"]["apiVersion"].split("/")[0], kind)]
            if crd["urn"] not in deps:
                problems.append(f"{kind} {r['name']} does not wait for the {crd['inputs']['metadata']['name']} CRD")
        elif r["type"] == CHART and r["urn"] != kps and not metrics <= deps:
            problems.append(f"{CHART} {r['name']} does not wait for the monitoring CRDs")
        if kps in r["dependencies"]:
            problems.append(f"{kind or r['type']} {r['name']} waits for the whole {KPS} release")
    return problems


@pytest.mark.parametrize("stack", STACKS)
def test_monitors_rules_and_charts_wait_for_the_monitoring_crds_only(plans, stack):
    plan = plans[stack]
    (kps,) = [r["urn"] for r in plan["resources"] if r["type"] == CHART and r["name"] == KPS]
    needing = [r for r in plan["resources"] if r["inputs"].get("kind") in (*MONITOR_KINDS, "PrometheusRule")]
    assert len([r for r in needing if r["parent"] != kps]) >= 10
    assert len([r for r in needing if r["parent"] == kps]) >= 10, "kube-prometheus-stack's own monitors and default rules"
    assert ordering_problems(plan) == []


def test_the_ordering_check_notices_a_chart_that_does_not_wait(plans):
    broken = copy.deepcopy(plans["prod"])
    for r in broken["resources"]:
        if r["type"] == CHART and r["name"] == "qdrant":
            r["dependencies"] = [d for d in r["dependencies"] if "CustomResourceDefinition" not in d]
    assert ordering_problems(broken) == [f"{CHART} qdrant does not wait for the monitoring CRDs"]


def test_the_ordering_check_notices_a_rule_that_does_not_wait_for_its_crd_or_waits_for_everything(plans):
    broken = copy.deepcopy(plans["prod"])
    (kps,) = [r["urn"] for r in broken["resources"] if r["type"] == CHART and r["name"] == KPS]
    (rule,) = [r for r in broken["resources"] if r["name"] == f"{KPS}:soma-observability/kps-general.rules"]
    (chart,) = [r for r in broken["resources"] if r["type"] == CHART and r["name"] == KPS]
    for waiting in (rule, chart):
        waiting["dependencies"] = [d for d in waiting["dependencies"] if "CustomResourceDefinition" not in d]
    (own,) = [r for r in broken["resources"] if r["inputs"].get("kind") == "PrometheusRule" and r["name"].endswith("soma-backup-age")]
    own["dependencies"].append(kps)
    problems = ordering_problems(broken)
    assert f"PrometheusRule {KPS}:soma-observability/kps-general.rules does not wait for the prometheusrules.monitoring.coreos.com CRD" in problems
    assert f"PrometheusRule {own['name']} waits for the whole {KPS} release" in problems


@pytest.mark.parametrize("stack", STACKS)
def test_kube_prometheus_stack_is_built_by_core_before_the_rest(plans, stack):
    plan = plans[stack]
    (kps,) = [r for r in plan["resources"] if r["type"] == CHART and r["name"] == KPS]
    assert kps["parent"].endswith("somaagenthub:phase:Core::core")
    assert not any(d for d in kps["dependencies"] if "Chart" in d), "kube-prometheus-stack waits for no other chart"


# --- Prometheus may leave its namespace only towards the ports its targets admit it on ------------

def scrape_admissions(plan: dict, stack: str) -> set[tuple[str, tuple, int]]:
    """(namespace, pod labels, port) of every policy outside observability that admits Prometheus."""
    obs = namespace_of(stack, "observability")
    in_mesh = {n["metadata"]["name"] for n in objects(plan, "Namespace")
               if n["metadata"].get("labels", {}).get("istio.io/dataplane-mode") == "ambient"}
    found = set()
    for policy in objects(plan, "NetworkPolicy"):
        spec, ns = policy["spec"], policy["metadata"]["namespace"]
        if ns == obs or "Ingress" not in spec["policyTypes"]:
            continue
        if ns in in_mesh:
            continue  # Prometheus (in the mesh) reaches these pods over HBONE 15008: tests/mesh/test_prometheus_in_mesh.py
        for rule in spec.get("ingress", []):
            for peer in rule.get("from", []):
                by_name = peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
                if by_name == obs and peer.get("podSelector", {}).get("matchLabels") == PROMETHEUS_POD:
                    assert rule.get("ports"), f"{ns}/{policy['metadata']['name']} admits Prometheus on every port"
                    pods = tuple(sorted(spec["podSelector"].get("matchLabels", {}).items()))
                    found |= {(ns, pods, p["port"]) for p in rule["ports"]}
    return found


def prometheus_egress(plan: dict, stack: str) -> tuple[set[tuple[str, tuple, int]], set[int]]:
    """Prometheus' scrape egress: (namespace, pod labels, port) towards named namespaces, and the ports open to every namespace."""
    obs = namespace_of(stack, "observability")
    # Core's scrape egress, and the mesh's (istiod, ztunnel, waypoints) where the mesh phase is on
    policies = [p for p in objects(plan, "NetworkPolicy")
                if p["metadata"]["namespace"] == obs and p["metadata"]["name"] in ("prometheus-scrape", "prometheus-scrape-mesh")]
    assert "prometheus-scrape" in {p["metadata"]["name"] for p in policies}
    named, everywhere = set(), set()
    for rule in (rule for policy in policies for rule in policy["spec"]["egress"]):
        assert rule.get("ports"), "an egress rule of Prometheus without ports opens every port"
        ports = {p["port"] for p in rule["ports"]}
        for peer in rule["to"]:
            selector = peer.get("namespaceSelector")
            if "ipBlock" in peer or selector is None:
                continue  # the kubelets by CIDR; Prometheus' own namespace (metrics-from-prometheus)
            if selector == {}:
                assert peer.get("podSelector", {}) == {}
                everywhere |= ports
                continue
            pods = tuple(sorted(peer.get("podSelector", {}).get("matchLabels", {}).items()))
            named |= {(selector["matchLabels"]["kubernetes.io/metadata.name"], pods, p) for p in ports}
    return named, everywhere


@pytest.mark.parametrize("stack", STACKS)
def test_prometheus_reaches_exactly_the_pods_and_ports_its_targets_admit_it_on(plans, stack):
    from components.core.observability.scrape_targets import KIT_METRICS_PORT

    admitted = scrape_admissions(plans[stack], stack)
    named, everywhere = prometheus_egress(plans[stack], stack)
    assert everywhere == {KIT_METRICS_PORT}, "every namespace: the kit workloads' metrics port only"
    assert named == {a for a in admitted if a[2] != KIT_METRICS_PORT}
    assert len(named) >= 7


def test_the_scrape_egress_check_notices_a_target_port_prometheus_cannot_reach(plans):
    broken = copy.deepcopy(plans["prod"])
    for r in broken["resources"]:
        if r["inputs"].get("kind") == "NetworkPolicy" and r["inputs"]["metadata"]["name"] == "clickhouse-metrics-scrape":
            r["inputs"]["spec"]["ingress"][0]["ports"] = [{"protocol": "TCP", "port": 9999}]
    named, _ = prometheus_egress(broken, "prod")
    missing = {a for a in scrape_admissions(broken, "prod")} - named
    assert [port for _, _, port in missing] == [9999]


# --- every monitor a chart renders targets pods Prometheus can reach -----------------------------

OPERATOR_GENERATED_PORTS = {"reloader-web": 8080}
"""Named container ports of pods the Prometheus operator builds (not in the plan): the config reloader
listens on :8080 as ``reloader-web`` (prometheus-operator pkg/operator/config_reloader.go)."""
OUTSIDE_THE_PLAN = {"kps-apiserver": ("api_server_cidr", 443), "kps-kubelet": ("node_cidr", 10250)}
"""kube-prometheus-stack monitors whose Services the cluster provides (``default/kubernetes``, the
kubelet Service the operator maintains): reached by CIDR, on the API server's and the kubelet's port."""


def scrape_targets(plan: dict, monitor: dict) -> list[tuple[str, dict, int | str]]:
    """(namespace, pod labels, container port) per Service the monitor selects and endpoint it scrapes.

    Pod labels are those of the plan's pods behind the Service, or the Service's selector when the
    pods are made outside the plan (by an operator, by the cluster).
    """
    pods = [(o["metadata"]["namespace"], spec, o["spec"]["template"]["metadata"].get("labels", {}))
            for o, spec in pod_specs(plan) if o["kind"] != "CronJob"]
    found = []
    for service in selected_services(plan, monitor):
        ns, selector = service["metadata"]["namespace"], service["spec"].get("selector", {})
        behind = [(spec, labels) for pod_ns, spec, labels in pods if pod_ns == ns and selector and selector.items() <= labels.items()]
        for endpoint in endpoints(monitor):
            # a selected Service without the endpoint's port yields no target (Prometheus skips it)
            for port in endpoint_ports(endpoint, service, behind):
                found += targets_of(port, behind, selector, ns)
    return found


def endpoint_ports(endpoint: dict, service: dict, behind: list) -> list[dict]:
    """The Service ports an endpoint scrapes: the one ``port`` names, or (``targetPort``, as cert-manager's
    chart writes it) those that lead to the pods' container port of that name or number."""
    if "port" in endpoint:
        return [p for p in service["spec"]["ports"] if p.get("name") == endpoint["port"]]
    wanted = endpoint["targetPort"]
    numbers = {p["containerPort"] for spec, _ in behind for c in spec["containers"] for p in c.get("ports", [])
               if wanted in (p.get("name"), p["containerPort"])}
    return [p for p in service["spec"]["ports"]
            if p.get("targetPort", p["port"]) == wanted or p.get("targetPort", p["port"]) in numbers]


def targets_of(port: dict, behind: list, selector: dict, ns: str) -> list[tuple[str, dict, int | str]]:
    target = port.get("targetPort", port["port"])
    if isinstance(target, str):
        named = {p["containerPort"] for spec, _ in behind for c in spec["containers"] for p in c.get("ports", []) if p.get("name") == target}
        target = named.pop() if len(named) == 1 else OPERATOR_GENERATED_PORTS.get(target, target)
    return [(ns, labels, target) for labels in [labels for _, labels in behind] or [selector]]


def prometheus_egress_rules(plan: dict, stack: str) -> list[dict]:
    """The egress rules of every NetworkPolicy that selects the Prometheus pods."""
    obs = namespace_of(stack, "observability")
    return [rule for policy in objects(plan, "NetworkPolicy")
            if policy["metadata"]["namespace"] == obs and "Egress" in policy["spec"]["policyTypes"]
            and selects(policy["spec"]["podSelector"], PROMETHEUS_POD)
            for rule in policy["spec"].get("egress", [])]


def prometheus_may_egress(plan: dict, stack: str, namespace: str, pods: dict, port: int) -> bool:
    obs = namespace_of(stack, "observability")
    for rule in prometheus_egress_rules(plan, stack):
        if rule.get("ports") and port not in {p["port"] for p in rule["ports"]}:
            continue
        for peer in rule.get("to", []):
            ns_selector = peer.get("namespaceSelector")
            in_namespace = (ns_selector is None and namespace == obs) or ns_selector == {} or (
                ns_selector is not None and ns_selector.get("matchLabels", {}).get("kubernetes.io/metadata.name") == namespace)
            if "ipBlock" not in peer and in_namespace and selects(peer.get("podSelector", {}), pods):
                return True
    return False


def prometheus_admitted(plan: dict, stack: str, namespace: str, pods: dict, port: int) -> bool:
    """Ingress into ``namespace``: unrestricted where the plan declares no NetworkPolicy there."""
    obs = namespace_of(stack, "observability")
    policies = [p for p in objects(plan, "NetworkPolicy") if p["metadata"]["namespace"] == namespace]
    if not policies:
        return True
    for policy in policies:
        spec = policy["spec"]
        if "Ingress" not in spec["policyTypes"] or not selects(spec["podSelector"], pods):
            continue
        for rule in spec.get("ingress", []):
            if rule.get("ports") and port not in {p["port"] for p in rule["ports"]}:
                continue
            for peer in rule.get("from", []):
                ns_selector = peer.get("namespaceSelector")
                from_obs = (ns_selector is None and namespace == obs) or (
                    ns_selector is not None and ns_selector.get("matchLabels", {}).get("kubernetes.io/metadata.name") == obs)
                if from_obs and selects(peer.get("podSelector", {}), PROMETHEUS_POD):
                    return True
    return False


def unreachable_chart_monitors(plan: dict, stack: str) -> list[str]:
    charts = {r["urn"] for r in plan["resources"] if r["type"] == CHART}
    core_settings = core(stack)
    problems = []
    for r in plan["resources"]:
        monitor = r["inputs"]
        if r["parent"] not in charts or monitor.get("kind") != "ServiceMonitor":
            continue
        name = monitor["metadata"]["name"]
        if name in OUTSIDE_THE_PLAN:
            cidr, port = OUTSIDE_THE_PLAN[name]
            if not any(port in {p["port"] for p in rule.get("ports", [])} and {"ipBlock": {"cidr": getattr(core_settings, cidr)}} in rule["to"]
                       for rule in prometheus_egress_rules(plan, stack)):
                problems.append(f"{r['name']}: Prometheus may not reach {cidr} on {port}")
            continue
        targets = scrape_targets(plan, monitor)
        if not targets:
            problems.append(f"{r['name']}: selects no Service of the plan")
        for ns, pods, port in targets:
            if not isinstance(port, int):
                problems.append(f"{r['name']}: cannot resolve port {port!r} in {ns}")
            elif not prometheus_may_egress(plan, stack, ns, pods, port):
                problems.append(f"{r['name']}: Prometheus' egress does not allow {ns}/{pods_label(pods)}:{port}")
            elif not prometheus_admitted(plan, stack, ns, pods, port):
                problems.append(f"{r['name']}: no NetworkPolicy in {ns} admits Prometheus to {pods_label(pods)}:{port}")
    return problems


def pods_label(pods: dict) -> str:
    return pods.get("app.kubernetes.io/name") or pods.get("k8s-app") or ",".join(f"{k}={v}" for k, v in sorted(pods.items()))


@pytest.mark.parametrize("stack", STACKS)
def test_every_monitor_a_chart_renders_targets_pods_prometheus_can_reach(plans, stack):
    """A target Prometheus cannot reach is down forever, and kube-prometheus-stack's TargetDown
    (kps-general.rules, rendered here) fires for it."""
    plan = plans[stack]
    (target_down,) = [rule for o in objects(plan, "PrometheusRule") for g in o["spec"]["groups"] for rule in g["rules"]
                      if rule.get("alert") == "TargetDown"]
    assert "up == 0" in target_down["expr"]
    assert unreachable_chart_monitors(plan, stack) == []


def test_the_reachability_check_notices_a_closed_scrape_port(plans):
    broken = copy.deepcopy(plans["prod"])
    for r in broken["resources"]:
        if r["inputs"].get("kind") == "NetworkPolicy" and r["inputs"]["metadata"]["name"] == "prometheus-scrape":
            for rule in r["inputs"]["spec"]["egress"]:
                rule["ports"] = [p for p in rule["ports"] if p["port"] != 3200]
    assert "tempo:soma-observability/tempo: Prometheus' egress does not allow soma-observability/tempo:3200" in unreachable_chart_monitors(broken, "prod")
