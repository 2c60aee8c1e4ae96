"""The Agents phase deploys the first-party services through the kit, once their images are pinned.

Both stacks are rendered through the real program with ``agents.services`` enabled and a copy of the catalog that
pins the app images with test-only digests (sha256 of a sentence that says so; the real platform.lock.yaml has no
``apps`` yet and is untouched, and with it the settings still refuse every service). Checked: each pod runs its
image by the catalog's digest as UID 10001 on a read-only root, its credentials are files from delivered Secrets and
never environment values, its flows are declared on both ends and reach the mesh's AuthorizationPolicies, and the
gate has nothing to say about any of it; and how the objects reach the cluster ("Delivery"). Rendering is slow
(about half a minute per stack): once per module (tests/agents_render.py).
"""
from __future__ import annotations

import copy
import json

import pytest
import yaml

from components import settings as platform_settings
from policies.config import load_config_file, stack_config_path
from components.governance.argocd.projects import APPLICATION_KINDS
from tests.agents_render import (NS, PLATFORM_REGISTRY, SERVICES, SHIPPER, SIZE, TEST_ONLY, agents_with_services,
                                 governance_without_argocd, render_services, with_shipper)
from tests.governance.argocd_plan import app_projects, application_set, permitted
from tests.helpers import config_with, objects, stack_document
from tests.openbao import make_ca
from tests.verification import validate
from tools import app_manifests
from tools.app_manifests import manifest_files, on_cluster, render_providers, rendered_to_files
from tools.gate import run_gate


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """dev (services delivered by Pulumi) and prod (through Argo CD's applications repository): the same objects
    either way, only their provider differs ("Delivery" below)."""
    return render_services(tmp_path_factory.mktemp("agents-services"))


def deployment(plan: dict, name: str) -> dict:
    (found,) = [o for o in objects(plan, "Deployment") if o["metadata"]["namespace"] == NS and o["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_each_service_runs_its_pinned_image_hardened(rendered, stack):
    plan = rendered[stack][0]
    for app in SERVICES:
        pod = deployment(plan, app)["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["image"] == f"{PLATFORM_REGISTRY}/somaagenthub/{app}:0.1.0@{TEST_ONLY[app]}"
        assert pod["serviceAccountName"] == app and pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsUser"] == 10001 and container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz" and container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["SOMA_SERVICE_NAME"] == app and env["SOMA_OTLP_ENDPOINT"].endswith(":4317")
        assert pod["terminationGracePeriodSeconds"] > int(env["SOMA_SHUTDOWN_GRACE_SECONDS"])
        budgets = [b for b in objects(plan, "PodDisruptionBudget") if b["metadata"]["namespace"] == NS and b["metadata"]["name"] == app]
        assert len(budgets) == (1 if stack == "prod" else 0)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_credentials_are_mounted_files_never_environment(rendered, stack):
    plan, generated = rendered[stack][0], rendered[stack][1]
    expected = {"identity": {"SOMA_DATABASE_PASSWORD_FILE"},
                "gateway": {"SOMA_OPENFGA_STORE_ID_FILE", "SOMA_OPENFGA_MODEL_ID_FILE", "SOMA_REDIS_PASSWORD_FILE"},
                "orchestrator": {"SOMA_OPENFGA_STORE_ID_FILE", "SOMA_OPENFGA_MODEL_ID_FILE", "SOMA_DATABASE_DSN_FILE", "SOMA_MODEL_API_KEY_FILE"},
                "tools": {"SOMA_OPENFGA_STORE_ID_FILE", "SOMA_OPENFGA_MODEL_ID_FILE"},
                "memory": {"SOMA_OPENFGA_STORE_ID_FILE", "SOMA_OPENFGA_MODEL_ID_FILE", "SOMA_QDRANT_API_KEY_FILE"}}
    delivered = {o["metadata"]["name"] for o in objects(plan, "ExternalSecret") if o["metadata"]["namespace"] == NS}
    for app, files in expected.items():
        pod = deployment(plan, app)["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert not [e for e in container["env"] if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]], app
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert files <= {k for k in env if k.endswith("_FILE")}, app
        mounted = {m["mountPath"]: m for m in container["volumeMounts"]}
        secrets = {v["name"]: v["secret"] for v in pod["volumes"] if "secret" in v}
        assert secrets and set(s["secretName"] for s in secrets.values()) <= delivered, app
        for variable in files:
            folder, _, key = env[variable].rpartition("/")
            assert mounted[folder]["readOnly"] is True
            volume = secrets[mounted[folder]["name"]]
            assert [i["key"] for i in volume["items"]] and key in [i["path"] for i in volume["items"]]
    text = json.dumps([o for o in objects(plan) if o["metadata"].get("namespace") == NS and o["kind"] == "Deployment"])
    assert not [v for v in generated.values() if len(v) >= 16 and v in text]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_gateway_knows_its_upstreams_and_identity_its_issuer(rendered, stack):
    plan, parsed = rendered[stack][0], rendered[stack][2]
    env = {e["name"]: e.get("value") for e in deployment(plan, "gateway")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert json.loads(env["SOMA_UPSTREAMS"]) == {"orchestrator": f"http://orchestrator.{NS}.svc.cluster.local:8080",
                                                 "tools": f"http://tools.{NS}.svc.cluster.local:8080",
                                                 "memory": f"http://memory.{NS}.svc.cluster.local:8080"}
    assert env["SOMA_JWKS_URL"] == f"http://identity.{NS}.svc.cluster.local:8080/.well-known/jwks.json"
    orchestrator = {e["name"]: e.get("value") for e in deployment(plan, "orchestrator")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert orchestrator["SOMA_TOOLS_MCP_URL"] == f"http://tools.{NS}.svc.cluster.local:8080/mcp"
    identity = {e["name"]: e.get("value") for e in deployment(plan, "identity")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert identity["SOMA_ISSUER"] == env["SOMA_JWT_ISSUER"] == parsed.mesh.edge.jwt.issuer
    assert env["SOMA_JWT_AUDIENCE"] in json.loads(identity["SOMA_ALLOWED_AUDIENCES"])
    assert identity["SOMA_VAULT_KUBERNETES_ROLE"] == f"{NS}-identity-signer"
    vault = {(r["type"].rsplit(":", 1)[1], r["name"]): r["inputs"] for r in plan["resources"] if r["type"].startswith("vault:")}
    (policy,) = [i for (kind, _), i in vault.items() if kind == "Policy" and i["name"] == f"{NS}-identity-signer"]
    assert policy["policy"].count("path ") == 2 and '"transit/sign/identity-jwt"' in policy["policy"]
    (role,) = [i for (kind, _), i in vault.items() if kind == "AuthBackendRole" and i["roleName"] == f"{NS}-identity-signer"]
    assert role["boundServiceAccountNames"] == ["identity"] and role["boundServiceAccountNamespaces"] == [NS]
    (key,) = [i for (kind, _), i in vault.items() if kind == "SecretBackendKey"]
    assert key["exportable"] is False and key["type"] == "ecdsa-p256"
    # one Vault name per policy and role: identity's signer never shares the External Secrets consumer's
    names = [(kind, i.get("name") or i.get("roleName")) for (kind, _), i in vault.items() if kind in ("Policy", "AuthBackendRole")]
    assert len(names) == len(set(names))


def flow_names(plan: dict, kind: str, namespace: str) -> set[str]:
    return {o["metadata"]["name"] for o in objects(plan, kind) if o["metadata"]["namespace"] == namespace}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_flows_are_declared_once_and_enforced_by_both_layers(rendered, stack):
    plan = rendered[stack][0]
    policies = flow_names(plan, "NetworkPolicy", NS)
    assert {f"{app}-callers" for app in ("identity", "orchestrator", "tools", "memory")} <= policies
    assert {f"{app}-telemetry" for app in SERVICES} <= policies
    egress = {o["metadata"]["name"]: o["spec"] for o in objects(plan, "NetworkPolicy") if o["metadata"]["namespace"] == NS
              and o["spec"]["policyTypes"] == ["Egress"]}
    gateway_to = {p.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
                  for name, spec in egress.items() if name.startswith("gateway-egress") for rule in spec["egress"] for p in rule["to"]}
    assert {"identity", "orchestrator", "tools", "memory", "openfga", "redis"} <= gateway_to
    memory_to = json.dumps([spec for name, spec in egress.items() if name.startswith("memory-egress")])
    assert '"qdrant"' in memory_to and "soma-data" in memory_to
    orchestrator_to = json.dumps([spec for name, spec in egress.items() if name.startswith("orchestrator-egress")])
    assert '"openfga"' in orchestrator_to and "cnpg.io/cluster" in orchestrator_to and "192.0.2.10/32" in orchestrator_to
    # OpenFGA admits the tool service and the memory gateway once they are enabled, in both layers
    openfga = next(o for o in objects(plan, "NetworkPolicy") if o["metadata"]["name"] == "openfga-api-from-clients")
    admitted = {p["podSelector"]["matchLabels"].get("app.kubernetes.io/name") for p in openfga["spec"]["ingress"][0]["from"]}
    assert {"gateway", "orchestrator", "tools", "memory"} <= admitted
    authorizations = flow_names(plan, "AuthorizationPolicy", NS)
    assert {f"{app}-callers" for app in ("identity", "orchestrator", "tools", "memory")} <= authorizations
    (lock,) = [o for o in objects(plan, "AuthorizationPolicy") if o["metadata"]["name"] == "openfga-api-callers-only"]
    principals = lock["spec"]["rules"][0]["from"][0]["source"]["notPrincipals"]
    assert {p.rsplit("/", 1)[1] for p in principals} == {"gateway", "orchestrator", "tools", "memory"}
    assert "vault-from-soma-agents-identity" in flow_names(plan, "NetworkPolicy", "soma-secrets")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_gate_passes_the_services(rendered, stack):
    """Judged with the catalog that pins the app images, nothing the services add is refused; judged with the real
    lock (no ``apps``), their images are: the gate does look at them."""
    plan, _, _, lock = rendered[stack]

    def failing(catalog_path: str) -> list:
        config = load_config_file(stack_config_path(stack))
        for rule in config.values():
            if isinstance(rule, dict) and "catalogPath" in rule:
                rule["catalogPath"] = catalog_path
        report = run_gate(plan, config)
        return [line for line in report.lines if line.level in ("mandatory", "advisory")]

    def about_services(lines: list) -> list:
        return [line for line in lines if NS in line.urn or any(f"somaagenthub/{app}" in line.message for app in SERVICES)]

    found = about_services(failing(str(lock)))
    assert found == [], "\n".join(f"{line.rule}: {line.urn}: {line.message}" for line in found)
    unpinned = about_services(failing("platform.lock.yaml"))
    assert {line.rule for line in unpinned} == {"digest-pinned-images", "signed-images"}
    assert {app for line in unpinned for app in SERVICES if f"somaagenthub/{app}:" in line.message} == set(SERVICES)


def test_settings_refuse_an_unpinned_service_naming_key_and_remedy():
    """With the real lock (no ``apps`` yet) enabling a service is refused before any resource, naming what to do."""
    with pytest.raises(platform_settings.SettingsError) as refused:
        platform_settings.parse(config_with("dev", agents=agents_with_services("dev")), "dev")
    messages = [p for p in refused.value.problems if "pins no image" in p]
    assert {m.split(":")[1].split(".")[2] for m in messages} == set(SERVICES)
    assert all(m.startswith(f"somaagenthub:agents.services.{m.split('.')[2]}.enabled") and "make images-release" in m for m in messages)


def test_settings_name_what_an_enabled_service_lacks():
    agents = agents_with_services("prod", {"mode": "pulumi"})
    agents["services"]["gateway"] = {"enabled": True, "replicas": 1, "resources": SIZE}
    del agents["services"]["identity"]
    agents["services"]["orchestrator"].pop("modelApiKeyPath")
    with pytest.raises(platform_settings.SettingsError) as refused:
        platform_settings.parse(config_with("prod", agents=agents, governance=governance_without_argocd("prod")), "prod")
    text = "\n".join(refused.value.problems)
    assert "somaagenthub:agents.services.gateway.redis: required" in text
    assert "somaagenthub:agents.services.gateway.enabled: the gateway verifies tokens with identity's JWKS" in text
    assert "somaagenthub:agents.services.gateway.replicas: highAvailability is on" in text
    assert "somaagenthub:agents.services.orchestrator.modelApiKeyPath: required" in text


def test_the_stack_files_keep_every_service_off():
    for stack in ("dev", "prod"):
        parsed = platform_settings.parse(config_with(stack), stack)
        assert parsed.agents.services.enabled() == ()


AUDITORS = ("gateway", "orchestrator", "tools", "memory")
KAFKA_BOOTSTRAP = "platform-kafka-bootstrap.soma-data.svc:9093"
BROKERS = {"strimzi.io/cluster": "platform", "strimzi.io/name": "platform-kafka"}
"""The broker pods of Core's Kafka (Strimzi's labels)."""


STAND_IN_CA = make_ca("cluster-ca").pem.decode()
"""A CA certificate in PEM (what Strimzi's ``ca.crt`` is), for the settings that parse the CA file."""


def kafka_client_of(settings, app: str) -> tuple:
    """What the service's own ``audit_sink_for`` gives aiokafka (0.14.0, pinned; private attributes of its client)."""
    import asyncio

    async def build():
        sink = settings.audit_sink_for(f"soma-{app}")
        client = sink.producer.client
        try:
            return (client._bootstrap_servers, client._security_protocol, client._sasl_mechanism, client._sasl_plain_username,
                    client._sasl_plain_password, sink.topic)
        finally:
            await sink.producer.stop()
    return asyncio.run(build())


def admits(peer: dict, namespace: str, labels: dict) -> bool:
    """Whether a NetworkPolicy peer selects a pod with ``labels`` in ``namespace`` (matchLabels, and In expressions
    on the namespace name: all the platform writes)."""
    selector = peer.get("namespaceSelector")
    if selector is not None:
        by_name = selector.get("matchLabels", {}).get("kubernetes.io/metadata.name")
        names = [e["values"] for e in selector.get("matchExpressions", []) if e["key"] == "kubernetes.io/metadata.name"]
        if (by_name and by_name != namespace) or any(namespace not in values for values in names):
            return False
    return all(labels.get(k) == v for k, v in peer.get("podSelector", {}).get("matchLabels", {}).items())


def mounted_secret(pod: dict, path: str) -> tuple[str, str]:
    """The (Secret, key) a file path in the pod's container comes from."""
    (container,) = pod["containers"]
    folder, _, file = path.rpartition("/")
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == folder]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    (item,) = [i for i in volume["secret"]["items"] if i["path"] == file]
    return volume["secret"]["secretName"], item["key"]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_auditing_services_produce_to_core_kafka_as_audit_producer(rendered, stack):
    """Env, files, labels and flows of every service that audits; the listener's own policy admits the pods."""
    plan = rendered[stack][0]
    (kafka,) = objects(plan, "Kafka")
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    data_policies = {o["metadata"]["name"]: o["spec"] for o in objects(plan, "NetworkPolicy") if o["metadata"]["namespace"] == "soma-data"}
    for app in AUDITORS:
        pod = deployment(plan, app)["spec"]["template"]
        spec, labels = pod["spec"], pod["metadata"]["labels"]
        env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
        assert (env["SOMA_AUDIT_SINK"], env["SOMA_AUDIT_KAFKA_BOOTSTRAP"], env["SOMA_AUDIT_KAFKA_USERNAME"]) == \
            ("kafka", KAFKA_BOOTSTRAP, "audit-producer"), app
        assert "SOMA_AUDIT_KAFKA_PASSWORD" not in env
        assert mounted_secret(spec, env["SOMA_AUDIT_KAFKA_PASSWORD_FILE"]) == (f"{app}-kafka", "password")
        assert mounted_secret(spec, env["SOMA_AUDIT_KAFKA_CA_FILE"]) == ("kafka-cluster-ca", "ca.crt")
        assert any(admits(peer, NS, labels) for peer in listener["networkPolicyPeers"]), app
        egress = [rule for o in objects(plan, "NetworkPolicy") if o["metadata"]["namespace"] == NS
                  and o["spec"]["policyTypes"] == ["Egress"] and admits(o["spec"], NS, labels) for rule in o["spec"]["egress"]]
        assert any({"protocol": "TCP", "port": 9093} in rule["ports"] and
                   any(admits(peer, "soma-data", BROKERS) for peer in rule["to"])
                   for rule in egress), app
        ingress = data_policies[f"kafka-from-{NS}-{app}"]
        assert ingress["podSelector"]["matchLabels"] == BROKERS
        (rule,) = ingress["ingress"]
        assert rule["ports"] == [{"protocol": "TCP", "port": 9093}] and [admits(p, NS, labels) for p in rule["from"]] == [True]
        assert not admits(rule["from"][0], NS, deployment(plan, "identity")["spec"]["template"]["metadata"]["labels"])
    identity = deployment(plan, "identity")["spec"]["template"]
    assert not [e for e in identity["spec"]["containers"][0]["env"] if e["name"].startswith("SOMA_AUDIT")]
    assert "somaagenthub.io/kafka-client" not in identity["metadata"]["labels"]
    assert "identity-kafka" not in {o["metadata"]["name"] for o in objects(plan, "ExternalSecret")}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_producers_password_is_the_kafka_users_and_the_ca_a_copy_of_strimzis(rendered, stack):
    """Each producer's grant is written from the one generated password the KafkaUser ``audit-producer`` is given (so
    one rotation changes both); the CA is read from the data namespace by a reader that may get that one Secret."""
    plan = rendered[stack][0]
    written = {r["inputs"]["name"]: r for r in plan["resources"] if r["type"] == "vault:kv/secretV2:SecretV2"}

    def generated_from(path: str) -> list[str]:
        return [d.rsplit("::", 1)[1] for d in written[path]["dependencies"] if "RandomPassword" in d]
    assert generated_from("soma-data/kafka-users/audit-producer") == ["password-kafka-audit-producer"]
    for app in AUDITORS:
        assert generated_from(f"{NS}/{app}/kafka") == ["password-kafka-audit-producer"], app
        (delivered,) = [o for o in objects(plan, "ExternalSecret") if o["metadata"]["name"] == f"{app}-kafka"]
        assert delivered["metadata"]["namespace"] == NS and delivered["spec"]["data"][0]["remoteRef"]["key"] == f"{NS}/{app}/kafka"
    namespaced = lambda kind, ns: [o for o in objects(plan, kind) if o["metadata"].get("namespace") == ns]  # noqa: E731
    (store,) = [o for o in namespaced("SecretStore", NS) if o["metadata"]["name"] == "kafka-cluster-ca"]
    provider = store["spec"]["provider"]["kubernetes"]
    assert provider["remoteNamespace"] == "soma-data" and provider["auth"] == {"serviceAccount": {"name": "kafka-cluster-ca-reader"}}
    (copy,) = [o for o in namespaced("ExternalSecret", NS) if o["spec"]["secretStoreRef"] == {"kind": "SecretStore", "name": "kafka-cluster-ca"}]
    assert copy["spec"]["secretStoreRef"]["name"] == store["metadata"]["name"]
    assert copy["spec"]["data"] == [{"secretKey": "ca.crt", "remoteRef": {"key": "platform-cluster-ca-cert", "property": "ca.crt"}}]
    (role,) = [o for o in namespaced("Role", "soma-data") if o["metadata"]["name"] == f"kafka-cluster-ca-reader-{NS}"]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["platform-cluster-ca-cert"]}]
    (binding,) = [o for o in namespaced("RoleBinding", "soma-data") if o["metadata"]["name"] == role["metadata"]["name"]]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "kafka-cluster-ca-reader", "namespace": NS}]
    (account,) = [o for o in namespaced("ServiceAccount", NS) if o["metadata"]["name"] == "kafka-cluster-ca-reader"]
    assert account["automountServiceAccountToken"] is False


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_kafka_objects_are_what_the_api_server_and_the_installed_crds_accept(rendered, stack):
    from tests.verification import installed_crd_validators, validate

    plan, parsed = rendered[stack][0], rendered[stack][2]
    every = objects(plan)
    installed = installed_crd_validators(every)
    ours = [o for o in every if "kafka" in o["metadata"].get("name", "") and o["metadata"].get("namespace") in (NS, "soma-data")
            and o["kind"] in ("SecretStore", "ExternalSecret", "Role", "RoleBinding", "ServiceAccount", "NetworkPolicy")]
    assert {o["kind"] for o in ours} == {"SecretStore", "ExternalSecret", "Role", "RoleBinding", "ServiceAccount", "NetworkPolicy"}
    problems = [f"{o['kind']}/{o['metadata']['name']}: {p}" for o in ours for p in validate(o, parsed.kubernetes_version, installed)]
    assert not problems, "\n".join(problems)


SETTINGS_CLASSES = {"identity": "soma_identity.settings:IdentitySettings", "gateway": "soma_gateway.settings:GatewaySettings",
                    "orchestrator": "soma_orchestrator.settings:OrchestratorSettings", "tools": "soma_tools.settings:ToolsSettings",
                    "memory": "soma_memory.settings:MemorySettings"}
FAKE_ULID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_each_service_accepts_the_environment_and_files_the_phase_gives_it(rendered, stack, tmp_path):
    """The pod's ``SOMA_*`` variables, with its secret files stood in by temporary files, are read by the service's own
    settings class without a problem (an unknown ``SOMA_*`` variable, a secret in the environment or a missing
    required setting would stop the service at start)."""
    import importlib
    import sys

    from tools.render import ROOT

    for src in sorted((ROOT / "apps").glob("*/src")):
        if str(src) not in sys.path:
            sys.path.insert(0, str(src))
    plan = rendered[stack][0]
    for app, target in SETTINGS_CLASSES.items():
        (container,) = deployment(plan, app)["spec"]["template"]["spec"]["containers"]
        environ = {e["name"]: e["value"] for e in container["env"] if e["name"].startswith("SOMA_") and "value" in e}
        for variable in [v for v in environ if v.endswith("_FILE")]:
            stand_in = tmp_path / app / variable.lower()
            stand_in.parent.mkdir(parents=True, exist_ok=True)
            stand_in.write_text(FAKE_ULID if "OPENFGA" in variable else
                                "postgresql://u:p@db:5432/d?sslmode=require" if "DSN" in variable else
                                STAND_IN_CA if variable.endswith("_CA_FILE") else "stand-in-secret")
            environ[variable] = str(stand_in)
        environ["SOMA_SECRETS_DIR"] = str(tmp_path / app / "none")
        module, _, name = target.partition(":")
        settings_class = getattr(importlib.import_module(module), name)
        loaded = settings_class.from_env(environ)
        assert loaded.service_name == app
        if app == "identity":  # prod's Vault serves TLS: identity verifies it with the mounted CA copy, dev's is HTTP
            assert (loaded.vault_addr.startswith("https://"), loaded.vault_verify) == (
                (True, environ["SOMA_VAULT_CA_FILE"]) if stack == "prod" else (False, True))
        if app in AUDITORS:  # and the producer those settings build speaks to Core's listener as the phase meant
            assert kafka_client_of(loaded, app) == (environ["SOMA_AUDIT_KAFKA_BOOTSTRAP"], "SASL_SSL", "SCRAM-SHA-512",
                                                    "audit-producer", "stand-in-secret", "platform.audit.v1")


# Vault over TLS (prod's raft Vault serves a certificate from the platform CA; dev's dev-mode Vault is plain HTTP):
# identity gets Vault's CA as a mounted file, copied by External Secrets from cert-manager's ``vault-tls`` into a
# ``vault-ca`` that holds ``ca.crt`` only, inside Vault's namespace, and from there into the agents namespace
# (components/core/secrets/certificate_copy.py, the copy the Kafka CA takes too).

SECRETS_NS = "soma-secrets"


def vault_ca_objects(plan: dict) -> list[dict]:
    return [o for o in objects(plan) if o["metadata"]["name"] == "vault-ca" or o["metadata"]["name"].startswith("vault-ca-reader")]


def test_prod_identity_reaches_vault_over_https_trusting_a_mounted_copy_of_its_ca(rendered):
    plan = rendered["prod"][0]
    pod = deployment(plan, "identity")["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["SOMA_VAULT_ADDR"] == f"https://vault.{SECRETS_NS}.svc:8200"
    assert env["SOMA_VAULT_CA_FILE"] == "/var/run/secrets/soma/vault-ca/ca.crt"
    assert mounted_secret(pod, env["SOMA_VAULT_CA_FILE"]) == ("vault-ca", "ca.crt")
    # no other service talks to Vault: none gets its CA
    for app in SERVICES:
        if app != "identity":
            assert "SOMA_VAULT_CA_FILE" not in {e["name"] for e in deployment(plan, app)["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_dev_with_vault_in_dev_mode_gets_none_of_it(rendered):
    plan = rendered["dev"][0]
    (container,) = deployment(plan, "identity")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["SOMA_VAULT_ADDR"].startswith("http://") and "SOMA_VAULT_CA_FILE" not in env
    assert vault_ca_objects(plan) == []


def test_only_ca_crt_of_vaults_certificate_is_copied_and_vaults_key_never_leaves_its_namespace(rendered):
    """``vault-tls`` holds Vault's private key (``tls.key``) beside ``ca.crt``; RBAC cannot limit a ``get`` to one key,
    so only Vault's own namespace may read that Secret, into a ``vault-ca`` with ``ca.crt`` alone."""
    plan = rendered["prod"][0]
    copies = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects(plan, "ExternalSecret")
              if o["spec"]["secretStoreRef"]["kind"] == "SecretStore"}
    stores = {(o["metadata"]["namespace"], o["metadata"]["name"]): o["spec"]["provider"]["kubernetes"] for o in objects(plan, "SecretStore")}
    source = {}
    for (ns, name), external in copies.items():
        assert "dataFrom" not in external["spec"] and [d["secretKey"] for d in external["spec"]["data"]] == ["ca.crt"], (ns, name)
        assert [d["remoteRef"]["property"] for d in external["spec"]["data"]] == ["ca.crt"], (ns, name)
        store = stores[(ns, external["spec"]["secretStoreRef"]["name"])]
        source[(ns, name)] = (store["remoteNamespace"], external["spec"]["data"][0]["remoteRef"]["key"])
    assert source[(SECRETS_NS, "vault-ca")] == (SECRETS_NS, "vault-tls")
    assert source[(NS, "vault-ca")] == (SECRETS_NS, "vault-ca")
    assert [k for k, v in source.items() if v == (SECRETS_NS, "vault-tls")] == [(SECRETS_NS, "vault-ca")]
    # whoever may read vault-tls through a Role is in Vault's namespace
    roles = {o["metadata"]["name"]: o for o in objects(plan, "Role") if o["metadata"]["namespace"] == SECRETS_NS}
    for binding in (o for o in objects(plan, "RoleBinding") if o["metadata"]["namespace"] == SECRETS_NS):
        rules = roles[binding["roleRef"]["name"]]["rules"] if binding["roleRef"]["kind"] == "Role" else []
        if any("vault-tls" in r.get("resourceNames", ()) or ("secrets" in r["resources"] and not r.get("resourceNames")) for r in rules):
            assert {s.get("namespace") for s in binding["subjects"]} == {SECRETS_NS}, binding["metadata"]["name"]


def test_each_vault_ca_reader_may_get_one_secret_by_name_and_nothing_else(rendered):
    plan = rendered["prod"][0]
    readers = {(SECRETS_NS, f"vault-ca-reader-{SECRETS_NS}"): ("vault-tls", SECRETS_NS), (SECRETS_NS, f"vault-ca-reader-{NS}"): ("vault-ca", NS)}
    found = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects(plan, "Role") if o["metadata"]["name"].startswith("vault-ca-reader")}
    assert set(found) == set(readers)
    for key, (secret, reader_ns) in readers.items():
        assert found[key]["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": [secret]}]
        (binding,) = [o for o in objects(plan, "RoleBinding") if (o["metadata"]["namespace"], o["metadata"]["name"]) == key]
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": key[1]}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "vault-ca-reader", "namespace": reader_ns}]
        (account,) = [o for o in objects(plan, "ServiceAccount") if (o["metadata"]["namespace"], o["metadata"]["name"]) == (reader_ns, "vault-ca-reader")]
        assert account["automountServiceAccountToken"] is False
        (store,) = [o for o in objects(plan, "SecretStore") if (o["metadata"]["namespace"], o["metadata"]["name"]) == (reader_ns, "vault-ca")]
        assert store["spec"]["provider"]["kubernetes"]["auth"] == {"serviceAccount": {"name": "vault-ca-reader"}}


def test_the_vault_ca_objects_are_what_the_api_server_and_the_installed_crds_accept(rendered):
    from tests.verification import installed_crd_validators

    plan, parsed = rendered["prod"][0], rendered["prod"][2]
    ours = vault_ca_objects(plan)
    assert sorted({(o["kind"], o["metadata"]["namespace"]) for o in ours}) == [
        ("ExternalSecret", NS), ("ExternalSecret", SECRETS_NS), ("Role", SECRETS_NS), ("RoleBinding", SECRETS_NS),
        ("SecretStore", NS), ("SecretStore", SECRETS_NS), ("ServiceAccount", NS), ("ServiceAccount", SECRETS_NS)]
    installed = installed_crd_validators(objects(plan))
    problems = [f"{o['kind']}/{o['metadata']['name']}: {p}" for o in ours for p in validate(o, parsed.kubernetes_version, installed)]
    assert not problems, "\n".join(problems)


# Delivery (agents.delivery; docs/architecture/gitops.md, "How the services' manifests reach the applications
# repository"): prod renders each service's application objects (Deployment, Service, PodDisruptionBudget) with one
# YAML render provider per (service, environment), into the applications repository's <path>/prod, and keeps what
# the platform owns on the cluster; dev (mode pulumi, no Argo CD) applies everything to the cluster as before.

CHECKOUT = "../agent-apps"
"""prod's agents.delivery.checkout (Pulumi.prod.yaml)."""
APPLICATION_OBJECTS = {("Deployment", "apps/v1"), ("Service", "v1"), ("PodDisruptionBudget", "policy/v1")}
"""What each service of prod (2 replicas) puts in its folder."""


def kinds_of(resources: list[dict]) -> set[tuple[str, str, str]]:
    return {(r["inputs"]["kind"], r["inputs"]["metadata"].get("namespace", ""), r["inputs"]["metadata"]["name"]) for r in resources}


def test_prod_renders_each_services_application_objects_into_the_folder_its_application_syncs(rendered):
    plan, _, parsed, _ = rendered["prod"]
    providers = render_providers(plan)
    applications = parsed.governance.argocd.applications
    # one render provider per service, writing <checkout>/<applications.<name>.path>/prod ...
    assert sorted(providers.values()) == sorted(f"{CHECKOUT}/{applications[s].path}/prod" for s in SERVICES)
    # ... which is the path the ApplicationSet generates for that application in the prod wave
    generated = {(e["app"], e["env"]): e["path"] for e in application_set(plan)["generators"][0]["list"]["elements"]}
    for service in SERVICES:
        assert f"{CHECKOUT}/{generated[(service, 'prod')]}" in providers.values(), service
    assert application_set(plan)["template"]["spec"]["source"]["directory"] == {"recurse": True}
    # each provider holds exactly that service's application objects
    for urn, directory in providers.items():
        service = directory.split("/")[-2]
        held = [r for r in rendered_to_files(plan) if r["options"]["provider"] == urn]
        assert {(r["inputs"]["kind"], r["inputs"]["apiVersion"]) for r in held} == APPLICATION_OBJECTS, service
        assert {r["inputs"]["metadata"]["name"] for r in held} == {service}
        assert {r["inputs"]["metadata"]["namespace"] for r in held} == {NS}


def test_prod_keeps_the_platforms_part_of_each_service_on_the_cluster_and_only_that(rendered):
    plan = rendered["prod"][0]
    application_kinds = {k for _, k in APPLICATION_KINDS}
    cluster = kinds_of(on_cluster(plan))
    assert not [c for c in cluster if c[1] == NS and c[0] in application_kinds], "an application kind reaches the cluster through Pulumi"
    for service in SERVICES:
        assert ("ServiceAccount", NS, service) in cluster
        assert ("NetworkPolicy", NS, f"{service}-telemetry") in cluster
        assert any(c[0] == "ExternalSecret" and c[1] == NS and c[2].startswith(service) for c in cluster), service
    assert {("AuthorizationPolicy", NS, f"{s}-callers") for s in ("identity", "orchestrator", "tools", "memory")} <= cluster
    vault = {r["type"] for r in plan["resources"] if r["type"].startswith("vault:")}
    assert "vault:transit/secretBackendKey:SecretBackendKey" in vault
    # Argo CD may sync every file: apps-prod permits each object in its folder
    projects = app_projects(plan)
    for resource in rendered_to_files(plan):
        obj = resource["inputs"]
        group = obj["apiVersion"].rpartition("/")[0]
        assert permitted(projects, NS, group, obj["kind"]) == ["apps-prod"], obj


def test_the_gate_judges_the_files_and_passes_them_with_the_pinned_catalog(rendered, tmp_path):
    """make app-manifests, through its command: with a catalog that pins the app images, one file per object in
    the provider's layout, each valid against the Kubernetes schema and equal to the object Argo CD will apply;
    again, byte for byte the same files; with the real lock (no ``apps``) the gate blocks the Deployments and
    nothing is written."""
    plan, _, parsed, lock = rendered["prod"]
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan))
    config = load_config_file(stack_config_path("prod"))
    for rule in config.values():
        if isinstance(rule, dict) and "catalogPath" in rule:
            rule["catalogPath"] = str(lock)
    config_file = tmp_path / "policy.json"
    config_file.write_text(json.dumps(config))
    out = tmp_path / "agent-apps"
    assert app_manifests.main(["--stack", "prod", "--plan", str(plan_file), "--out", str(out), "--config", str(config_file)]) == 0
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.yaml"))
    assert written == sorted(
        f"deploy/{s}/prod/1-manifest/{prefix}-{kind}-soma-agents-{s}.yaml"
        for s in SERVICES for prefix, kind in (("apps_v1", "deployment"), ("v1", "service"), ("policy_v1", "poddisruptionbudget")))
    by_file = {f.path: f for f in manifest_files(plan, CHECKOUT)}
    for name in written:
        obj = yaml.safe_load((out / name).read_text())
        assert obj == by_file[name].object
        assert validate(obj, parsed.kubernetes_version) == [], name
    first = {name: (out / name).read_bytes() for name in written}
    (out / "deploy/gateway/prod/1-manifest/v1-configmap-soma-agents-stale.yaml").write_text("stale: true\n")
    assert app_manifests.main(["--stack", "prod", "--plan", str(plan_file), "--out", str(out), "--config", str(config_file)]) == 0
    assert {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*.yaml")} == first
    refused_out = tmp_path / "refused"
    assert app_manifests.main(["--stack", "prod", "--plan", str(plan_file), "--out", str(refused_out)]) == 1
    assert not refused_out.exists()


def test_a_secret_or_two_objects_in_one_file_are_refused(rendered):
    plan = copy.deepcopy(rendered["prod"][0])
    (deployment,) = [r for r in rendered_to_files(plan) if r["inputs"]["kind"] == "Deployment" and r["inputs"]["metadata"]["name"] == "tools"]
    deployment["inputs"]["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "SOMA_TOKEN", "value": "[secret]"})
    files = manifest_files(plan, CHECKOUT)
    assert app_manifests.problems(files, {}) == [
        f"deploy/tools/prod/1-manifest/apps_v1-deployment-soma-agents-tools.yaml: {deployment['urn']} holds a secret value; an "
        "application manifest holds none (credentials come from Vault through External Secrets, which the platform owns)"]
    twice = [*files, files[0]]
    assert any("written by both" in p for p in app_manifests.problems(twice, {}))


def test_a_pulumi_delivery_stack_applies_its_services_to_the_cluster(rendered):
    """dev without Argo CD: no render provider, every object of the services on the cluster as before."""
    plan = rendered["dev"][0]
    assert render_providers(plan) == {} and rendered_to_files(plan) == []
    assert {("Deployment", NS, s) for s in SERVICES} | {("Service", NS, s) for s in SERVICES} <= kinds_of(on_cluster(plan))


# --- the audit shipper (Governance, governance.compliance.shipper), in the same renders -----------------------

GOV = "soma-governance"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_shipper_runs_its_pinned_image_reads_events_only_and_produces_as_audit_producer(rendered, stack):
    plan = rendered[stack][0]
    (shipper,) = [o for o in objects(plan, "Deployment") if o["metadata"]["namespace"] == GOV and o["metadata"]["name"] == SHIPPER]
    pod = shipper["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == f"{PLATFORM_REGISTRY}/somaagenthub/{SHIPPER}:0.1.0@{TEST_ONLY[SHIPPER]}"
    assert shipper["spec"]["replicas"] == 1, "two replicas would both watch the Events"
    assert pod["automountServiceAccountToken"] is False and pod["securityContext"]["runAsUser"] == 10001
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert json.loads(env["SOMA_CONSTRAINT_RULES"])["imagedigests"] == "digest-pinned-images"
    assert env["SOMA_AUDIT_SINK"] == "kafka" and env["SOMA_AUDIT_KAFKA_USERNAME"] == "audit-producer"
    assert "SOMA_AUDIT_KAFKA_PASSWORD" not in env and env["SOMA_AUDIT_KAFKA_PASSWORD_FILE"].startswith("/var/run/secrets/soma/")
    # the API: a token for the API server's audience only, and the cluster CA every namespace publishes
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    token_dir, token_file = env["SOMA_KUBERNETES_TOKEN_FILE"].rsplit("/", 1)
    (projected,) = volumes[mounts[token_dir]]["projected"]["sources"]
    assert projected["serviceAccountToken"]["audience"] == "https://kubernetes.default.svc.cluster.local"
    assert projected["serviceAccountToken"]["path"] == token_file
    assert volumes[mounts[env["SOMA_KUBERNETES_CA_FILE"].rsplit("/", 1)[0]]]["configMap"]["name"] == "kube-root-ca.crt"
    (role,) = [o for o in objects(plan, "ClusterRole") if o["metadata"]["name"] == "soma-audit-shipper-events"]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]}]
    (binding,) = [o for o in objects(plan, "ClusterRoleBinding") if o["roleRef"]["name"] == "soma-audit-shipper-events"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": SHIPPER, "namespace": GOV}]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_opa_uploads_its_decision_logs_to_the_shipper_through_a_flow_declared_on_both_ends(rendered, stack):
    plan = rendered[stack][0]
    (policy,) = [o for o in objects(plan, "ConfigMap") if o["metadata"]["name"] == "opa-ext-authz-policy"]
    config = json.loads(policy["data"]["config.yaml"])
    url = f"http://{SHIPPER}.{GOV}.svc.cluster.local:8080"
    assert config["services"] == {SHIPPER: {"url": url}}
    assert config["decision_logs"]["service"] == SHIPPER and config["decision_logs"]["console"] is True
    assert config["decision_logs"]["reporting"]["max_delay_seconds"] <= 60
    ingress = {o["metadata"]["name"]: o["spec"] for o in objects(plan, "NetworkPolicy") if o["metadata"]["namespace"] == GOV}
    (rule,) = ingress[f"{SHIPPER}-callers"]["ingress"]
    assert rule["ports"][0]["port"] == 8080
    assert any(peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name") == "soma-policy"
               and peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "opa-ext-authz" for peer in rule["from"])
    opa_egress = json.dumps([o["spec"] for o in objects(plan, "NetworkPolicy")
                             if o["metadata"]["namespace"] == "soma-policy" and o["metadata"]["name"].startswith("opa-ext-authz-egress")])
    assert f'"{SHIPPER}"' in opa_egress and GOV in opa_egress and "8080" in opa_egress
    shipper_egress = json.dumps([spec for name, spec in ingress.items() if name.startswith(f"{SHIPPER}-egress")])
    api_server = rendered[stack][2].core.api_server_cidr
    assert api_server in shipper_egress and "strimzi.io" in shipper_egress
    assert f"{SHIPPER}-callers" in flow_names(plan, "AuthorizationPolicy", GOV)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_gate_passes_the_shipper(rendered, stack):
    """Nothing about the shipper is refused with the catalog that pins it; with the real lock its image is."""
    plan, _, _, lock = rendered[stack]

    def about_shipper(catalog_path: str) -> list:
        config = load_config_file(stack_config_path(stack))
        for rule in config.values():
            if isinstance(rule, dict) and "catalogPath" in rule:
                rule["catalogPath"] = catalog_path
        return [line for line in run_gate(plan, config).lines if line.level in ("mandatory", "advisory")
                and (SHIPPER in line.urn or SHIPPER in line.message)]

    found = about_shipper(str(lock))
    assert found == [], "\n".join(f"{line.rule}: {line.urn}: {line.message}" for line in found)
    assert {line.rule for line in about_shipper("platform.lock.yaml")} == {"digest-pinned-images", "signed-images"}


def test_settings_refuse_an_unpinned_shipper_and_the_stack_files_keep_it_off():
    with pytest.raises(platform_settings.SettingsError) as refused:
        platform_settings.parse(config_with("dev", governance=with_shipper(stack_document("dev")["somaagenthub:governance"])), "dev")
    (problem,) = [p for p in refused.value.problems if SHIPPER in p]
    assert problem.startswith("somaagenthub:governance.compliance.shipper.enabled: platform.lock.yaml pins no image for 'audit-shipper'")
    for stack in ("dev", "staging", "prod"):
        compliance = platform_settings.parse(config_with(stack), stack).governance.compliance
        assert compliance.shipper is None or not compliance.shipper.enabled


# Metrics (docs/agents-deploy.md "Metrics"): the services push their metrics over OTLP to the collector, which
# forwards them to Prometheus' OTLP receiver (tests/test_service_metrics_e2e.py); a soma_service server listens on
# SOMA_HTTP_PORT only and has no /metrics route, so a monitor or a metrics port on its pods would be a scrape of
# nothing, its target down forever.

def unserved_scrapes(plan: dict, namespace: str, app: str) -> list[str]:
    """What the plan asks Prometheus to scrape on ``app``'s pods that the service does not serve: every container
    port other than the one it listens on (``SOMA_HTTP_PORT``), and every ServiceMonitor or PodMonitor reaching its
    pods (through a Service that selects them, or directly), on any port."""
    from tests.scrapes import selects

    (workload,) = [o for o in objects(plan) if o["kind"] in ("Deployment", "StatefulSet")
                   and o["metadata"]["namespace"] == namespace and o["metadata"]["name"] == app]
    pod_labels = workload["spec"]["template"]["metadata"]["labels"]
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    listens = int({e["name"]: e.get("value") for e in container["env"]}["SOMA_HTTP_PORT"])
    problems = [f"{app}: port {p.get('name')} ({p['containerPort']}) is declared, the service listens on {listens} only"
                for p in container.get("ports", []) if p["containerPort"] != listens]
    services = [s for s in objects(plan, "Service") if s["metadata"]["namespace"] == namespace
                and s["spec"].get("selector") and s["spec"]["selector"].items() <= pod_labels.items()]
    for monitor in objects(plan):
        if monitor["kind"] not in ("ServiceMonitor", "PodMonitor"):
            continue
        spec = monitor["spec"]
        names = (spec.get("namespaceSelector") or {}).get("matchNames", [monitor["metadata"]["namespace"]])
        if namespace not in names and not (spec.get("namespaceSelector") or {}).get("any"):
            continue
        reached = (selects(spec.get("selector", {}), pod_labels) if monitor["kind"] == "PodMonitor"
                   else any(selects(spec.get("selector", {}), s["metadata"].get("labels", {})) for s in services))
        if reached:
            endpoints = spec.get("endpoints") or spec.get("podMetricsEndpoints") or []
            problems += [f"{app}: {monitor['kind']} {monitor['metadata']['name']} scrapes {e.get('path', '/metrics')} on "
                         f"port {e.get('port') or e.get('targetPort')}, which the service does not serve" for e in endpoints]
    return problems


def test_a_soma_service_serves_no_metrics_endpoint_to_scrape():
    """The premise of the check below, from the base itself: /metrics is a 404 on the service port."""
    import sys

    from fastapi.testclient import TestClient

    from tools.render import ROOT
    if str(ROOT / "apps/common/src") not in sys.path:
        sys.path.insert(0, str(ROOT / "apps/common/src"))
    from soma_service import ServiceSettings, create_app

    app = create_app(ServiceSettings(service_name="probe"), configure_logging=False)
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/metrics").status_code == 404


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_monitor_or_metrics_port_points_at_what_the_services_do_not_serve(rendered, stack):
    plan = rendered[stack][0]
    apps = [(NS, app) for app in SERVICES] + [(GOV, SHIPPER)]
    assert [p for namespace, app in apps for p in unserved_scrapes(plan, namespace, app)] == []
    for namespace, app in apps:
        (container,) = [o for o in objects(plan, "Deployment") if o["metadata"]["namespace"] == namespace
                        and o["metadata"]["name"] == app][0]["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["OTEL_METRICS_EXPORTER"] == "otlp" and env["SOMA_OTLP_ENDPOINT"].endswith(":4317"), app
        assert f"{app}-telemetry" in flow_names(plan, "NetworkPolicy", namespace), app
        assert f"{app}-metrics-scrape" not in flow_names(plan, "NetworkPolicy", namespace), app


def test_the_check_notices_a_scrape_of_a_port_the_service_does_not_serve(rendered):
    """What the kit rendered for these services before they pushed over OTLP: a metrics port on the pod and the
    Service, and a ServiceMonitor on it."""
    plan = copy.deepcopy(rendered["dev"][0])
    gateway = next(r["inputs"] for r in plan["resources"] if r["inputs"].get("kind") == "Deployment"
                   and r["inputs"]["metadata"]["name"] == "gateway" and r["inputs"]["metadata"]["namespace"] == NS)
    gateway["spec"]["template"]["spec"]["containers"][0]["ports"].append({"name": "metrics", "containerPort": 9464, "protocol": "TCP"})
    service = next(r["inputs"] for r in plan["resources"] if r["inputs"].get("kind") == "Service"
                   and r["inputs"]["metadata"]["name"] == "gateway" and r["inputs"]["metadata"]["namespace"] == NS)
    monitor = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
               "metadata": {"name": "gateway", "namespace": NS, "labels": service["metadata"]["labels"]},
               "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": "gateway"}},
                        "endpoints": [{"port": "metrics", "path": "/metrics"}]}}
    plan["resources"].append({**next(r for r in plan["resources"] if r["inputs"] is service), "inputs": monitor,
                              "urn": "urn:test:ServiceMonitor::gateway", "type": "kubernetes:monitoring.coreos.com/v1:ServiceMonitor"})
    assert unserved_scrapes(plan, NS, "gateway") == [
        "gateway: port metrics (9464) is declared, the service listens on 8080 only",
        "gateway: ServiceMonitor gateway scrapes /metrics on port metrics, which the service does not serve",
    ]
    assert unserved_scrapes(plan, NS, "identity") == []


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_request_panels_and_service_alerts_select_what_the_services_push(rendered, stack):
    """With the services on, every query of the rendered rules and dashboards on a metric the services push over
    OTLP (producers.PUSHED) finds a pushing workload whose job (``<namespace>/<service>``) its matchers accept; the
    same check lists them as waiting when no service runs (tests/core/test_alerts_can_fire.py)."""
    from tests.core.test_alerts_can_fire import otlp_pushers, producer_problems

    plan = rendered[stack][0]
    problems, stats = producer_problems(plan, stack, parsed=rendered[stack][2])
    pushed = [p for p in problems if "http_server_request_duration_seconds" in p]
    assert pushed == [] and stats["waiting"] == set()
    assert {"http_server_request_duration_seconds_count", "http_server_request_duration_seconds_bucket"} <= stats["metrics"]
    jobs = {t.job for t in otlp_pushers(plan)}
    assert {f"{NS}/{app}" for app in SERVICES} | {f"{GOV}/{SHIPPER}"} == jobs


def test_a_service_alert_on_a_namespace_label_is_reported(rendered):
    """Pushed series carry no ``namespace`` label: a matcher on it can never match, and the check says so."""
    from tests.core.test_alerts_can_fire import _with_rule, producer_problems

    plan = _with_rule(rendered["dev"][0], 'http_server_request_duration_seconds_count{namespace="soma-agents"} > 0')
    problems, _ = producer_problems(plan, "dev", parsed=rendered["dev"][2])
    assert len(problems) == 1 and "Probe" in problems[0] and "no target has job/namespace accepted" in problems[0], problems
