"""Core secrets: Vault and External Secrets, and that no credential is ever written in clear."""
from __future__ import annotations

import json
import re

import pytest

from components import settings
from components.core.secrets.vault_access import SNAPSHOT_POLICY
from policies.config import load_config_file, stack_config_path
from policies.rules.no_plaintext_secrets import is_sensitive_key
from tests.helpers import by_type, config_with, objects, pod_specs, stack_document
from tools.render import render, stack_config

STACKS = ("dev", "staging", "prod")
SECRET = "[secret]"
CHART = "kubernetes:helm.sh/v4:Chart"


def loaded(stack: str) -> settings.PlatformSettings:
    return settings.parse(stack_config(stack), stack)


def chart(plan: dict, name: str) -> dict:
    return next(r["inputs"] for r in by_type(plan, CHART) if r["name"] == name)


SELECTOR_FIELDS = {"key", "secretKey", "topologyKey", "existingSecret", "userKey", "passwordKey", "usernameKey", "uriKey",
                   "cert-manager.io/inject-ca-from-secret", "cnpg.io/pluginClientSecret", "cnpg.io/pluginServerSecret",
                   "argocd.argoproj.io/secret-type", "application.instanceLabelKey"}
"""These *name* something: a key of a Secret (secretKeyRef, remoteRef, caProvider, ExternalSecret data, a chart's
``userKey``/``passwordKey``, OpenFGA's ``datastore.secretKeys`` ``usernameKey``/``uriKey``), a Secret (a chart's ``existingSecret``; the ``<namespace>/<name>`` whose CA
cert-manager's CA injector copies into a webhook configuration; the TLS Secrets a CNPG-I plugin's Service
annotations name, cloudnative-pg docs/src/cnpg_i.md), a node label (``topologyKey``), the kind of Secret Argo CD
finds by label (``argocd.argoproj.io/secret-type: cluster``) or the label Argo CD tracks its objects by
(argocd-cm ``application.instanceLabelKey``)."""
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
    dev_mode = loaded(stack).core.vault.mode == "dev"
    allowed = {"vault.values.server.dev.devRootToken='[secret]'"} if dev_mode else set()
    # a label key, not a credential: istio-cni's repair label (charts/istio-cni values repair.labelKey)
    allowed.add("istio-cni:soma-mesh-node/istio-cni-config.data.REPAIR_BROKEN_POD_LABEL_KEY='cni.istio.io/uninitialized'")
    if loaded(stack).ops.chaos is not None:
        # a file path, not a key: where Chaos Mesh's controller reads its client key for the daemon (a Secret mounted
        # there, issued by cert-manager; charts/chaos-mesh/templates/controller-manager-deployment.yaml)
        allowed.add("chaos-mesh:soma-chaos/chaos-controller-manager.spec.template.spec.containers[0].env[22] env CHAOS_DAEMON_CLIENT_KEY")
    assert set(found) == allowed


def secret_values(value, path="") -> list[str]:
    """Paths holding a Pulumi secret (masked ``[secret]``), whatever the key is called."""
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in secret_values(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in secret_values(item, f"{path}[{i}]")]
    return [path] if value == SECRET else []


@pytest.mark.parametrize("stack", STACKS)
def test_no_kubernetes_object_carries_a_pulumi_secret_outside_a_secret(plans, stack):
    """A generated credential inside a pod spec or chart values sits readable in the cluster, whatever
    its key is called (``VAULT_DEV_ROOT_TOKEN_ID`` ends in ``_ID`` and passes the key-name check).
    The one exception is dev's Vault root token: dev mode takes it as a chart value, and the chart
    hands it to the server as an environment variable."""
    found = {
        f"{r['name']}{p}"
        for r in plans[stack]["resources"]
        if r["type"].startswith("kubernetes:") and r["type"] != "kubernetes:core/v1:Secret"
        for p in secret_values(r["inputs"])
    }
    vault = "vault:soma-secrets/vault"
    dev_mode = loaded(stack).core.vault.mode == "dev"
    allowed = {"vault.values.server.dev.devRootToken"} if dev_mode else set()
    if dev_mode:
        (statefulset,) = [r["inputs"] for r in plans[stack]["resources"] if r["name"] == vault and r["inputs"]["kind"] == "StatefulSet"]
        env = statefulset["spec"]["template"]["spec"]["containers"][0]["env"]
        (index,) = [i for i, e in enumerate(env) if e["name"] == "VAULT_DEV_ROOT_TOKEN_ID"]
        allowed.add(f"{vault}.spec.template.spec.containers[0].env[{index}].value")
    assert found == allowed


def test_the_sensitive_key_check_catches_a_literal():
    assert sensitive_literals({"env": [{"name": "DB_PASSWORD", "value": "hunter2"}]})
    assert sensitive_literals({"data": {"apiKey": "abc"}})
    assert sensitive_literals({"s3": {"secretAccessKey": "${AWS_SECRET_ACCESS_KEY}x"}})
    assert not sensitive_literals({"s3": {"secretAccessKey": "${AWS_SECRET_ACCESS_KEY}"}})
    assert not sensitive_literals({"env": [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "x", "key": "y"}}}]})


def chart_urns(plan: dict) -> set[str]:
    return {r["urn"] for r in by_type(plan, CHART)}


def secrets_written_by_cert_controllers(plan: dict) -> set[tuple[str, str]]:
    """(namespace, name) of the Secrets a rendered certificate controller fills at runtime, read from
    its arguments (External Secrets' cert-controller: ``--secret-name``, ``--secret-namespace``)."""
    found = set()
    spec_namespace = {id(spec): obj["metadata"].get("namespace", "") for obj, spec in pod_specs(plan)}
    for _, spec in pod_specs(plan):
        for container in spec["containers"]:
            flags = dict(a.removeprefix("--").split("=", 1) for a in container.get("args") or [] if a.startswith("--") and "=" in a)
            if "secret-name" in flags and "secret-namespace" in flags:
                found.add((flags["secret-namespace"], flags["secret-name"]))
            # knative's certificate reconciler in policy-controller fills webhook-certs of its own namespace
            # (SYSTEM_NAMESPACE from the pod's namespace; chart templates/webhook/secret_certs_webhook.yaml)
            env = {e["name"]: e for e in container.get("env") or []}
            if container.get("image", "").split("@")[0].rsplit(":", 1)[0].endswith("sigstore/policy-controller/policy-controller") \
                    and "SYSTEM_NAMESPACE" in env:
                found.add((spec_namespace.get(id(spec), ""), "webhook-certs"))
            # Argo CD's API server fills the argocd-secret of its namespace (server.secretkey, the admin password
            # hash) on start; the chart creates it empty (argo-cd chart templates/argocd-configs/argocd-secret.yaml)
            if container.get("image", "").split("@")[0].rsplit(":", 1)[0].endswith("argoproj/argocd") \
                    and any(str(a).endswith("argocd-server") for a in container.get("args") or []):
                found.add((spec_namespace.get(id(spec), ""), "argocd-secret"))
            # Gatekeeper's cert rotator fills gatekeeper-webhook-server-cert of its own namespace unless
            # --disable-cert-rotation (gatekeeper v3.23.0 main.go: secretName = "gatekeeper-webhook-server-cert")
            if container.get("image", "").split("@")[0].rsplit(":", 1)[0].endswith("openpolicyagent/gatekeeper") \
                    and "--disable-cert-rotation=false" in (container.get("args") or []):
                found.add((spec_namespace.get(id(spec), ""), "gatekeeper-webhook-server-cert"))
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_credentials_go_to_vault_as_secrets(plans, stack):
    plan = plans[stack]
    written = by_type(plan, "vault:kv/secretV2:SecretV2")
    assert written and all(r["inputs"]["dataJson"] == SECRET for r in written)
    # No Secret manifest carries data: workloads get ESO-managed Secrets. The Secrets the plan declares
    # are empty ones a chart creates for its controller to fill, Alertmanager's routing configuration, which
    # holds no credential (decoded and checked in test_observability_ha.py), and Argo CD's in-cluster
    # destination (server URL, namespaces, empty TLS settings: governance/argocd/chart_values.py), each with
    # its waiver in the stack's policy configuration.
    secrets = [r for r in plan["resources"] if r["inputs"].get("kind") == "Secret"]
    # A spoke (its wave driven by the hub's Argo CD) declares one Secret of its own: the hub's account's token, which
    # the API server's token controller fills (kubernetes.io/service-account-token); the program writes no data
    tokens = [r for r in secrets if r["inputs"].get("type") == "kubernetes.io/service-account-token"]
    assert [(r["inputs"]["metadata"]["namespace"], r["inputs"]["metadata"]["name"]) for r in tokens] == (
        [] if settings.parse(stack_config(stack), stack).governance.argocd else [("soma-gitops", "argocd-hub-token")])
    assert all(not r["inputs"].get("data") and not r["inputs"].get("stringData") for r in tokens)
    secrets = [r for r in secrets if r not in tokens]
    assert all(r["parent"] in chart_urns(plan) for r in secrets), [r["urn"] for r in secrets]
    config = load_config_file(stack_config_path(stack))["no-plaintext-secrets"]["allowedWaivers"]
    waived_by_config = {w["resource"] for w in config if w["resource"].startswith("Secret/")}
    waived = [r for r in secrets if "waivers.somaagenthub.io/no-plaintext-secrets" in (r["inputs"]["metadata"].get("annotations") or {})
              or f"Secret/{r['inputs']['metadata']['namespace']}/{r['inputs']['metadata']['name']}" in waived_by_config]
    loaded_settings = settings.parse(stack_config(stack), stack)
    observability = loaded_settings.core.namespaces.observability.name
    gitops = loaded_settings.governance.namespaces["gitops"].name
    argocd = [(gitops, "argocd-cluster-in-cluster")] if loaded_settings.governance.argocd else []  # staging runs none
    assert sorted((r["inputs"]["metadata"]["namespace"], r["inputs"]["metadata"]["name"]) for r in waived) == sorted([
        (observability, "alertmanager-kps-alertmanager"), *argocd])
    empty = [r for r in secrets if r not in waived]
    assert all(not r["inputs"].get("data") and not r["inputs"].get("stringData") for r in empty), [r["urn"] for r in empty]
    declared = {(r["inputs"]["metadata"]["namespace"], r["inputs"]["metadata"]["name"]) for r in empty}
    assert declared <= secrets_written_by_cert_controllers(plan)


@pytest.mark.parametrize("stack", STACKS)
def test_every_consumer_reads_through_its_own_restricted_store(plans, stack):
    plan = plans[stack]
    stores = {o["metadata"]["name"]: o["spec"] for o in objects(plan, "ClusterSecretStore")}
    roles = {r["inputs"]["roleName"]: r["inputs"] for r in by_type(plan, "vault:kubernetes/authBackendRole:AuthBackendRole")}
    # the Raft snapshot role and OpenFGA's bootstrap role serve their jobs' own logins, never External Secrets
    from components.governance.openfga import bootstrap_role
    for own_login in (SNAPSHOT_POLICY, bootstrap_role(loaded(stack).governance.namespaces["governance"].name)):
        assert f"vault-{own_login}" not in stores
        roles.pop(own_login, None)
    # and the mesh CA's signer role serves cert-manager's Vault Issuer (tests/mesh/test_mesh_pki.py)
    from components.mesh.identity.pki import SIGNER_POLICY
    assert f"vault-{SIGNER_POLICY}" not in stores
    roles.pop(SIGNER_POLICY, None)
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


CNPG_WEBHOOK_SECRET = "cnpg-webhook-cert"
"""The CloudNativePG operator creates and renews its webhook certificate in this Secret of its own
namespace (cloudnative-pg internal/cmd/manager/controller/controller.go, ``WebhookSecretName``)."""


def secret_reads(plan: dict) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(credentials, mounted) Secrets the plan's objects need: ``secretKeyRef`` and ``envFrom``
    ``secretRef`` (credentials), and ``secret`` volumes (mounted files), as (namespace, name).
    CRDs are skipped: their schemas mention ``secretKeyRef`` as a field, not a reference. References marked
    ``optional: true`` are not needed: the pod starts without them (istiod's plug-in CA and remote-cluster
    Secrets, Argo CD's custom TLS and Redis Sentinel credentials), so they are left out here."""
    credentials, mounted = set(), set()

    def walk(node, ns):
        if isinstance(node, dict):
            for key, into in (("secretKeyRef", credentials), ("secretRef", credentials)):
                ref = node.get(key)
                if isinstance(ref, dict) and isinstance(ref.get("name"), str) and ref.get("optional") is not True:
                    into.add((ns, ref["name"]))
            volume = node.get("secret")
            if isinstance(volume, dict) and isinstance(volume.get("secretName"), str) and volume.get("optional") is not True:
                mounted.add((ns, volume["secretName"]))
            for value in node.values():
                walk(value, ns)
        elif isinstance(node, list):
            for value in node:
                walk(value, ns)

    for obj in objects(plan):
        if obj["kind"] != "CustomResourceDefinition":
            walk(obj.get("spec", {}), obj["metadata"].get("namespace"))
    return credentials, mounted


def issued_by_controllers(plan: dict) -> set[tuple[str, str]]:
    """Secrets a controller the plan installs writes itself: cert-manager Certificates, Strimzi's cluster
    CA per Kafka cluster, External Secrets' webhook certificate, CloudNativePG's webhook certificate."""
    issued = {(c["metadata"]["namespace"], c["spec"]["secretName"]) for c in objects(plan, "Certificate")}
    issued |= {(k["metadata"]["namespace"], f"{k['metadata']['name']}-cluster-ca-cert") for k in objects(plan, "Kafka")}
    issued |= secrets_written_by_cert_controllers(plan)
    issued |= {(d["metadata"]["namespace"], CNPG_WEBHOOK_SECRET) for d in objects(plan, "Deployment")
               if d["metadata"]["name"] == "cloudnative-pg"}
    return issued


def declared_prerequisites(stack: str) -> set[tuple[str, str]]:
    """Secrets the stack file says an administrator creates before the first up: Vault's auto-unseal
    credentials (Vault needs them before anything can be read from Vault, so ESO cannot deliver them)."""
    core = settings.parse(stack_config(stack), stack).core
    seal = core.vault.seal.credentials_secret
    return {(core.namespaces.secrets.name, seal)} if seal else set()


@pytest.mark.parametrize("stack", STACKS)
def test_every_secret_a_pod_reads_is_managed_by_external_secrets(plans, stack):
    """Every credential any object reads (the program's and every chart's pods, and custom resources)
    is an ESO-managed Secret or a prerequisite the stack file declares (Vault's unseal credentials);
    every mounted Secret is ESO-managed or written by a certificate controller the plan installs.
    Nothing reads a Secret that nothing creates or declares."""
    plan = plans[stack]
    managed = {(o["metadata"]["namespace"], o["spec"]["target"]["name"]) for o in objects(plan, "ExternalSecret")}
    managed |= declared_prerequisites(stack)
    credentials, mounted = secret_reads(plan)
    assert credentials and mounted, "the plan has consumers"
    assert credentials <= managed, sorted(credentials - managed)
    assert mounted <= managed | issued_by_controllers(plan), sorted(mounted - managed - issued_by_controllers(plan))


def test_the_secret_check_sees_chart_pods_and_their_volumes(plans):
    """Chart pods are read too: External Secrets' webhook mounts the certificate its cert-controller
    writes, and Vault in raft mode mounts the cert-manager certificate."""
    _, mounted = secret_reads(plans["prod"])
    assert {("soma-operators", "external-secrets-webhook"), ("soma-secrets", "vault-tls")} <= mounted
    # optional mounts are not needs: istiod's plug-in CA slot and CloudNativePG's webhook certificate are optional
    assert ("soma-mesh", "istiod-tls") not in mounted and ("soma-operators", CNPG_WEBHOOK_SECRET) not in mounted
    assert ("soma-operators", "external-secrets-webhook") in secrets_written_by_cert_controllers(plans["prod"])


POLICY_BLOCK = re.compile(r'path "([^"]+)" \{\s*capabilities = \[([^\]]*)\]\s*\}')


def parse_policy(hcl: str) -> dict[str, set[str]]:
    """A Vault policy's ``path`` blocks as {path: capabilities}; anything else in it is refused."""
    body = "\n".join(line for line in hcl.splitlines() if not line.lstrip().startswith("#"))
    blocks = {m.group(1): {c.strip().strip('"') for c in m.group(2).split(",") if c.strip()} for m in POLICY_BLOCK.finditer(body)}
    assert POLICY_BLOCK.sub("", body).strip() == "", f"the policy holds more than path blocks: {body!r}"
    return blocks


def allows(policy: dict[str, set[str]], path: str, capability: str) -> bool:
    """Vault's matching for what these policies use: an exact path, or a trailing ``*`` as a prefix."""
    return any(capability in caps and (path == pattern or (pattern.endswith("*") and path.startswith(pattern[:-1])))
               for pattern, caps in policy.items())


@pytest.mark.parametrize("stack", STACKS)
def test_each_consumer_policy_reads_what_its_external_secrets_need_and_nothing_else(plans, stack):
    """Parsed, not compared with the generator: every ExternalSecret's keys are readable under the policy
    of the role its store logs in with; the policy grants only read and list, only below its own
    namespace's folder (or the one administrator-written path it is for), and no other consumer's
    ExternalSecret is readable under it."""
    plan = plans[stack]
    mount = loaded(stack).core.vault.kv_mount
    # the consumers' policies only: the mesh CA's signer policy pins parameters (allowed_parameters) and
    # is checked on OpenBao by tests/mesh/test_mesh_pki.py
    texts = {r["inputs"]["name"]: r["inputs"]["policy"] for r in by_type(plan, "vault:index/policy:Policy")}
    stores = {o["metadata"]["name"]: o["spec"]["provider"]["vault"]["auth"]["kubernetes"] for o in objects(plan, "ClusterSecretStore")}
    reads: dict[str, set[str]] = {}
    for es in objects(plan, "ExternalSecret"):
        role = stores[es["spec"]["secretStoreRef"]["name"]]["role"]
        reads.setdefault(role, set()).update(f"{mount}/data/{d['remoteRef']['key']}" for d in es["spec"]["data"])
    assert len(reads) >= 10
    policies = {role: parse_policy(texts[role]) for role in reads}
    for role, paths in reads.items():
        policy = policies[role]
        assert all(allows(policy, p, "read") for p in paths), (role, sorted(paths))
        assert set().union(*policy.values()) <= {"read", "list"}, (role, policy)
        namespace = next(s["serviceAccountRef"]["namespace"] for s in stores.values() if s["role"] == role)
        for pattern in policy:
            own = pattern.startswith((f"{mount}/data/{namespace}/", f"{mount}/metadata/{namespace}/"))
            # or one exact path an administrator writes (off-cluster backup keys, alert receivers), in no namespace's folder
            folder = pattern.split("/")[2] if pattern.count("/") >= 2 else ""
            shared = "*" not in pattern and folder not in loaded(stack).all_namespaces()
            assert own or shared, (role, pattern)
        for other, their_paths in reads.items():
            if other != role and not (their_paths <= paths):
                assert not any(allows(policy, p, "read") for p in their_paths - paths), (role, "reads", other)


@pytest.mark.parametrize("stack", STACKS)
def test_the_snapshot_policy_reads_the_raft_snapshot_and_nothing_else(plans, stack):
    plan = plans[stack]
    found = [parse_policy(r["inputs"]["policy"]) for r in by_type(plan, "vault:index/policy:Policy") if r["inputs"]["name"] == SNAPSHOT_POLICY]
    if loaded(stack).core.vault.mode != "raft":
        assert found == [], "no Raft, no snapshot policy"
        return
    assert found == [{"sys/storage/raft/snapshot": {"read"}}]


def test_the_policy_reading_notices_a_write_grant():
    policy = parse_policy('path "platform/data/soma-data/x/*" {\n  capabilities = ["read", "update"]\n}\n')
    assert allows(policy, "platform/data/soma-data/x/password", "update")
    assert not allows(policy, "platform/data/soma-data/y/password", "read")


def vault_server_pods(plan: dict) -> dict:
    (statefulset,) = [r["inputs"] for r in plan["resources"]
                      if r["name"] == "vault:soma-secrets/vault" and r["inputs"]["kind"] == "StatefulSet"]
    return statefulset


def test_dev_runs_one_dev_mode_vault_and_prod_an_ha_raft_cluster_with_tls(plans):
    dev = vault_server_pods(plans["dev"])
    (server,) = dev["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in server["env"]}
    assert dev["spec"]["replicas"] == 1 and "vault server -dev" in " ".join(server["args"])
    assert env["VAULT_DEV_ROOT_TOKEN_ID"] == SECRET and "volumeClaimTemplates" not in dev["spec"]
    dev_kinds = {r["inputs"]["kind"] for r in plans["dev"]["resources"] if r["name"].startswith("vault:")}
    assert not dev_kinds & {"MutatingWebhookConfiguration", "DaemonSet", "Deployment"}, "no injector, no CSI provider"

    prod_settings = loaded("prod").core.vault
    prod = vault_server_pods(plans["prod"])
    (server,) = [c for c in prod["spec"]["template"]["spec"]["containers"] if c["name"] == "vault"]
    env = {e["name"]: e.get("value") for e in server["env"]}
    assert "VAULT_DEV_ROOT_TOKEN_ID" not in env and env["VAULT_ADDR"].startswith("https://")
    assert prod["spec"]["replicas"] == prod_settings.replicas == 3
    (term,) = prod["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= prod["spec"]["template"]["metadata"]["labels"].items()
    (claim,) = prod["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == prod_settings.storage
    (pdb,) = [r["inputs"] for r in plans["prod"]["resources"] if r["name"] == "vault:soma-secrets/vault" and r["inputs"]["kind"] == "PodDisruptionBudget"]
    assert pdb["spec"]["maxUnavailable"] == 1
    (config,) = [r["inputs"] for r in plans["prod"]["resources"] if r["name"] == "vault:soma-secrets/vault-config"]
    hcl = config["data"]["extraconfig-from-values.hcl"]
    assert 'tls_cert_file = "/vault/tls/tls.crt"' in hcl and 'storage "raft"' in hcl and "tls_disable" not in hcl
    assert {"name": "tls", "secret": {"secretName": "vault-tls"}} in prod["spec"]["template"]["spec"]["volumes"]
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
