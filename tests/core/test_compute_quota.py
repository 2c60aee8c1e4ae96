"""Every namespace's pods fit its CPU and memory ResourceQuota, in every stack.

A ResourceQuota refuses the pod whose requests would cross ``requests.cpu`` or ``requests.memory``:
it never starts, and the only trace is an event on its ReplicaSet or StatefulSet. So the requests
are summed from what the plan runs, the pods operators start included, as a lower bound (sidecars
an operator adds on its own, such as config reloaders, are not known here):

* Deployments, StatefulSets (x replicas), Jobs and CronJobs (one pod at a time); a pod asks for
  the larger of its containers' sum and its largest init container (Kubernetes' effective request);
* CloudNativePG ``Cluster``: ``resources`` x instances; Strimzi ``KafkaNodePool``: ``resources`` x
  replicas; Prometheus and Alertmanager: ``resources`` x replicas (x shards); Altinity installations:
  each pod template's containers x the pods of the layout.

DaemonSets run one pod per node, which the plan cannot count: their namespace's quota bounds them
by ``pods`` (the node log agent's runbook says so).
"""
from __future__ import annotations

import copy
import re
from collections import defaultdict

import pytest

from tests.helpers import objects, platform_quotas

STACKS = ("dev", "staging", "prod")
MEMORY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "": 1}


def millicores(value: object) -> int:
    text = str(value)
    return int(text[:-1]) if text.endswith("m") else int(float(text) * 1000)


def byte_count(value: object) -> int:
    match = re.fullmatch(r"([0-9.]+)(Ki|Mi|Gi|Ti|k|M|G|T|)", str(value))
    assert match, f"not a memory quantity: {value!r}"
    return int(float(match.group(1)) * MEMORY[match.group(2)])


def requested(resources: dict | None) -> tuple[int, int]:
    asked = (resources or {}).get("requests") or {}
    return millicores(asked.get("cpu", 0)), byte_count(asked.get("memory", 0))


def pod_request(spec: dict) -> tuple[int, int]:
    main = [requested(c.get("resources")) for c in spec.get("containers") or []]
    init = [requested(c.get("resources")) for c in spec.get("initContainers") or []]
    cpu, memory = sum(c for c, _ in main), sum(m for _, m in main)
    return max([cpu, *(c for c, _ in init)]), max([memory, *(m for _, m in init)])


def pods_of(obj: dict) -> list[tuple[str, int, tuple[int, int]]]:
    """(what, how many pods, request of one) for each kind of pod ``obj`` makes."""
    kind, spec, name = obj["kind"], obj.get("spec", {}), obj["metadata"]["name"]
    api = obj.get("apiVersion", "")
    if kind in ("Deployment", "StatefulSet"):
        return [(f"{kind} {name}", int(spec.get("replicas", 1)), pod_request(spec["template"]["spec"]))]
    if kind == "Job":
        return [(f"Job {name}", 1, pod_request(spec["template"]["spec"]))]
    if kind == "CronJob":
        return [(f"CronJob {name}", 1, pod_request(spec["jobTemplate"]["spec"]["template"]["spec"]))]
    if kind == "Cluster" and api.startswith("postgresql.cnpg.io/"):
        return [(f"Cluster {name}", int(spec["instances"]), requested(spec.get("resources")))]
    if kind == "KafkaNodePool":
        return [(f"KafkaNodePool {name}", int(spec["replicas"]), requested(spec.get("resources")))]
    if kind in ("Prometheus", "Alertmanager") and api.startswith("monitoring.coreos.com/"):
        return [(f"{kind} {name}", int(spec.get("replicas", 1)) * int(spec.get("shards", 1)), requested(spec.get("resources")))]
    if kind in ("ClickHouseInstallation", "ClickHouseKeeperInstallation"):
        layouts = [c.get("layout", {}) for c in spec["configuration"]["clusters"]]
        count = sum(int(layout.get("shardsCount", 1)) * int(layout.get("replicasCount", 1)) for layout in layouts)
        return [(f"{kind} {name}/{t['name']}", count, pod_request(t["spec"])) for t in spec["templates"]["podTemplates"]]
    return []


def totals(plan: dict) -> dict[str, tuple[int, int, list[str]]]:
    summed: dict[str, list] = defaultdict(lambda: [0, 0, []])
    for obj in objects(plan):
        for what, count, (cpu, memory) in pods_of(obj):
            entry = summed[obj["metadata"].get("namespace", "")]
            entry[0] += cpu * count
            entry[1] += memory * count
            entry[2].append(what)
    return {ns: (cpu, memory, sources) for ns, (cpu, memory, sources) in summed.items()}


def quota_problems(plan: dict) -> list[str]:
    hard = platform_quotas(plan)
    problems = []
    for ns, (cpu, memory, _) in sorted(totals(plan).items()):
        quota = hard.get(ns)
        if quota is None:
            problems.append(f"{ns}: runs pods but has no ResourceQuota")
            continue
        if cpu > millicores(quota["requests.cpu"]):
            problems.append(f"{ns}: pods request {cpu}m CPU, quota requests.cpu is {quota['requests.cpu']}")
        if memory > byte_count(quota["requests.memory"]):
            problems.append(f"{ns}: pods request {memory / 2**30:.2f}Gi memory, quota requests.memory is {quota['requests.memory']}")
    return problems


@pytest.mark.parametrize("stack", STACKS)
def test_every_namespace_s_pods_fit_its_cpu_and_memory_quota(plans, stack):
    plan = plans[stack]
    found = totals(plan)
    kinds = {source.split()[0] for _, _, sources in found.values() for source in sources}
    assert {"Deployment", "StatefulSet", "Cluster", "KafkaNodePool", "ClickHouseInstallation", "Prometheus"} <= kinds
    assert quota_problems(plan) == []


def test_the_quota_check_notices_a_replica_count_past_the_quota(plans):
    plan = copy.deepcopy(plans["prod"])
    (cluster,) = [r for r in plan["resources"] if r["inputs"].get("kind") == "Cluster"]
    cluster["inputs"]["spec"]["instances"] = 40
    assert any(p.startswith("soma-data: pods request") for p in quota_problems(plan))
