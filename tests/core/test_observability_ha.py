"""High availability that is real (issue 10, point 1), read from the settings and the rendered plans.

* Grafana: every replica keeps its state in one PostgreSQL database on the platform's
  CloudNativePG Cluster: grafana.ini names the Cluster's primary Service, a Database the plan
  declares and its owner role; the password reaches Grafana from Vault through ESO and is the very
  credential the role is created with; the NetworkPolicies on both ends let Grafana's pods (and no
  unlabelled pod) reach the instances on 5432.
* Tempo: what runs is what the settings say. The only Tempo chart vendored is the monolithic one,
  whose replicas do not coordinate, so ``mode: scalable`` and more than one replica are refused
  with the key named, an HA stack must say why one replica is acceptable, and the rendered Tempo is
  one single-binary pod in both stacks.

The collector's one exporter per Prometheus replica is shown in test_core_observability.py
(``test_every_prometheus_replica_is_a_target_of_the_collector``).
"""
from __future__ import annotations

import configparser
import copy
import json

import pytest

from components import settings as platform_settings
from components.config_schema import SettingsError
from tests.helpers import config_with, objects
from tools.render import stack_config

STACKS = ("dev", "prod")


def loaded(stack: str) -> platform_settings.PlatformSettings:
    return platform_settings.parse(stack_config(stack), stack)


def problems(stack: str, edit) -> list[str]:
    core = json.loads(stack_config(stack)["somaagenthub:core"])
    edit(core)
    with pytest.raises(SettingsError) as caught:
        platform_settings.parse(config_with(stack, core=core), stack)
    return caught.value.problems


# --- Tempo ----------------------------------------------------------------------------------------

def test_scalable_tempo_is_refused_naming_the_key():
    found = problems("prod", lambda c: c["observability"]["tempo"].update(mode="scalable", replicas=3))
    assert any(p.startswith("somaagenthub:core.observability.tempo.mode: 'scalable' needs the tempo-distributed chart") for p in found)
    assert any(p.startswith("somaagenthub:core.observability.tempo.replicas: single-binary Tempo replicas do not coordinate")
               and p.endswith("got 3") for p in found)


def test_a_second_single_binary_tempo_is_refused_in_dev_too():
    found = problems("dev", lambda c: c["observability"]["tempo"].update(replicas=2))
    assert found == ["somaagenthub:core.observability.tempo.replicas: single-binary Tempo replicas do not coordinate "
                     "(each compacts the shared bucket and keeps its own recent traces), so exactly 1 runs; got 2"]


def test_a_highly_available_stack_says_why_one_tempo_is_enough():
    found = problems("prod", lambda c: c["observability"]["tempo"].pop("singleReplicaReason"))
    assert found == ["somaagenthub:core.observability.tempo.singleReplicaReason: highAvailability is on, and Tempo "
                     "runs one replica; say why that is acceptable for this stack"]
    assert loaded("prod").core.observability.tempo.single_replica_reason.strip()


@pytest.mark.parametrize("stack", STACKS)
def test_the_rendered_tempo_is_the_one_single_binary_the_settings_name(plans, stack):
    tempo = loaded(stack).core.observability.tempo
    assert (tempo.mode, tempo.replicas) == ("single-binary", 1)
    ns = loaded(stack).core.namespaces.observability.name
    workloads = [o for o in objects(plans[stack]) if o["kind"] in ("Deployment", "StatefulSet")
                 and o["metadata"]["namespace"] == ns
                 and o["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/name") == "tempo"]
    assert [(w["kind"], w["metadata"]["name"], w["spec"]["replicas"]) for w in workloads] == [("StatefulSet", "tempo", 1)]
    (container,) = [c for c in workloads[0]["spec"]["template"]["spec"]["containers"] if c["name"] == "tempo"]
    # no -target flag: Tempo's default target "all" runs every component in the one process
    assert not [a for a in container["args"] if a.startswith("-target")], container["args"]


# --- Grafana --------------------------------------------------------------------------------------

def one(plan: dict, kind: str, namespace: str, name: str) -> dict:
    (found,) = [o for o in objects(plan, kind) if (o["metadata"].get("namespace"), o["metadata"]["name"]) == (namespace, name)]
    return found


def grafana_ini(plan: dict, ns: str) -> configparser.ConfigParser:
    ini = configparser.ConfigParser(interpolation=None)
    ini.read_string(one(plan, "ConfigMap", ns, "grafana")["data"]["grafana.ini"])
    return ini


def vault_write_sources(plan: dict, external_secret: dict, key: str) -> set[str]:
    """The generated credentials (RandomPassword URNs) behind the Vault path an ExternalSecret key reads."""
    (path,) = {d["remoteRef"]["key"] for d in external_secret["spec"]["data"] if d["secretKey"] == key}
    (write,) = [r for r in plan["resources"] if r["type"] == "vault:kv/secretV2:SecretV2" and r["inputs"]["name"] == path]
    return {u for u in write["dependencies"] if ":RandomPassword::" in u}


@pytest.mark.parametrize("stack", STACKS)
def test_grafana_replicas_share_one_postgres_database_and_its_owner_role(plans, stack):
    plan, s = plans[stack], loaded(stack)
    ns, data = s.core.namespaces.observability.name, s.core.namespaces.data.name
    deployment = one(plan, "Deployment", ns, "grafana")
    assert deployment["spec"]["replicas"] == s.core.observability.grafana.replicas
    database = grafana_ini(plan, ns)["database"]
    assert database["type"] == "postgres" and "password" not in database
    assert database["ssl_mode"] == "require"
    (cluster,) = objects(plan, "Cluster")
    assert database["host"] == f"{cluster['metadata']['name']}-rw.{data}.svc.cluster.local:5432"
    declared = [d["spec"] for d in objects(plan, "Database") if d["spec"]["cluster"]["name"] == cluster["metadata"]["name"]]
    assert {"name": database["name"], "owner": database["user"]} in [{"name": d["name"], "owner": d["owner"]} for d in declared]
    (role,) = [r for r in cluster["spec"]["managed"]["roles"] if r["name"] == database["user"]]
    assert (role["ensure"], role["login"]) == ("present", True)

    # the password Grafana reads is the credential the role is created with, both delivered from Vault
    (container,) = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "grafana"]
    (env,) = [e for e in container["env"] if e["name"] == "GF_DATABASE_PASSWORD"]
    ref = env["valueFrom"]["secretKeyRef"]
    grafana_side = vault_write_sources(plan, one(plan, "ExternalSecret", ns, ref["name"]), ref["key"])
    role_side = vault_write_sources(plan, one(plan, "ExternalSecret", data, role["passwordSecret"]["name"]), "password")
    assert grafana_side and grafana_side == role_side


def peer_selects(peer: dict, own_ns: str, ns: str, labels: dict) -> bool:
    if not peer.get("podSelector", {}).get("matchLabels", {}).items() <= labels.items():
        return False
    selector = peer.get("namespaceSelector")
    if selector is None:
        return ns == own_ns
    name = {"kubernetes.io/metadata.name": ns}
    return selector.get("matchLabels", {}).items() <= name.items() and all(
        e["operator"] == "In" and e["key"] == "kubernetes.io/metadata.name" and ns in e["values"]
        for e in selector.get("matchExpressions", []))


def allowed(plan: dict, direction: str, ns: str, labels: dict, peer_ns: str, peer_labels: dict, port: int) -> bool:
    """Whether some NetworkPolicy selecting the pod (``ns``, ``labels``) allows ``direction`` to or from the peer pod."""
    key, peers = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for policy in objects(plan, "NetworkPolicy"):
        spec = policy["spec"]
        if policy["metadata"]["namespace"] != ns or direction not in spec["policyTypes"]:
            continue
        if not spec["podSelector"].get("matchLabels", {}).items() <= labels.items():
            continue
        for rule in spec.get(key, []):
            if rule.get("ports") and port not in {p["port"] for p in rule["ports"]}:
                continue
            if any(peer_selects(p, ns, peer_ns, peer_labels) for p in rule.get(peers, [])):
                return True
    return False


def grafana_reaches_its_database(plan: dict, s: platform_settings.PlatformSettings) -> list[str]:
    ns, data = s.core.namespaces.observability.name, s.core.namespaces.data.name
    grafana_pods = one(plan, "Deployment", ns, "grafana")["spec"]["template"]["metadata"]["labels"]
    (cluster,) = objects(plan, "Cluster")
    instance = {"cnpg.io/cluster": cluster["metadata"]["name"]}  # CloudNativePG labels every instance pod so
    missing = []
    if not allowed(plan, "Egress", ns, grafana_pods, data, instance, 5432):
        missing.append("egress from Grafana")
    if not allowed(plan, "Ingress", data, instance, ns, grafana_pods, 5432):
        missing.append("ingress to the instances")
    return missing


@pytest.mark.parametrize("stack", STACKS)
def test_grafana_reaches_its_database_and_an_unlabelled_pod_does_not(plans, stack):
    s = loaded(stack)
    assert grafana_reaches_its_database(plans[stack], s) == []
    ns, data = s.core.namespaces.observability.name, s.core.namespaces.data.name
    (cluster,) = objects(plans[stack], "Cluster")
    instance = {"cnpg.io/cluster": cluster["metadata"]["name"]}
    assert not allowed(plans[stack], "Ingress", data, instance, ns, {"app.kubernetes.io/name": "loki"}, 5432)


def test_the_reach_check_notices_grafana_without_the_client_label(plans):
    broken = copy.deepcopy(plans["prod"])
    for r in broken["resources"]:
        if r["inputs"].get("kind") == "Deployment" and r["inputs"]["metadata"]["name"] == "grafana":
            r["inputs"]["spec"]["template"]["metadata"]["labels"].pop("somaagenthub.io/postgres-client")
    assert grafana_reaches_its_database(broken, loaded("prod")) == ["ingress to the instances"]
