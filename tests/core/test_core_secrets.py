"""Core secrets: Vault and External Secrets, and that no credential is ever written in clear."""
from __future__ import annotations

import json
import re

import pytest

from components import settings
from components.core.secrets.vault_access import SecretConsumer, policy_hcl
from policies.rules.no_plaintext_secrets import is_sensitive_key
from tests.helpers import by_type, config_with, objects, stack_document
from tools.render import render, stack_config

STACKS = ("dev", "prod")
SECRET = "[secret]"
CHART = "kubernetes:helm.sh/v4:Chart"


def loaded(stack: str) -> settings.PlatformSettings:
    return settings.parse(stack_config(stack), stack)


def chart(plan: dict, name: str) -> dict:
    return next(r["inputs"] for r in by_type(plan, CHART) if r["name"] == name)


SELECTOR_FIELDS = {"key", "secretKey", "topologyKey", "existingSecret", "userKey", "passwordKey"}
"""These *name* something: a key of a Secret (secretKeyRef, remoteRef, caProvider, ExternalSecret data, a chart's
``userKey``/``passwordKey``), a Secret (a chart's ``existingSecret``) or a node label (``topologyKey``)."""
ENV_REFERENCE = re.compile(r"^\$\{[A-Z][A-Z0-9_]*\}$")
"""``${AWS_SECRET_ACCESS_KEY}``: expanded by the process from an env var filled by secretKeyRef, not a value."""


def sensitive_literals(value, path="") -> list[str]:
    """Paths whose key names a credential and whose value is a literal (a Pulumi secret included)."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}"
            literal = isinstance(item, (str, int, float)) and not isinstance(item, bool) and item != "" and not ENV_REFERENCE.match(str(item))
            if literal and key not in SELECTOR_FIELDS and is_sensitive_key(str(key)):
                found.append(f"{here}={item!r}")
            found.extend(sensitive_literals(item, here))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, dict) and "name" in item and "value" in item and is_sensitive_key(str(item["name"])) and item["value"] not in ("", None):
                found.append(f"{path}[{i}] env {item['name']}")
            found.extend(sensitive_literals(item, f"{path}[{i}]"))
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_no_generated_credential_appears_anywhere_in_the_plan(rendered, stack):
    plan, generated, folder = rendered[stack]
    assert len(generated) >= 15, "the stack generates its credentials with pulumi-random"
    text = (folder / "plan.json").read_text()
    manifests = "".join(p.read_text() for p in (folder / "manifests").rglob("*.yaml"))
    leaked = [name for name, value in generated.items() if value in text or value in manifests]
    assert not leaked, f"generated credentials written in clear: {leaked}"


@pytest.mark.parametrize("stack", STACKS)
def test_no_key_that_names_a_credential_holds_a_literal(plans, stack):
    """Kubernetes objects and chart values: nothing, not even a Pulumi secret, under a credential-like key.

    The one exception is dev's Vault root token, which dev mode takes as a chart value (see vault_server.py).
    """
    found = []
    for r in plans[stack]["resources"]:
        if r["type"].startswith("kubernetes:"):
            found += [f"{r['name']}{p}" for p in sensitive_literals(r["inputs"])]
    allowed = {"vault.values.server.dev.devRootToken='[secret]'"} if stack == "dev" else set()
    assert set(found) == allowed


def test_the_sensitive_key_check_catches_a_literal():
    assert sensitive_literals({"env": [{"name": "DB_PASSWORD", "value": "hunter2"}]})
    assert sensitive_literals({"data": {"apiKey": "abc"}})
    assert sensitive_literals({"s3": {"secretAccessKey": "${AWS_SECRET_ACCESS_KEY}x"}})
    assert not sensitive_literals({"s3": {"secretAccessKey": "${AWS_SECRET_ACCESS_KEY}"}})
    assert not sensitive_literals({"env": [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "x", "key": "y"}}}]})


@pytest.mark.parametrize("stack", STACKS)
def test_credentials_go_to_vault_as_secrets(plans, stack):
    written = by_type(plans[stack], "vault:kv/secretV2:SecretV2")
    assert written and all(r["inputs"]["dataJson"] == SECRET for r in written)
    assert not objects(plans[stack], "Secret"), "no Secret manifest: workloads get ESO-managed Secrets only"


@pytest.mark.parametrize("stack", STACKS)
def test_every_consumer_reads_through_its_own_restricted_store(plans, stack):
    plan = plans[stack]
    stores = {o["metadata"]["name"]: o["spec"] for o in objects(plan, "ClusterSecretStore")}
    roles = {r["inputs"]["roleName"]: r["inputs"] for r in by_type(plan, "vault:kubernetes/authBackendRole:AuthBackendRole")}
    assert stores and set(stores) == {f"vault-{role}" for role in roles}
    for name, spec in stores.items():
        role = roles[name.removeprefix("vault-")]
        (namespace,) = role["boundServiceAccountNamespaces"]
        (account,) = role["boundServiceAccountNames"]
        assert spec["conditions"] == [{"namespaces": [namespace]}], name
        auth = spec["provider"]["vault"]["auth"]["kubernetes"]
        assert auth["role"] == role["roleName"]
        assert auth["serviceAccountRef"] == {"name": account, "namespace": namespace, "audiences": ["vault"]}
        assert role["tokenPolicies"] == [role["roleName"]]
    for es in objects(plan, "ExternalSecret"):
        store = stores[es["spec"]["secretStoreRef"]["name"]]
        assert store["conditions"][0]["namespaces"] == [es["metadata"]["namespace"]], es["metadata"]["name"]


@pytest.mark.parametrize("stack", STACKS)
def test_every_secret_a_pod_reads_is_managed_by_external_secrets(plans, stack):
    plan = plans[stack]
    managed = {(o["metadata"]["namespace"], o["spec"]["target"]["name"]) for o in objects(plan, "ExternalSecret")}
    referenced = set()
    for obj in objects(plan):
        ns = obj["metadata"].get("namespace")

        def walk(node):
            if isinstance(node, dict):
                ref = node.get("secretKeyRef")
                if isinstance(ref, dict):
                    referenced.add((ns, ref["name"]))
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)

        walk(obj.get("spec", {}))
    generated_by_operators = {(ns, n) for ns, n in referenced if n.endswith("-cluster-ca-cert")}
    assert referenced, "the plan has consumers"
    assert referenced - generated_by_operators <= managed, sorted(referenced - managed)


@pytest.mark.parametrize("stack", STACKS)
def test_vault_policies_are_exactly_the_least_privilege_documents(plans, stack):
    plan = plans[stack]
    mount = loaded(stack).core.vault.kv_mount
    roles = {r["inputs"]["roleName"]: r["inputs"] for r in by_type(plan, "vault:kubernetes/authBackendRole:AuthBackendRole")}
    policies = by_type(plan, "vault:index/policy:Policy")
    assert len(policies) == len(roles)
    for p in policies:
        role = roles[p["inputs"]["name"]]
        namespace = role["boundServiceAccountNamespaces"][0]
        service = p["inputs"]["name"].removeprefix(f"{namespace}-")
        consumer = SecretConsumer(service=service, namespace=namespace, service_account=role["boundServiceAccountNames"][0], secrets=("x",))
        assert p["inputs"]["policy"] == policy_hcl(consumer, mount)


def test_dev_runs_one_dev_mode_vault_and_prod_an_ha_raft_cluster_with_tls(plans):
    dev = chart(plans["dev"], "vault")["values"]
    assert dev["server"]["dev"]["enabled"] is True and dev["server"]["dev"]["devRootToken"] == SECRET
    assert dev["injector"]["enabled"] is False and dev["csi"]["enabled"] is False
    prod = chart(plans["prod"], "vault")["values"]
    ha = prod["server"]["ha"]
    assert "dev" not in prod["server"] and prod["global"]["tlsDisable"] is False
    assert ha["replicas"] == loaded("prod").core.vault.replicas == 3 and ha["raft"]["enabled"] is True
    assert ha["disruptionBudget"]["enabled"] is True
    assert "tls_cert_file" in ha["raft"]["config"] and 'storage "raft"' in ha["raft"]["config"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" in prod["server"]["affinity"]["podAntiAffinity"]
    assert prod["server"]["dataStorage"]["size"] == loaded("prod").core.vault.storage
    certs = {o["metadata"]["name"]: o["spec"] for o in objects(plans["prod"], "Certificate")}
    assert "127.0.0.1" in certs["vault-tls"]["ipAddresses"]
    assert by_type(plans["prod"], "vault:index/audit:Audit")


def test_the_deployer_token_never_comes_from_a_stack_file(plans):
    (prod_provider,) = by_type(plans["prod"], "pulumi:providers:vault")
    assert "token" not in prod_provider["inputs"], "prod reads VAULT_TOKEN from the deployer's environment"
    (dev_provider,) = by_type(plans["dev"], "pulumi:providers:vault")
    assert dev_provider["inputs"]["token"] == SECRET
    for stack in STACKS:
        assert "token" not in json.dumps(stack_document(stack)["somaagenthub:core"]["vault"]).lower()


def test_first_up_before_vault_is_configured_builds_no_vault_configuration_and_no_store():
    core = stack_document("dev")["somaagenthub:core"]
    core["vault"]["configure"] = False
    plan = render("dev", config=config_with("dev", core=core))
    assert not [r for r in plan["resources"] if r["type"].startswith("vault:")]
    assert not by_type(plan, "somaagenthub:core:DataStores")
    assert any(r["name"] == "vault" for r in by_type(plan, CHART))


@pytest.mark.parametrize("stack", STACKS)
def test_charts_take_images_only_from_the_catalog(plans, stack):
    charts = {r["name"]: r["inputs"]["values"] for r in by_type(plans[stack], CHART)}
    for name, values in charts.items():
        text = json.dumps(values)
        assert "latest" not in text, name
    assert "@sha256:" in charts["vault"]["server"]["image"]["tag"]
    assert charts["external-secrets"]["webhook"]["image"] == charts["external-secrets"]["image"] == charts["external-secrets"]["certController"]["image"]


@pytest.mark.parametrize("stack", STACKS)
def test_the_gate_passes(plans, stack):
    from policies.config import load_config_file, stack_config_path
    from tools.gate import run_gate

    report = run_gate(plans[stack], load_config_file(stack_config_path(stack)))
    assert report.passed, report.render()
