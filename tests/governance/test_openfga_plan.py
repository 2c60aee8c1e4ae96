"""OpenFGA in the rendered plans: HA in prod, credentials only from Vault, migrations before the servers, the
model bootstrap after them, scraping and traces, and who may reach the API under both enforcing layers."""
from __future__ import annotations

import pytest

from components.governance import openfga
from components.settings import parse
from tests.helpers import by_type, objects, pod_specs, stack_config, waits_for

STACKS = ("dev", "staging", "prod")
NS = "soma-governance"
AGENTS = "soma-agents"


def _in(plan: dict, kind: str, namespace: str = NS) -> list[dict]:
    return [o for o in objects(plan, kind) if o["metadata"].get("namespace") == namespace]


def _one(plan: dict, kind: str, name: str, namespace: str = NS) -> dict:
    (found,) = [o for o in _in(plan, kind, namespace) if o["metadata"]["name"] == name]
    return found


def _matches(selector: dict | None, labels: dict) -> bool:
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        assert e["operator"] == "In", e
        if labels.get(e["key"]) not in e["values"]:
            return False
    return True


def network_admits(plan: dict, source_ns: str, source_pod: dict, port: int) -> bool:
    """Some Ingress NetworkPolicy of the governance namespace lets ``source_pod`` reach the servers on ``port``."""
    for policy in _in(plan, "NetworkPolicy"):
        spec = policy["spec"]
        if "Ingress" not in spec["policyTypes"] or not spec["podSelector"] or not _matches(spec["podSelector"], openfga.POD_LABELS):
            continue
        for rule in spec.get("ingress", []):
            if rule.get("ports") and not any(p["port"] == port for p in rule["ports"]):
                continue
            for peer in rule["from"]:
                names = {"kubernetes.io/metadata.name": source_ns}
                ns_ok = _matches(peer["namespaceSelector"], names) if "namespaceSelector" in peer else source_ns == NS
                if ns_ok and "ipBlock" not in peer and _matches(peer.get("podSelector"), source_pod):
                    return True
    return False


def mesh_admits(plan: dict, source_ns: str, principal: str, port: int) -> bool:
    """ztunnel's decision for the servers: a matching DENY refuses, else some ALLOW must match."""
    def source_matches(source: dict) -> bool:
        if "namespaces" in source and source_ns not in source["namespaces"] and "*" not in source["namespaces"]:
            return False
        if "principals" in source and principal not in source["principals"]:
            return False
        return not ("notPrincipals" in source and principal in source["notPrincipals"])

    def rule_matches(rule: dict) -> bool:
        ports_ok = not rule.get("to") or any(str(port) in to["operation"].get("ports", []) for to in rule["to"])
        return ports_ok and any(source_matches(entry["source"]) for entry in rule.get("from", []))

    policies = [p["spec"] for p in _in(plan, "AuthorizationPolicy") if "targetRefs" not in p["spec"]
                and _matches(p["spec"].get("selector"), openfga.POD_LABELS)]
    if any(p.get("action") == "DENY" and any(rule_matches(r) for r in p.get("rules", [])) for p in policies):
        return False
    return any(p.get("action", "ALLOW") == "ALLOW" and any(rule_matches(r) for r in p.get("rules", [])) for p in policies)


def principal(stack: str, namespace: str, account: str) -> str:
    return f"{parse(stack_config(stack), stack).mesh.identity.trust_domain}/ns/{namespace}/sa/{account}"


@pytest.mark.parametrize("stack", STACKS)
def test_prod_runs_servers_on_separate_nodes_and_keeps_one_up(plans, stack):
    plan = plans[stack]
    deployment = _one(plan, "Deployment", openfga.RELEASE)
    replicas = deployment["spec"]["replicas"]
    pod = deployment["spec"]["template"]["spec"]
    budgets = [b for b in _in(plan, "PodDisruptionBudget") if _matches(b["spec"]["selector"], openfga.POD_LABELS)]
    if parse(stack_config(stack), stack).high_availability:
        assert replicas >= 2
        term = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
        assert term["topologyKey"] == "kubernetes.io/hostname" and term["labelSelector"]["matchLabels"] == openfga.POD_LABELS
        assert [b["spec"]["maxUnavailable"] for b in budgets] == [1]
    else:
        assert replicas == 1 and budgets == []


@pytest.mark.parametrize("stack", STACKS)
def test_the_datastore_credentials_come_only_from_the_secret_vault_fills(plans, stack):
    plan = plans[stack]
    deployment = _one(plan, "Deployment", openfga.RELEASE)
    migrate = _one(plan, "Job", openfga.MIGRATE_JOB)
    delivered = _one(plan, "ExternalSecret", "openfga-datastore")
    assert {d["secretKey"] for d in delivered["spec"]["data"]} >= {"uri", "username", "password"}
    for pod in (deployment["spec"]["template"]["spec"], migrate["spec"]["template"]["spec"]):
        (container,) = pod["containers"]
        env = {e["name"]: e for e in container["env"]}
        for name in ("OPENFGA_DATASTORE_URI", "OPENFGA_DATASTORE_USERNAME", "OPENFGA_DATASTORE_PASSWORD"):
            assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "openfga-datastore" and "value" not in env[name]
        assert env["OPENFGA_DATASTORE_ENGINE"]["value"] == "postgres"
    assert _in(plan, "Secret") == [] or all("openfga" not in s["metadata"]["name"] for s in _in(plan, "Secret"))
    assert "init" not in str(deployment["spec"]["template"]["spec"].get("initContainers", "")), "the chart's migration waiter is off"


@pytest.mark.parametrize("stack", STACKS)
def test_migrations_run_before_the_servers_and_the_model_is_written_after_them(plans, stack):
    plan = plans[stack]
    migrate_job = [r for r in by_type(plan, "kubernetes:batch/v1:Job") if r["inputs"]["metadata"]["name"] == openfga.MIGRATE_JOB][0]
    bootstrap_job = [r for r in by_type(plan, "kubernetes:batch/v1:Job") if r["inputs"]["metadata"]["name"] == openfga.BOOTSTRAP_JOB][0]
    deployment = [r for r in by_type(plan, "kubernetes:apps/v1:Deployment") if r["inputs"]["metadata"]["name"] == openfga.RELEASE
                  and r["inputs"]["metadata"].get("namespace") == NS][0]
    assert waits_for(plan, deployment, migrate_job["urn"])
    assert waits_for(plan, bootstrap_job, deployment["urn"]) or any(
        waits_for(plan, bootstrap_job, c["urn"]) for c in by_type(plan, "kubernetes:helm.sh/v4:Chart") if c["name"] == openfga.RELEASE)
    server_image = deployment["inputs"]["spec"]["template"]["spec"]["containers"][0]["image"]
    (migration,) = migrate_job["inputs"]["spec"]["template"]["spec"]["containers"]
    assert migration["image"] == server_image and migration["args"] == ["migrate"]


@pytest.mark.parametrize("stack", STACKS)
def test_only_the_gateway_the_orchestrator_and_the_bootstrap_reach_the_api(plans, stack):
    plan = plans[stack]
    bootstrap = openfga.selector(openfga.BOOTSTRAP_JOB)
    for port in openfga.API_PORTS:
        for app in openfga.CLIENT_APPS:
            pod = {"app.kubernetes.io/name": app}
            assert network_admits(plan, AGENTS, pod, port), (app, port)
            assert mesh_admits(plan, AGENTS, principal(stack, AGENTS, app), port), (app, port)
        assert network_admits(plan, NS, bootstrap, port) and mesh_admits(plan, NS, principal(stack, NS, openfga.BOOTSTRAP_JOB), port)
        # another pod of the agents namespace: refused by both layers
        other = {"app.kubernetes.io/name": "memory-gateway"}
        assert not network_admits(plan, AGENTS, other, port)
        assert not mesh_admits(plan, AGENTS, principal(stack, AGENTS, "memory-gateway"), port)
        # a pod labelled "gateway" in another namespace (the edge's Envoy namespace, say): refused by both
        assert not network_admits(plan, "soma-edge", {"app.kubernetes.io/name": "gateway"}, port)
        assert not mesh_admits(plan, "soma-edge", principal(stack, "soma-edge", "gateway"), port)
        # another pod of the governance namespace (the migration Job): refused
        assert not network_admits(plan, NS, openfga.selector(openfga.MIGRATE_JOB), port)
    # the chart's extra ports are not open to anyone
    for port in (3000, 3001):
        assert not network_admits(plan, AGENTS, {"app.kubernetes.io/name": "gateway"}, port)


@pytest.mark.parametrize("stack", STACKS)
def test_metrics_are_scraped_and_traces_go_to_the_collector(plans, stack):
    plan = plans[stack]
    monitor = _one(plan, "ServiceMonitor", openfga.RELEASE)
    service = _one(plan, "Service", openfga.RELEASE)
    assert _matches(monitor["spec"]["selector"], service["metadata"]["labels"])
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]}["metrics"] == openfga.METRICS_PORT
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    prometheus = {"app.kubernetes.io/name": "prometheus"}
    assert network_admits(plan, "soma-observability", prometheus, openfga.METRICS_PORT)
    assert mesh_admits(plan, "soma-observability", "any", openfga.METRICS_PORT)
    env = {e["name"]: e.get("value") for e in _one(plan, "Deployment", openfga.RELEASE)["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["OPENFGA_TRACE_ENABLED"] == "true"
    assert env["OPENFGA_TRACE_OTLP_ENDPOINT"] == "opentelemetry-collector.soma-observability.svc.cluster.local:4317"
    assert env["OPENFGA_PLAYGROUND_ENABLED"] == "false"


@pytest.mark.parametrize("stack", STACKS)
def test_the_bootstrap_job_ships_the_tested_model_and_its_vault_role_is_narrow(plans, stack):
    plan = plans[stack]
    files = _one(plan, "ConfigMap", openfga.BOOTSTRAP_JOB)["data"]
    assert files["model.json"] == openfga.MODEL_JSON.read_text() and files["bootstrap.py"] == openfga.BOOTSTRAP_SCRIPT.read_text()
    (policy,) = [p["inputs"] for p in by_type(plan, "vault:index/policy:Policy") if p["inputs"]["name"] == openfga.bootstrap_role(NS)]
    assert policy["policy"].count("path ") == 1 and f"/data/{NS}/openfga/authorization" in policy["policy"]
    (role,) = [r["inputs"] for r in by_type(plan, "vault:kubernetes/authBackendRole:AuthBackendRole")
               if r["inputs"]["roleName"] == openfga.bootstrap_role(NS)]
    assert role["boundServiceAccountNames"] == [openfga.BOOTSTRAP_JOB] and role["boundServiceAccountNamespaces"] == [NS]
    for obj, spec in pod_specs(plan):
        if obj["metadata"].get("namespace") == NS and obj["metadata"]["name"] in (openfga.MIGRATE_JOB, openfga.BOOTSTRAP_JOB, openfga.RELEASE):
            assert spec["securityContext"]["runAsNonRoot"] is True
