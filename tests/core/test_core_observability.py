"""Core part 2, observability, read from the rendered plans of both stacks.

What is shown here, offline:

* the five charts are the catalog's vendored pins, every image their rendered pods (and the
  Prometheus and Alertmanager resources) run is a catalog digest from the stack's registry, and
  the parts whose images are not pinned (node exporter, bundled Grafana, Loki gateway and caches,
  tempo-query) are not rendered at all;
* the collector is the Service the kit points every workload at, with OTLP in, memory limiter and
  batch from settings, and one exporter per backend (the node log agent: tests/core/test_node_logs.py);
* Prometheus, Loki and Tempo follow the stack settings (retention, storage, replicas, modes,
  buckets), credentials only by Secret reference;
* Grafana has the three data sources under the uids the dashboards use, linked to each other,
  and its admin credentials come from the Vault grant;
* one dashboard ConfigMap per phase and one PrometheusRule per alert file, beside the
  PrometheusRules the charts render themselves;
* every kit workload carries the OTEL environment, a scraped metrics port and JSON logs;
* the NetworkPolicies open exactly the listed telemetry flows, nothing else.

What is not shown: that data flows at runtime (no cluster); docs/runbooks/observability.md says how
to check it.
"""
from __future__ import annotations

import copy
import json
import re

import pytest
import yaml
from urllib.parse import urlsplit

from components.core import backup_watch

from components import catalog as platform_catalog
from components import settings as platform_settings
from components.core.data.common import ClientNamespaces
from components.core.interfaces import BucketAccess, DatabaseAccess, SecretRef
from components.core.observability import catalog as obs_catalog
from components.core.telemetry import telemetry_for
from components.kit import Peer
from components.kit.labels import client_label
from tests.helpers import objects, rule_values
from tools import mock_runtime
from tools.render import build_plan, stack_config

STACKS = ("dev", "prod")
CHART = "kubernetes:helm.sh/v4:Chart"
OBSERVABILITY = "somaagenthub:core:Observability"
KIT_WORKLOAD = "somaagenthub:kit:Workload"
CHART_IMAGES = {
    "opentelemetry-collector": {"opentelemetry-collector-k8s"},
    "kube-prometheus-stack": {"prometheus-operator", "prometheus-config-reloader", "prometheus", "alertmanager", "kube-state-metrics"},
    "loki": {"loki"},
    "tempo": {"tempo"},
    "grafana": {"grafana", "k8s-sidecar"},
}


def loaded(stack: str) -> platform_settings.PlatformSettings:
    return platform_settings.parse(stack_config(stack), stack)


def obs_namespace(stack: str) -> str:
    return loaded(stack).core.namespaces.observability.name


def chart_resources(plan: dict) -> dict[str, dict]:
    """The observability charts by catalog key: the Observability component's, and kube-prometheus-stack,
    which Core builds first (it installs the monitoring CRDs) and hands to Observability."""
    return {
        r["inputs"]["chart"].removeprefix("./charts/"): r
        for r in plan["resources"]
        if r["type"] == CHART and (f"{OBSERVABILITY}$" in r["urn"] or (r["urn"].split("::")[2] == f"somaagenthub:phase:Core${CHART}"
                                                                       and r["name"] == "kube-prometheus-stack"))
    }


def charts(plan: dict) -> dict[str, dict]:
    return {key: r["inputs"] for key, r in chart_resources(plan).items()}


def rendered(plan: dict, chart: str, kind: str | None = None) -> list[dict]:
    """The objects a chart renders (its children in the plan), optionally of one kind."""
    urn = chart_resources(plan)[chart]["urn"]
    return [r["inputs"] for r in plan["resources"] if r["parent"] == urn and kind in (None, r["inputs"].get("kind"))]


def rendered_images(plan: dict, chart: str) -> list[tuple[str, str]]:
    """(where, image) for every container of every pod a chart renders, the Prometheus and Alertmanager
    resources' images (the operator runs them), and the config reloader the operator adds to both."""
    found = []
    for obj in rendered(plan, chart):
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] in ("Prometheus", "Alertmanager"):
            found.append((f"{where} spec.image", obj["spec"]["image"]))
        template = obj.get("spec", {}).get("template", {}).get("spec") if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job") else None
        for key in ("containers", "initContainers"):
            found += [(f"{where} {key} {c['name']}", c["image"]) for c in (template or {}).get(key) or []]
        if template:
            for c in template["containers"]:
                found += [(f"{where} {c['name']} {a.split('=')[0]}", a.split("=", 1)[1])
                          for a in c.get("args", []) if a.startswith("--prometheus-config-reloader=")]
    return found


def values(plan: dict, chart: str) -> dict:
    return charts(plan)[chart]["values"]


@pytest.fixture(scope="module")
def obs(plans) -> dict[str, dict]:
    for stack, plan in plans.items():
        assert any(r["type"] == OBSERVABILITY for r in plan["resources"]), f"{stack}: Core does not build Observability"
    return plans


# --- fakes of the two Core interfaces, for the variants the stack files do not exercise -------------

class FakeGrants:
    def password(self, name: str, length: int = 32):
        import pulumi_random as random

        return random.RandomPassword(name, length=length).result

    def grant(self, service, namespace, service_account, secret, values):
        return SecretRef(name=f"{service}-{secret}", namespace=namespace, keys=tuple(values))

    def share(self, service, namespace, path, keys, *, after=()):
        return SecretRef(name=f"{service}-credentials", namespace=namespace, keys=tuple(keys))


FAKE_DATABASE = DatabaseAccess(host="db.storage.svc.cluster.local", port=5432, name="grafana", user="grafana",
                               password="postgres-grafana-owner", namespace="storage", pods={"app": "db"},
                               client_labels={"db-client": "true"})


class FakeStorage:
    def __init__(self, endpoint: str, secret_namespace: str):
        self.endpoint = endpoint
        self.secret_namespace = secret_namespace

    def access(self, bucket: str) -> BucketAccess:
        credentials = SecretRef(name=f"{bucket}-s3", namespace=self.secret_namespace, keys=("access-key-id", "secret-access-key"))
        return BucketAccess(bucket=bucket, endpoint=self.endpoint, region="us-east-1", credentials=credentials,
                            peer=Peer(namespace="storage", pods={"app": "s3"}), port=9000)


def render_component(stack: str, core_settings=None, storage: FakeStorage | None = None) -> dict:
    """Observability alone, handed a kube-prometheus-stack chart the way Core hands it one."""
    from components.core.data.common import ClientNamespaces
    from components.core.observability import Observability, prometheus
    from components.kit import KitContext, helm_chart

    s = loaded(stack)
    core = core_settings or s.core
    ctx = KitContext.from_settings(s, platform_catalog.load(), telemetry_for(s.core))
    storage = storage or FakeStorage("http://minio.soma-data.svc.cluster.local:80", s.core.namespaces.observability.name)

    def program():
        kps = helm_chart("kube-prometheus-stack", "kube-prometheus-stack", core.namespaces.observability.name,
                         prometheus.values(core.observability.prometheus, ctx, core.observability.alertmanager,
                                           core.vault.configure), ctx, None)
        return Observability(core, ctx.with_metrics_crds(kps), FakeGrants(), storage, FAKE_DATABASE, kps, s.workload_namespaces(),
                             ClientNamespaces.of(s).phases)

    recording = mock_runtime.run(program, stack, {})
    return build_plan(stack, recording, {})


# --- charts and images ----------------------------------------------------------------------------

@pytest.mark.parametrize("stack", STACKS)
def test_observability_is_a_child_of_core(obs, stack):
    component = next(r for r in obs[stack]["resources"] if r["type"] == OBSERVABILITY)
    assert component["urn"].split("::")[2].endswith("somaagenthub:phase:Core$somaagenthub:core:Observability")
    assert component["custom"] is False


@pytest.mark.parametrize("stack", STACKS)
def test_the_five_charts_are_the_catalog_pins_in_the_observability_namespace(obs, stack):
    lock = platform_catalog.load()
    found = charts(obs[stack])
    assert set(found) == set(CHART_IMAGES)
    for name, chart in found.items():
        pinned = lock.chart(name)
        assert (chart["chart"], chart["version"]) == (f"./{pinned.path}", pinned.version)
        assert "repositoryOpts" not in chart, "deployed from the vendored folder, not fetched"
        assert chart["namespace"] == obs_namespace(stack)
        elsewhere = {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in rendered(obs[stack], name)
                     if o["metadata"].get("namespace", obs_namespace(stack)) != obs_namespace(stack)}
        # kube-prometheus-stack's Service for scraping CoreDNS is the one object it puts next to CoreDNS
        assert elsewhere <= {("Service", "kube-system", "kps-coredns")}, elsewhere
    assert {c["name"]: c["version"] for c in obs[stack]["charts"] if c["name"] in found} == {k: lock.chart(k).version for k in found}


def catalog_match(image: str, registry: str) -> str | None:
    """The catalog key whose digest ``image`` pins, pulled from the stack's registry; None otherwise.

    ``registry/repository[:tag]@digest``: the tag may be left out (some charts drop it when a
    digest is given), but when present it is the catalog's.
    """
    lock = platform_catalog.load().for_registry(registry)
    name, _, digest = image.partition("@")
    tag = name.rpartition(":")[2] if ":" in name.rpartition("/")[2] else ""
    name = name.removesuffix(f":{tag}") if tag else name
    for key in lock.images:
        pinned = lock.image(key)
        if (name, digest) == (pinned.name, pinned.digest) and tag in ("", pinned.tag):
            return key
    return None


@pytest.mark.parametrize("stack", STACKS)
def test_every_chart_image_is_a_catalog_digest_from_the_stack_registry(obs, stack):
    registry = loaded(stack).registry
    for chart, expected in CHART_IMAGES.items():
        images = rendered_images(obs[stack], chart)
        unmatched = [(where, image) for where, image in images if catalog_match(image, registry) is None]
        assert not unmatched, (chart, unmatched)
        assert {catalog_match(image, registry) for _, image in images} == expected, chart


def test_kube_state_metrics_takes_the_full_digest_and_the_rest_of_the_stack_the_hex(obs):
    """The charts spell digests differently (kube-state-metrics' ``sha`` wants ``sha256:<hex>``, the
    Prometheus resources and Grafana the bare hex); each still renders one well-formed reference."""
    lock = platform_catalog.load().for_registry(loaded("prod").registry)
    by_where = {where.split(" ")[0]: image for where, image in rendered_images(obs["prod"], "kube-prometheus-stack")}
    assert by_where["Deployment/kube-prometheus-stack-kube-state-metrics"] == lock.image("kube-state-metrics").reference
    assert by_where["Prometheus/kps-prometheus"] == lock.image("prometheus").reference
    (grafana,) = [image for where, image in rendered_images(obs["prod"], "grafana") if where.endswith(" containers grafana")]
    assert grafana == lock.image("grafana").reference
    for chart in CHART_IMAGES:
        for where, image in rendered_images(obs["prod"], chart):
            assert re.fullmatch(r"[^@]+@sha256:[0-9a-f]{64}", image), (where, image)


def test_the_parts_without_pinned_images_are_not_rendered(obs):
    """Node exporter, bundled Grafana, Loki's gateway, caches and canary, tempo-query: no pod of theirs."""
    for stack in STACKS:
        names = {o["metadata"]["name"] for chart in CHART_IMAGES for o in rendered(obs[stack], chart)
                 if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod")}
        assert not {n for n in names if re.search(r"node-exporter|gateway|chunks-cache|results-cache|canary|tempo-query", n)}, names
        assert not [n for n in names if n.startswith("kube-prometheus-stack-grafana")]
        assert not [o for chart in CHART_IMAGES for o in rendered(obs[stack], chart) if o["kind"] == "DaemonSet"]


# --- collector ------------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", STACKS)
def test_the_collector_is_the_service_every_kit_workload_sends_to(obs, stack):
    collector = values(obs[stack], "opentelemetry-collector")
    endpoint = telemetry_for(loaded(stack).core).otlp_endpoint
    host = endpoint.removeprefix("http://").split(":")[0]
    assert host == f"{collector['fullnameOverride']}.{obs_namespace(stack)}.svc.cluster.local"
    assert endpoint.endswith(":4317") and collector["ports"]["otlp"]["enabled"]
    # app.kubernetes.io/name is the chart name unless nameOverride is set (chart _helpers.tpl);
    # the kit's NetworkPolicies select the collector by that label.
    assert "nameOverride" not in collector
    assert charts(obs[stack])["opentelemetry-collector"]["chart"] == "./charts/opentelemetry-collector"
    # every egress into the observability namespace but the node log agent's, which pushes to Loki itself
    node_logs = loaded(stack).core.namespaces.node_logs.name
    kit_peers = [
        peer["podSelector"]["matchLabels"]
        for policy in objects(obs[stack], "NetworkPolicy") if policy["metadata"]["namespace"] != node_logs
        for rule in policy["spec"].get("egress", [])
        for peer in rule["to"]
        if peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name") == obs_namespace(stack)
        and "podSelector" in peer
    ]
    assert all(p == {"app.kubernetes.io/name": "opentelemetry-collector"} for p in kit_peers)


@pytest.mark.parametrize("stack", STACKS)
def test_the_collector_gateway_exports_each_signal_to_its_backend_with_limits_from_settings(obs, stack):
    s = loaded(stack).core.observability.collector
    ns = obs_namespace(stack)
    collector = values(obs[stack], "opentelemetry-collector")
    config = collector["config"]
    assert collector["mode"] == "deployment" and collector["replicaCount"] == s.replicas
    assert collector["command"]["name"] == "otelcol-k8s"
    limiter = config["processors"]["memory_limiter"]
    assert (limiter["limit_percentage"], limiter["spike_limit_percentage"]) == (s.memory_limit_percentage, s.memory_spike_percentage)
    assert config["processors"]["batch"] == {"send_batch_size": s.batch_size, "timeout": s.batch_timeout}
    pipelines = config["service"]["pipelines"]
    exporters = config["exporters"]
    destinations = {signal: [exporters[e]["endpoint"] for e in p["exporters"]] for signal, p in pipelines.items()}
    loki_write = "loki-write" if stack == "prod" else "loki"
    replicas = loaded(stack).core.observability.prometheus.replicas
    assert destinations == {
        "metrics": [f"http://prometheus-kps-prometheus-{i}.prometheus-operated.{ns}.svc.cluster.local:9090/api/v1/otlp"
                    for i in range(replicas)],
        "logs": [f"http://{loki_write}.{ns}.svc.cluster.local:3100/otlp"],
        "traces": [f"tempo.{ns}.svc.cluster.local:4317"],
    }
    assert all(p["receivers"] == ["otlp"] and p["processors"][0] == "memory_limiter" and p["processors"][-1] == "batch" for p in pipelines.values())


def collector_relay(plan: dict) -> dict:
    """The configuration the collector runs: the ``relay`` key of the ConfigMap its chart renders."""
    (config_map,) = [c for c in rendered(plan, "opentelemetry-collector", "ConfigMap") if "relay" in c["data"]]
    return yaml.safe_load(config_map["data"]["relay"])


def prometheus_replica_hosts(prometheus: dict) -> set[str]:
    """The DNS name of every pod the Prometheus operator runs for this resource.

    prometheus-operator v0.93.0: one StatefulSet per shard named ``prometheus-<resource>`` (shard 0;
    pkg/prometheus/common.go ``prometheusNameByShard``), ``spec.replicas`` pods ``<statefulset>-<i>``
    each, under the governing Service ``spec.serviceName`` or else ``prometheus-operated``
    (pkg/prometheus/server/statefulset.go); StatefulSet pods resolve as ``<pod>.<service>.<ns>.svc``.
    """
    spec, meta = prometheus["spec"], prometheus["metadata"]
    assert spec.get("shards", 1) == 1, "shard N > 0 runs as prometheus-<resource>-shard-N"
    service = spec.get("serviceName", "prometheus-operated")
    return {f"prometheus-{meta['name']}-{i}.{service}.{meta['namespace']}.svc.cluster.local" for i in range(int(spec.get("replicas", 1)))}


def metrics_targets(relay: dict) -> set[str]:
    """The hosts the metrics pipeline sends to (every exporter of the pipeline gets every batch)."""
    exporters = relay["service"]["pipelines"]["metrics"]["exporters"]
    return {urlsplit(relay["exporters"][e]["endpoint"]).hostname for e in exporters}


@pytest.mark.parametrize("stack", STACKS)
def test_every_prometheus_replica_is_a_target_of_the_collector(obs, stack):
    """Pushed series reach every replica: the collector's rendered configuration has one exporter per
    pod the operator runs for the rendered Prometheus, each on the replica's own DNS name, none on the
    load-balanced Service (which would hand each batch to one replica only)."""
    (prometheus,) = rendered(obs[stack], "kube-prometheus-stack", "Prometheus")
    relay = collector_relay(obs[stack])
    assert metrics_targets(relay) == prometheus_replica_hosts(prometheus)
    assert len(metrics_targets(relay)) == loaded(stack).core.observability.prometheus.replicas
    paths = {urlsplit(relay["exporters"][e]["endpoint"]).path for e in relay["service"]["pipelines"]["metrics"]["exporters"]}
    assert paths == {"/api/v1/otlp"}


def test_a_third_prometheus_replica_becomes_a_third_collector_target():
    from tests.helpers import config_with, stack_document
    from tools.render import render

    core = copy.deepcopy(stack_document("prod")["somaagenthub:core"])
    core["observability"]["prometheus"]["replicas"] = 3
    plan = render("prod", config=config_with("prod", core=core))
    (prometheus,) = rendered(plan, "kube-prometheus-stack", "Prometheus")
    assert prometheus["spec"]["replicas"] == 3
    assert metrics_targets(collector_relay(plan)) == prometheus_replica_hosts(prometheus)
    assert len(prometheus_replica_hosts(prometheus)) == 3


def test_the_replica_check_notices_a_collector_sending_to_the_service(obs):
    (prometheus,) = rendered(obs["prod"], "kube-prometheus-stack", "Prometheus")
    relay = copy.deepcopy(collector_relay(obs["prod"]))
    relay["exporters"] = {"otlp_http/prometheus": {"endpoint": f"{obs_topology_url(obs['prod'])}/api/v1/otlp"}}
    relay["service"]["pipelines"]["metrics"]["exporters"] = ["otlp_http/prometheus"]
    assert metrics_targets(relay) != prometheus_replica_hosts(prometheus)


def obs_topology_url(plan: dict) -> str:
    """Grafana's Prometheus data source: the load-balanced Service."""
    sources = values(plan, "grafana")["datasources"]["datasources.yaml"]["datasources"]
    return next(d["url"] for d in sources if d["uid"] == "prometheus")


@pytest.mark.parametrize("stack", STACKS)
def test_logs_carry_the_namespace_pod_and_container_labels_the_dashboards_query(obs, stack):
    collector = values(obs[stack], "opentelemetry-collector")["config"]
    (labeller,) = [p for p in collector["service"]["pipelines"]["logs"]["processors"] if p.startswith("resource/")]
    copied = {a["key"]: a["from_attribute"] for a in collector["processors"][labeller]["attributes"]}
    assert copied == {"namespace": "k8s.namespace.name", "pod": "k8s.pod.name", "container": "k8s.container.name"}
    otlp = values(obs[stack], "loki")["loki"]["limits_config"]["otlp_config"]["resource_attributes"]
    assert otlp["attributes_config"] == [{"action": "index_label", "attributes": sorted(copied)}]
    dashboard_labels = {
        label
        for _, panel, target, uid in obs_catalog.iter_dashboard_targets(obs_catalog.load_dashboards(rule_values(stack)))
        if uid == "loki"
        for label in re.findall(r"([A-Za-z_]+)\s*=~?\s*\"", target["expr"].split("}")[0])
    }
    assert dashboard_labels and dashboard_labels <= set(copied)
    assert "presets" not in collector, "no hostPath presets (logsCollection, hostMetrics)"


# --- Prometheus, Loki, Tempo ----------------------------------------------------------------------

@pytest.mark.parametrize("stack", STACKS)
def test_kube_prometheus_stack_keeps_the_operator_stack_and_follows_settings(obs, stack):
    s = loaded(stack)
    p = s.core.observability.prometheus
    (prometheus,) = rendered(obs[stack], "kube-prometheus-stack", "Prometheus")
    (alertmanager,) = rendered(obs[stack], "kube-prometheus-stack", "Alertmanager")
    spec = prometheus["spec"]
    assert (spec["replicas"], spec["retention"]) == (p.replicas, p.retention)
    claim = spec["storage"]["volumeClaimTemplate"]["spec"]
    assert (claim["resources"]["requests"]["storage"], claim["storageClassName"]) == (p.storage, s.storage_class)
    assert alertmanager["spec"]["replicas"] == p.alertmanager_replicas
    assert spec["enableOTLPReceiver"] is True
    # every monitor, probe, rule and scrape config of every namespace is picked up (kit workloads included)
    for kind in ("serviceMonitor", "podMonitor", "probe", "rule", "scrapeConfig"):
        assert (spec[f"{kind}Selector"], spec[f"{kind}NamespaceSelector"]) == ({}, {}), kind
    kinds = {(o["kind"], o["metadata"]["name"]) for o in rendered(obs[stack], "kube-prometheus-stack")}
    deployments = {name for kind, name in kinds if kind == "Deployment"}
    assert deployments == {"kps-operator", "kube-prometheus-stack-kube-state-metrics"}, "operator and kube-state-metrics; no Grafana"
    assert not {kind for kind, _ in kinds} & {"DaemonSet", "Job", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"}, \
        "no node exporter, no admission webhooks or their patch Jobs"
    (operator,) = [c for o in rendered(obs[stack], "kube-prometheus-stack", "Deployment") if o["metadata"]["name"] == "kps-operator"
                   for c in o["spec"]["template"]["spec"]["containers"]]
    assert "--web.enable-tls=false" in operator["args"], "without the webhook Jobs the operator TLS Secret never exists"
    assert not operator.get("volumeMounts")


def test_prod_runs_two_prometheus_replicas_spread_over_nodes(obs):
    (prometheus,) = rendered(obs["prod"], "kube-prometheus-stack", "Prometheus")
    spec = prometheus["spec"]
    assert spec["replicas"] == 2 and spec.get("shards", 1) == 1
    (term,) = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    selected = {e["key"]: e["values"] for e in term["labelSelector"]["matchExpressions"] if e["operator"] == "In"}
    assert selected == {"app.kubernetes.io/name": ["prometheus"], "app.kubernetes.io/instance": [prometheus["metadata"]["name"]]}


@pytest.mark.parametrize("stack", STACKS)
def test_loki_is_single_binary_in_dev_and_simple_scalable_in_prod(obs, stack):
    s = loaded(stack).core.observability.loki
    loki = values(obs[stack], "loki")
    scalable = stack == "prod"
    assert s.mode == ("scalable" if scalable else "single-binary")
    assert loki["deploymentMode"] == ("SimpleScalable" if scalable else "Monolithic")
    assert loki["singleBinary"]["replicas"] == (0 if scalable else s.replicas)
    assert {t: loki[t]["replicas"] for t in ("read", "write", "backend")} == {t: s.replicas if scalable else 0 for t in ("read", "write", "backend")}
    assert loki["loki"]["limits_config"]["retention_period"] == s.retention
    assert loki["loki"]["compactor"]["retention_enabled"] is True
    for part in ("gateway", "chunksCache", "resultsCache", "lokiCanary", "test", "minio"):
        assert loki[part] == {"enabled": False}, part
    assert loki["sidecar"]["rules"]["enabled"] is False


@pytest.mark.parametrize("stack", STACKS)
def test_loki_and_tempo_store_in_s3_with_keys_only_by_secret_reference(obs, stack):
    loki = values(obs[stack], "loki")
    tempo = values(obs[stack], "tempo")
    s3 = loki["loki"]["storage"]["s3"]
    assert loki["loki"]["storage"]["type"] == "s3" and tempo["tempo"]["storage"]["trace"]["backend"] == "s3"
    assert (s3["accessKeyId"], s3["secretAccessKey"]) == ("${AWS_ACCESS_KEY_ID}", "${AWS_SECRET_ACCESS_KEY}")
    targets = [loki[t] for t in ("singleBinary", "read", "write", "backend")] + [tempo["tempo"]]
    for target in targets:
        env = {e["name"]: e for e in target["extraEnv"]}
        assert set(env) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
        assert all("value" not in e and e["valueFrom"]["secretKeyRef"]["name"] for e in env.values())
    assert all("-config.expand-env=true" in loki[t]["extraArgs"] for t in ("singleBinary", "read", "write", "backend"))
    assert s3["endpoint"] == tempo["tempo"]["storage"]["trace"]["s3"]["endpoint"]
    assert loki["loki"]["storage"]["bucketNames"]["chunks"] != tempo["tempo"]["storage"]["trace"]["s3"]["bucket"]


@pytest.mark.parametrize("stack", STACKS)
def test_tempo_follows_settings_with_retention_as_a_go_duration(obs, stack):
    s = loaded(stack).core.observability.tempo
    tempo = values(obs[stack], "tempo")
    assert tempo["replicas"] == s.replicas
    assert tempo["persistence"]["size"] == s.storage
    number, unit = int(s.retention[:-1]), s.retention[-1]
    assert tempo["tempo"]["retention"] == f"{number * {'d': 24, 'w': 168}[unit]}h"
    assert tempo["tempoQuery"] == {"enabled": False}
    assert "@sha256:" in tempo["tempo"]["tag"], "the tempo chart has no digest key"


def test_bucket_credentials_from_another_namespace_are_refused():
    storage = FakeStorage("http://minio.soma-data.svc.cluster.local:80", "soma-data")
    with pytest.raises(ValueError, match="can only mount Secrets of its own namespace"):
        render_component("dev", storage=storage)


# --- Grafana --------------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", STACKS)
def test_grafana_provisions_the_three_datasources_the_dashboards_use_and_links_them(obs, stack):
    ns = obs_namespace(stack)
    grafana = values(obs[stack], "grafana")
    sources = {d["uid"]: d for d in grafana["datasources"]["datasources.yaml"]["datasources"]}
    # the compliance part adds ClickHouse (uid clickhouse, tests/governance/test_compliance_grafana.py) when the stack sets it
    assert set(sources) - {"clickhouse"} == obs_catalog.DATASOURCE_UIDS
    loki_read = "loki-read" if stack == "prod" else "loki"
    assert sources["prometheus"]["url"] == f"http://kps-prometheus.{ns}.svc.cluster.local:9090"
    assert sources["loki"]["url"] == f"http://{loki_read}.{ns}.svc.cluster.local:3100"
    assert sources["tempo"]["url"] == f"http://tempo.{ns}.svc.cluster.local:3200"
    assert sources["tempo"]["jsonData"]["tracesToLogsV2"]["datasourceUid"] == "loki"
    derived = sources["loki"]["jsonData"]["derivedFields"]
    assert [(d["matcherRegex"], d["datasourceUid"]) for d in derived] == [("trace_id", "tempo")]
    assert sources["prometheus"]["jsonData"]["exemplarTraceIdDestinations"][0]["datasourceUid"] == "tempo"
    sidecar = grafana["sidecar"]["dashboards"]
    assert (sidecar["enabled"], sidecar["label"], sidecar["labelValue"]) == (True, "grafana_dashboard", "1")


@pytest.mark.parametrize("stack", STACKS)
def test_grafana_admin_credentials_come_from_the_vault_grant(rendered, obs, stack):
    plan, generated, _ = rendered[stack]
    admin = values(plan, "grafana")["admin"]
    # SecretGrants.grant("grafana", ns, "grafana", "admin", ...) is synced as "<service>-<secret>".
    assert admin == {"existingSecret": "grafana-admin", "userKey": "admin-user", "passwordKey": "admin-password"}
    assert "adminPassword" not in values(plan, "grafana")
    text = json.dumps(plan)
    assert generated and not any(value in text for value in generated.values())


# --- dashboards and alerts ------------------------------------------------------------------------

@pytest.mark.parametrize("stack", STACKS)
def test_one_dashboard_config_map_per_phase_labelled_for_the_sidecar(obs, stack):
    ns = obs_namespace(stack)
    maps = {m["metadata"]["name"]: m for m in objects(obs[stack], "ConfigMap") if m["metadata"].get("labels", {}).get("grafana_dashboard") == "1"}
    # the Governance phase's compliance and cost dashboards are its own (tests/governance/test_compliance_dashboards.py,
    # tests/governance/test_cost_dashboard.py)
    assert set(maps) - {"grafana-dashboard-compliance", "grafana-dashboard-cost"} == {f"grafana-dashboard-{phase}" for phase in obs_catalog.PHASES}
    for phase, dashboard in obs_catalog.load_dashboards(rule_values(stack)).items():
        config_map = maps[f"grafana-dashboard-{phase}"]
        assert config_map["metadata"]["namespace"] == ns
        assert json.loads(config_map["data"][f"{phase}.json"]) == dashboard


def core_observability(stack: str) -> str:
    return platform_settings.parse(stack_config(stack), stack).core.namespaces.observability.name


@pytest.mark.parametrize("stack", STACKS)
def test_one_prometheus_rule_per_alert_group(obs, stack):
    """Ours: one PrometheusRule per alert file, not from a chart. The charts' own rules (kube-prometheus-stack's
    default rules) are rendered beside them and must not take one of our names."""
    charts_ = {r["urn"] for r in obs[stack]["resources"] if r["type"] == CHART}
    generated = {backup_watch.RULE_NAME}  # the backup-age rule is generated from DataStores.backup_watches, not a file
    ours = {r["inputs"]["metadata"]["name"]: r["inputs"] for r in obs[stack]["resources"]
            if r["inputs"].get("kind") == "PrometheusRule" and r["parent"] not in charts_
            and r["inputs"]["metadata"]["name"] not in generated
            and r["inputs"]["metadata"]["namespace"] == core_observability(stack)}  # later phases keep their own rules
    from_charts = [r["inputs"]["metadata"]["name"] for r in obs[stack]["resources"]
                   if r["inputs"].get("kind") == "PrometheusRule" and r["parent"] in charts_]
    groups = obs_catalog.load_alert_groups(rule_values(stack))
    assert set(ours) == {f"soma-{g}" for g in groups}
    for group, spec in groups.items():
        assert ours[f"soma-{group}"]["spec"] == spec
        assert ours[f"soma-{group}"]["metadata"]["namespace"] == obs_namespace(stack)
    assert from_charts and not set(from_charts) & set(ours)
    core_rules = [o for o in objects(obs[stack], "PrometheusRule") if o["metadata"]["namespace"] == core_observability(stack)]
    assert len(core_rules) == len(ours) + len(from_charts) + len(generated)
    (backups,) = [o for o in objects(obs[stack], "PrometheusRule") if o["metadata"]["name"] in generated]
    assert backups["spec"]["groups"][0]["name"] == "somaagenthub.backups"


# --- kit workloads: observable by default ---------------------------------------------------------

REQUIRED_ENV = ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_EXPORTER_OTLP_ENDPOINT")
LOG_LABEL_SOURCES = ("k8s.namespace.name", "k8s.pod.name", "k8s.container.name")


def kit_workloads(plan: dict) -> list[dict]:
    return [
        r for r in plan["resources"]
        if f"{KIT_WORKLOAD}$" in r["urn"] and r["inputs"].get("kind") in ("Deployment", "StatefulSet")
    ]


def kit_workload_problems(plan: dict, otlp_endpoint: str) -> list[str]:
    """What a kit workload lacks of the three defaults: OTEL env, metrics (a scraped metrics port, or pushed over
    OTLP with no port to scrape), JSON logs."""
    problems = []
    for workload in kit_workloads(plan):
        name = workload["inputs"]["metadata"]["name"]
        siblings = [r["inputs"] for r in plan["resources"] if r["parent"] == workload["parent"]]
        for container in workload["inputs"]["spec"]["template"]["spec"]["containers"]:
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            problems += [f"{name}: no {key}" for key in REQUIRED_ENV if not env.get(key)]
            if env.get("OTEL_EXPORTER_OTLP_ENDPOINT") not in (None, otlp_endpoint):
                problems.append(f"{name}: exports to {env['OTEL_EXPORTER_OTLP_ENDPOINT']}, not the collector")
            attributes = dict(a.split("=", 1) for a in (env.get("OTEL_RESOURCE_ATTRIBUTES") or "").split(",") if "=" in a)
            problems += [f"{name}: no {key} attribute" for key in LOG_LABEL_SOURCES if key not in attributes]
            if env.get("LOG_FORMAT") != "json":
                problems.append(f"{name}: logs are not JSON")
            if env.get("OTEL_METRICS_EXPORTER") == "otlp":  # pushed to the collector: nothing to scrape
                if "metrics" in {p.get("name") for p in container.get("ports", [])}:
                    problems.append(f"{name}: pushes its metrics over OTLP but declares a metrics port")
                continue
            if "metrics" not in {p.get("name") for p in container.get("ports", [])}:
                problems.append(f"{name}: no metrics port")
        if all({e["name"]: e.get("value") for e in c.get("env", [])}.get("OTEL_METRICS_EXPORTER") == "otlp"
               for c in workload["inputs"]["spec"]["template"]["spec"]["containers"]):
            continue
        services = [s for s in siblings if s.get("kind") == "Service" and "metrics" in {p["name"] for p in s["spec"]["ports"]}]
        monitors = [
            m for m in siblings
            if m.get("kind") == "ServiceMonitor"
            and any(e["port"] == "metrics" for e in m["spec"]["endpoints"])
            and any(m["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items() for s in services)
        ]
        if not monitors:
            problems.append(f"{name}: no ServiceMonitor scraping a metrics port")
    return problems


@pytest.fixture(scope="module")
def probe_workload_plan() -> dict:
    """A program that builds one workload through the kit, so the check below cannot pass on nothing."""
    from components.kit import KitContext, Workload, WorkloadArgs

    s = loaded("prod")
    ctx = KitContext.from_settings(s, platform_catalog.load(), telemetry_for(s.core))
    args = WorkloadArgs(
        name="probe", namespace="soma-agents", component="api", image="opentelemetry-collector-k8s",
        port=8080, resources=s.core.observability.grafana.resources, replicas=2,
    )
    return build_plan("prod", mock_runtime.run(lambda: Workload(args, ctx), "prod", {}), {})


def test_a_workload_built_through_the_kit_has_all_three_defaults(probe_workload_plan):
    endpoint = telemetry_for(loaded("prod").core).otlp_endpoint
    assert len(kit_workloads(probe_workload_plan)) == 1
    assert kit_workload_problems(probe_workload_plan, endpoint) == []


@pytest.mark.parametrize("stack", STACKS)
def test_every_kit_workload_in_the_plan_has_all_three_defaults(obs, stack):
    assert kit_workload_problems(obs[stack], telemetry_for(loaded(stack).core).otlp_endpoint) == []


def test_a_workload_pushing_its_metrics_over_otlp_passes_and_a_stray_metrics_port_is_noticed():
    from components.kit import KitContext, Workload, WorkloadArgs

    s = loaded("prod")
    ctx = KitContext.from_settings(s, platform_catalog.load(), telemetry_for(s.core))
    args = WorkloadArgs(name="pusher", namespace="soma-agents", component="api", image="opentelemetry-collector-k8s",
                        port=8080, resources=s.core.observability.grafana.resources, metrics="otlp")
    plan = build_plan("prod", mock_runtime.run(lambda: Workload(args, ctx), "prod", {}), {})
    endpoint = telemetry_for(s.core).otlp_endpoint
    assert kit_workload_problems(plan, endpoint) == []
    container = kit_workloads(plan)[0]["inputs"]["spec"]["template"]["spec"]["containers"][0]
    container["ports"].append({"name": "metrics", "containerPort": 9464, "protocol": "TCP"})
    assert kit_workload_problems(plan, endpoint) == ["pusher: pushes its metrics over OTLP but declares a metrics port"]


def test_the_defaults_check_notices_a_workload_without_them(probe_workload_plan):
    endpoint = telemetry_for(loaded("prod").core).otlp_endpoint
    broken = copy.deepcopy(probe_workload_plan)
    workload = kit_workloads(broken)[0]
    container = workload["inputs"]["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [e for e in container["env"] if e["name"] not in ("OTEL_SERVICE_NAME", "LOG_FORMAT")]
    container["ports"] = [p for p in container["ports"] if p["name"] != "metrics"]
    broken["resources"] = [r for r in broken["resources"] if r["inputs"].get("kind") != "ServiceMonitor"]
    assert set(kit_workload_problems(broken, endpoint)) == {
        "probe: no OTEL_SERVICE_NAME", "probe: logs are not JSON", "probe: no metrics port",
        "probe: no ServiceMonitor scraping a metrics port",
    }


# --- network flows --------------------------------------------------------------------------------

def pods_text(pods: dict) -> str:
    """The pods' app.kubernetes.io/name, else their labels ``k=v`` joined, ``*`` for all."""
    if "app.kubernetes.io/name" in pods:
        return pods["app.kubernetes.io/name"]
    return ",".join(f"{k}={v}" for k, v in sorted(pods.items())) or "*"


def peer_texts(peer: dict, here: str) -> list[str]:
    """``ns/pods`` per namespace the peer names (a namespace list gives one text per namespace)."""
    if "ipBlock" in peer:
        return [f"cidr:{peer['ipBlock']['cidr']}"]
    ns = peer.get("namespaceSelector")
    if ns is None:
        where = [here]
    elif ns == {}:
        where = ["*"]
    elif "matchExpressions" in ns:
        (expression,) = ns["matchExpressions"]
        assert (expression["key"], expression["operator"]) == ("kubernetes.io/metadata.name", "In") and "matchLabels" not in ns
        where = expression["values"]
    else:
        where = [ns["matchLabels"]["kubernetes.io/metadata.name"]]
    pods = pods_text(peer.get("podSelector", {}).get("matchLabels", {}))
    return [f"{w}/{pods}" for w in where]


def selected_text(selector: dict) -> str:
    if "matchExpressions" in selector:
        return "|".join(sorted(selector["matchExpressions"][0]["values"]))
    return selector.get("matchLabels", {}).get("app.kubernetes.io/name", "*")


def flows(policies: list[dict]) -> set[tuple[str, str, str, str, str]]:
    """(direction, selected pods, peer, ports) per clause, ``ns/name`` for peers, ``*`` for any."""
    found = set()
    for policy in policies:
        spec, here = policy["spec"], policy["metadata"]["namespace"]
        for direction in spec["policyTypes"]:
            for clause in spec.get(direction.lower(), []):
                ports = ",".join(sorted(f"{p['port']}/{p['protocol']}" for p in clause.get("ports", []))) or "*"
                for peer in clause["from" if direction == "Ingress" else "to"]:
                    for text in peer_texts(peer, here):
                        found.add((here, direction, selected_text(spec["podSelector"]), text, ports))
    return found


def expected_observability_flows(ns: str, store: tuple[str, str], core, workloads, later=(), compliance=None) -> set[tuple[str, str, str, str, str]]:
    """``workloads``: the namespaces where workloads run, the only senders the collector admits; ``later``: the
    later phases' scrape targets off the kit's port (ClientNamespaces.scraped); ``compliance``: the governance
    part that gives Grafana its ClickHouse data source (its queries, the plugin's download, alerts to Alertmanager)."""
    store_ns, store_port = store
    data, secrets, operators = core.namespaces.data.name, core.namespaces.secrets.name, core.namespaces.operators.name
    api_watchers = "grafana|kube-prometheus-stack-prometheus-operator|kube-state-metrics|prometheus"
    scraped = ",".join(sorted(f"{p}/TCP" for p in (3000, 3100, 3200, 8080, 8081, 8888, 9090, 9093)))
    gossip = "9094/TCP,9094/UDP"
    loki_ring = "3100/TCP,7946/TCP,9095/TCP"
    return {
        *((ns, "Ingress", "opentelemetry-collector", f"{workload_ns}/*", "4317/TCP,4318/TCP") for workload_ns in workloads),
        (ns, "Egress", "opentelemetry-collector", f"{ns}/prometheus", "9090/TCP"),
        (ns, "Egress", "opentelemetry-collector", f"{ns}/loki", "3100/TCP"),
        (ns, "Egress", "opentelemetry-collector", f"{ns}/tempo", "4317/TCP"),
        (ns, "Ingress", "prometheus", f"{ns}/opentelemetry-collector", "9090/TCP"),
        (ns, "Ingress", "loki", f"{ns}/opentelemetry-collector", "3100/TCP"),
        (ns, "Ingress", "tempo", f"{ns}/opentelemetry-collector", "4317/TCP"),
        (ns, "Ingress", "loki", f"{core.namespaces.node_logs.name}/node-log-agent", "3100/TCP"),
        (ns, "Egress", "prometheus", f"{core.namespaces.node_logs.name}/node-log-agent", "8888/TCP"),
        (ns, "Egress", "grafana", f"{ns}/prometheus", "9090/TCP"),
        (ns, "Egress", "grafana", f"{ns}/loki", "3100/TCP"),
        (ns, "Egress", "grafana", f"{ns}/tempo", "3200/TCP"),
        (ns, "Egress", "grafana", f"{data}/cnpg.io/cluster=app-db", "5432/TCP"),
        (ns, "Ingress", "prometheus", f"{ns}/grafana", "9090/TCP"),
        (ns, "Ingress", "loki", f"{ns}/grafana", "3100/TCP"),
        (ns, "Ingress", "tempo", f"{ns}/grafana", "3200/TCP"),
        (ns, "Egress", "prometheus", f"{data}/minio", "9000/TCP"),
        (ns, "Egress", "prometheus", f"{data}/cnpg.io/cluster=app-db", "9187/TCP"),
        (ns, "Egress", "prometheus", f"{data}/qdrant", "6333/TCP"),
        (ns, "Egress", "prometheus", f"{data}/strimzi.io/cluster=platform", "9404/TCP"),
        (ns, "Egress", "prometheus", f"{data}/clickhouse.altinity.com/chi=audit", "9363/TCP"),
        (ns, "Egress", "prometheus", f"{secrets}/vault", "8200/TCP"),
        (ns, "Egress", "prometheus", f"{operators}/app.kubernetes.io/instance=external-secrets", "8080/TCP"),
        (ns, "Egress", "prometheus", f"{operators}/app.kubernetes.io/instance=cert-manager", "9402/TCP"),
        (ns, "Egress", "prometheus", f"{ns}/*", scraped),
        (ns, "Egress", "prometheus", "*/*", "9464/TCP"),
        (ns, "Egress", "prometheus", f"cidr:{core.node_cidr}", "10250/TCP"),
        (ns, "Ingress", "*", f"{ns}/prometheus", scraped),
        (ns, "Ingress", "alertmanager", f"{ns}/alertmanager", gossip),
        (ns, "Egress", "alertmanager", f"{ns}/alertmanager", gossip),
        (ns, "Ingress", "loki", f"{ns}/loki", loki_ring),
        (ns, "Egress", "loki", f"{ns}/loki", loki_ring),
        (ns, "Egress", "loki", f"{store_ns}/minio", f"{store_port}/TCP"),
        (ns, "Egress", "tempo", f"{store_ns}/minio", f"{store_port}/TCP"),
        (ns, "Egress", api_watchers, f"cidr:{core.api_server_cidr}", "443/TCP,6443/TCP"),
        *((ns, "Egress", "alertmanager", f"cidr:{r.egress_cidr}", f"{r.egress_port}/TCP")
          for r in core.observability.alertmanager.receivers.values()),
        (ns, "Egress", "*", "kube-system/k8s-app=kube-dns", "53/TCP,53/UDP"),
        *((ns, "Egress", "prometheus", f"{target_ns}/{','.join(f'{k}={v}' for k, v in pods)}", ",".join(f"{p}/TCP" for p in ports))
          for target_ns, pods, ports in later),
        *(() if compliance is None else (
            (ns, "Egress", "grafana", f"{data}/clickhouse.altinity.com/chi=audit", "8123/TCP"),
            (ns, "Egress", "grafana", f"cidr:{compliance.plugin_source.cidr}", f"{compliance.plugin_source.port}/TCP"),
            (ns, "Egress", "grafana", f"{ns}/alertmanager", "9093/TCP"),
            (ns, "Ingress", "alertmanager", f"{ns}/grafana", "9093/TCP"),
        )),
    }


def object_store(plan: dict) -> tuple[str, str]:
    """Namespace and port of Core's object store, read from the Loki values the plan carries."""
    host, _, port = values(plan, "loki")["loki"]["storage"]["s3"]["endpoint"].partition(":")
    return host.split(".")[1], port


def _the_meshs(policy: dict) -> bool:
    """The mesh's own NetworkPolicies in this namespace: its scrape egress and Prometheus' mesh transport."""
    return (policy["metadata"]["name"] == "prometheus-scrape-mesh"
            or policy["metadata"].get("labels", {}).get("somaagenthub.io/mesh-transport") == "true")


@pytest.mark.parametrize("stack", STACKS)
def test_the_observability_namespace_opens_exactly_the_telemetry_flows(obs, stack):
    ns = obs_namespace(stack)
    # the mesh's scrape egress (prometheus-scrape-mesh) and Prometheus' mesh transport (HBONE out, probes) are the
    # mesh's flows, checked in tests/mesh/test_istio.py and tests/mesh/test_prometheus_in_mesh.py
    mine = [p for p in objects(obs[stack], "NetworkPolicy") if p["metadata"]["namespace"] == ns and not _the_meshs(p)]
    found = flows(mine)
    parsed = platform_settings.parse(stack_config(stack), stack)
    expected = expected_observability_flows(ns, object_store(obs[stack]), parsed.core, parsed.workload_namespaces(),
                                              ClientNamespaces.of(parsed).scraped, parsed.governance.compliance)
    assert found == expected, f"unexpected: {sorted(found - expected)}\nmissing: {sorted(expected - found)}"


@pytest.mark.parametrize("stack", STACKS)
def test_other_namespaces_reach_the_observability_namespace_only_to_send_telemetry_and_be_scraped(obs, stack):
    ns = obs_namespace(stack)
    theirs = [p for p in objects(obs[stack], "NetworkPolicy") if p["metadata"]["namespace"] != ns]
    touching = {f for f in flows(theirs) if f[3].startswith(f"{ns}/")}
    store_ns, store_port = object_store(obs[stack])
    allowed = {
        ("Egress", f"{ns}/opentelemetry-collector", "4317/TCP"),  # kit: every workload sends OTLP
        ("Ingress", f"{ns}/prometheus"),  # kit: every workload is scraped on its metrics port
        ("Egress", f"{ns}/loki", "3100/TCP"),  # the node log agent pushes what containers print to Loki
        # the object store admits Loki's and Tempo's bucket traffic by their client label
        ("Ingress", f"{ns}/{pods_text(client_label('minio'))}", f"{store_port}/TCP"),
        # ClickHouse admits Grafana's audit_reader queries by the client label, from here only
        ("Ingress", f"{ns}/{pods_text(client_label('clickhouse'))}", "8123/TCP"),
        # PostgreSQL admits Grafana (its database) by the client label, from here and the owners' namespaces
        ("Ingress", f"{ns}/{pods_text(client_label('postgres'))}", "5432/TCP"),
    }
    assert any(f[0] == store_ns for f in touching), "the object store admits Loki and Tempo"
    for _, direction, _, peer, ports in touching:
        assert (direction, peer, ports) in allowed or (direction, peer) in allowed, (direction, peer, ports)


def test_the_flow_comparison_notices_an_extra_opening(obs):
    ns = obs_namespace("prod")
    mine = [copy.deepcopy(p) for p in objects(obs["prod"], "NetworkPolicy") if p["metadata"]["namespace"] == ns and not _the_meshs(p)]
    grafana = next(p for p in mine if p["metadata"]["name"] == "grafana-to-backends")
    grafana["spec"]["egress"].append({"to": [{"namespaceSelector": {}}], "ports": [{"protocol": "TCP", "port": 5432}]})
    parsed = platform_settings.parse(stack_config("prod"), "prod")
    extra = flows(mine) - expected_observability_flows(ns, object_store(obs["prod"]), parsed.core, parsed.workload_namespaces(),
                                              ClientNamespaces.of(parsed).scraped, parsed.governance.compliance)
    assert extra == {(ns, "Egress", "grafana", "*/*", "5432/TCP")}


@pytest.mark.parametrize("stack", STACKS)
def test_every_flow_says_why_it_exists(obs, stack):
    ns = obs_namespace(stack)
    for policy in objects(obs[stack], "NetworkPolicy"):
        if policy["metadata"]["namespace"] == ns and policy["metadata"]["name"] not in ("default-deny", "allow-dns-egress"):
            assert policy["metadata"]["annotations"]["somaagenthub.io/flow"].strip(), policy["metadata"]["name"]



@pytest.mark.parametrize("stack", STACKS)
def test_loki_and_tempo_wear_the_label_minio_admits(obs, stack):
    """MinIO admits other namespaces' pods only by the client label; without it Loki and Tempo could not write."""
    from components.kit.labels import client_label

    minio_ingress = [
        p for p in objects(obs[stack], "NetworkPolicy")
        if p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name") == "minio" and "Ingress" in p["spec"]["policyTypes"]
    ]
    admitted = [peer["podSelector"]["matchLabels"] for p in minio_ingress for rule in p["spec"]["ingress"] for peer in rule["from"] if "podSelector" in peer]
    assert client_label("minio") in admitted
    assert values(obs[stack], "loki")["loki"]["podLabels"] == client_label("minio")
    assert values(obs[stack], "tempo")["podLabels"] == client_label("minio")
