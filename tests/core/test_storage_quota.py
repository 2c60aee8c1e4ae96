"""Every volume the plan claims fits its namespace's ResourceQuota, in every stack.

A ResourceQuota refuses the PersistentVolumeClaim that would cross ``requests.storage`` or
``persistentvolumeclaims``: the pod that needs it stays Pending, long after ``pulumi up`` said
yes. So the claims are summed here from everything in the plan that will create them, the
objects the charts render included (Qdrant, Vault, Loki, Tempo, Grafana, kube-prometheus-stack):

* StatefulSets: ``volumeClaimTemplates`` x replicas;
* PersistentVolumeClaims: one each;
* Prometheus and Alertmanager (the operator makes the StatefulSets): ``storage.volumeClaimTemplate``
  x replicas (x shards for Prometheus);
* CloudNativePG ``Cluster``: ``storage`` + ``walStorage`` x instances;
* Strimzi ``KafkaNodePool``: its persistent-claim volumes x replicas;
* Altinity ``ClickHouseInstallation`` / ``ClickHouseKeeperInstallation``: the volume claim
  templates the defaults use x the pods of the layout (shards x replicas).
"""
from __future__ import annotations

import copy
import re
from collections import defaultdict
from dataclasses import dataclass

import pytest

from tests.helpers import objects, platform_quotas

STACKS = ("dev", "staging", "prod")
UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "": 1}
GI = 2**30


def quantity(value: str) -> int:
    """Bytes of a Kubernetes storage quantity such as ``500Gi`` or ``1Ti``."""
    match = re.fullmatch(r"([0-9.]+)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|)", str(value))
    assert match, f"not a storage quantity: {value!r}"
    return int(float(match.group(1)) * UNITS[match.group(2)])


@dataclass(frozen=True)
class Claims:
    """What one source claims: ``count`` volumes totalling ``size`` bytes, in ``namespace``."""

    source: str
    namespace: str
    size: int
    count: int


def claims(what: str, namespace: str, sizes: list[str], pods: int) -> Claims:
    return Claims(what, namespace, sum(quantity(s) for s in sizes) * pods, len(sizes) * pods)


def object_claims(obj: dict) -> list[Claims]:
    kind, ns, name, spec = obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"], obj.get("spec", {})
    what = f"{kind} {name}"
    if kind == "StatefulSet":
        sizes = [t["spec"]["resources"]["requests"]["storage"] for t in spec.get("volumeClaimTemplates", [])]
        return [claims(what, ns, sizes, int(spec.get("replicas", 1)))]
    if kind == "PersistentVolumeClaim":
        return [claims(what, ns, [spec["resources"]["requests"]["storage"]], 1)]
    if kind in ("Prometheus", "Alertmanager") and obj["apiVersion"].startswith("monitoring.coreos.com/"):
        template = spec.get("storage", {}).get("volumeClaimTemplate")
        sizes = [template["spec"]["resources"]["requests"]["storage"]] if template else []
        return [claims(what, ns, sizes, int(spec.get("replicas", 1)) * int(spec.get("shards", 1)))]
    if kind == "Cluster" and obj["apiVersion"].startswith("postgresql.cnpg.io/"):
        sizes = [spec["storage"]["size"]] + ([spec["walStorage"]["size"]] if "walStorage" in spec else [])
        return [claims(what, ns, sizes, int(spec["instances"]))]
    if kind == "KafkaNodePool":
        storage = spec["storage"]
        volumes = storage["volumes"] if storage["type"] == "jbod" else [storage]
        sizes = [v["size"] for v in volumes if v["type"] == "persistent-claim"]
        return [claims(what, ns, sizes, int(spec["replicas"]))]
    if kind in ("ClickHouseInstallation", "ClickHouseKeeperInstallation"):
        used = {v for k, v in spec.get("defaults", {}).get("templates", {}).items() if k.endswith("VolumeClaimTemplate")}
        templates = {t["name"]: t for t in spec.get("templates", {}).get("volumeClaimTemplates", [])}
        sizes = [templates[n]["spec"]["resources"]["requests"]["storage"] for n in sorted(used)]
        layouts = [c.get("layout", {}) for c in spec["configuration"]["clusters"]]
        pods = sum(int(layout.get("shardsCount", 1)) * int(layout.get("replicasCount", 1)) for layout in layouts)
        return [claims(what, ns, sizes, pods)]
    return []


def all_claims(plan: dict) -> list[Claims]:
    return [c for obj in objects(plan) for c in object_claims(obj) if c.count]


def totals(plan: dict) -> dict[str, tuple[int, int]]:
    """``{namespace: (bytes, claims)}``."""
    summed: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for c in all_claims(plan):
        summed[c.namespace][0] += c.size
        summed[c.namespace][1] += c.count
    return {ns: (size, count) for ns, (size, count) in summed.items()}


def quota_problems(plan: dict) -> list[str]:
    by_namespace = platform_quotas(plan)
    problems = []
    for ns, (size, count) in sorted(totals(plan).items()):
        if ns not in by_namespace:
            problems.append(f"{ns}: claims storage but has no ResourceQuota")
            continue
        hard = by_namespace[ns]
        if size > quantity(hard["requests.storage"]):
            problems.append(f"{ns}: claims {size / GI:g}Gi, quota requests.storage is {hard['requests.storage']}")
        if count > int(hard["persistentvolumeclaims"]):
            problems.append(f"{ns}: claims {count} volumes, quota persistentvolumeclaims is {hard['persistentvolumeclaims']}")
    return problems


@pytest.mark.parametrize("stack", STACKS)
def test_every_namespace_claims_within_its_storage_quota(plans, stack):
    assert quota_problems(plans[stack]) == []


@pytest.mark.parametrize("stack", STACKS)
def test_the_sum_sees_every_store_of_core(plans, stack):
    from components import settings
    from tools.render import stack_config

    sources = {c.source for c in all_claims(plans[stack])}
    expected = {
        "StatefulSet minio", "Cluster app-db", "ClickHouseInstallation audit", "StatefulSet qdrant",
        "Prometheus kps-prometheus", "Alertmanager kps-alertmanager", "StatefulSet tempo",
    }
    assert expected <= sources, expected - sources
    assert any(s.startswith("KafkaNodePool ") for s in sources)
    stack_settings = settings.parse(stack_config(stack), stack)
    scalable = stack_settings.core.observability.loki.mode == "scalable"
    loki = {"StatefulSet loki-write", "StatefulSet loki-backend"} if scalable else {"StatefulSet loki"}
    assert loki <= sources, loki - sources
    if stack_settings.core.vault.mode == "raft":
        assert {"ClickHouseKeeperInstallation audit", "StatefulSet vault", "KafkaNodePool controllers", "KafkaNodePool brokers"} <= sources
    else:
        assert "StatefulSet vault" not in sources, "dev-mode Vault keeps its data in memory"


def test_chart_claims_count_the_replicas_the_settings_ask_for(plans):
    """The chart-rendered claims are sized and multiplied by the stack settings, as a cluster would see them."""
    from components import settings
    from tools.render import stack_config

    core = settings.parse(stack_config("prod"), "prod").core
    found = {c.source: c for c in all_claims(plans["prod"])}
    assert found["StatefulSet vault"] == Claims("StatefulSet vault", "soma-secrets", quantity(core.vault.storage) * core.vault.replicas, core.vault.replicas)
    prometheus = core.observability.prometheus
    assert found["Prometheus kps-prometheus"].size == quantity(prometheus.storage) * prometheus.replicas
    assert found["Alertmanager kps-alertmanager"].count == prometheus.alertmanager_replicas
    tempo = core.observability.tempo
    assert found["StatefulSet tempo"].size == quantity(tempo.storage) * tempo.replicas


def test_prod_kafka_controllers_claim_their_own_small_volume(plans):
    from components import settings
    from tools.render import stack_config

    kafka = settings.parse(stack_config("prod"), "prod").core.kafka
    pools = {c.source: c for c in all_claims(plans["prod"]) if c.source.startswith("KafkaNodePool ")}
    assert pools["KafkaNodePool controllers"].size == quantity(kafka.controller_storage) * kafka.controllers
    assert quantity(kafka.controller_storage) < quantity(kafka.storage)


def test_the_quota_check_notices_a_size_raised_past_the_quota(plans):
    broken = copy.deepcopy(plans["prod"])
    for r in broken["resources"]:
        if r["inputs"].get("kind") == "StatefulSet" and r["inputs"]["metadata"]["name"] == "minio":
            for template in r["inputs"]["spec"]["volumeClaimTemplates"]:
                template["spec"]["resources"]["requests"]["storage"] = "2Ti"
    (problem,) = quota_problems(broken)
    assert problem.startswith("soma-data: claims ") and "requests.storage" in problem


def test_the_quota_check_notices_too_many_claims(plans):
    broken = copy.deepcopy(plans["prod"])
    for r in broken["resources"]:
        if r["inputs"].get("kind") == "ResourceQuota" and r["inputs"]["metadata"]["namespace"] == "soma-observability":
            r["inputs"]["spec"]["hard"]["persistentvolumeclaims"] = 3
    assert [p for p in quota_problems(broken) if "persistentvolumeclaims" in p] == [
        f"soma-observability: claims {totals(plans['prod'])['soma-observability'][1]} volumes, quota persistentvolumeclaims is 3"
    ]
