"""High availability that is real (issue 10, point 1), read from the settings and the rendered plans.

* Grafana: every replica keeps its state in one PostgreSQL database on the platform's
  CloudNativePG Cluster: grafana.ini names the Cluster's primary Service, a Database the plan
  declares and its owner role; the password reaches Grafana from Vault through ESO and is the very
  credential the role is created with; the NetworkPolicies on both ends let Grafana's pods (and no
  unlabelled pod) reach the instances on 5432.
* Alertmanager: receivers come from the stack settings, which hold no credential and refuse what
  cannot work (a route to an undeclared receiver, a receiver routed nowhere, an email receiver without
  its server, a prod stack that pages nobody or has no heartbeat, unless ``noReceiverReason`` says
  why). The configuration the chart renders into the Secret the operator reads is decoded and
  checked with Alertmanager's own ``amtool check-config``, routed with ``amtool config routes test``
  (critical pages, warning goes to the channel, info and the unlabelled go nowhere, the Watchdog
  goes to the heartbeat only), and its credentials are files in the ESO Secret the Alertmanager
  mounts, filled from the administrator's Vault path; each receiver has its own egress, nothing more.
  Inhibitions name alerts the plan's rules define, in one namespace. The amtool tests need
  ``.tools/bin/amtool`` (``make amtool``) and skip, saying so, without it.
* Tempo: what runs is what the settings say. The only Tempo chart vendored is the monolithic one,
  whose replicas do not coordinate, so ``mode: scalable`` and more than one replica are refused
  with the key named, an HA stack must say why one replica is acceptable, and the rendered Tempo is
  one single-binary pod in every stack.

The collector's one exporter per Prometheus replica is shown in test_core_observability.py
(``test_every_prometheus_replica_is_a_target_of_the_collector``).
"""
from __future__ import annotations

import base64
import configparser
import copy
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import yaml

from components import settings as platform_settings
from components.config_schema import SettingsError
from tests.helpers import config_with, objects
from tools.render import stack_config

STACKS = ("dev", "staging", "prod")


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


# --- Alertmanager ---------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def amtool() -> str | None:
    found = os.environ.get("AMTOOL") or (str(ROOT / ".tools/bin/amtool") if (ROOT / ".tools/bin/amtool").exists() else None)
    return found or shutil.which("amtool")


needs_amtool = pytest.mark.skipif(amtool() is None, reason="no amtool: `make amtool` fetches Debian 13's (tools/fetch_amtool.sh)")


def edit_alerting(stack: str, **changes) -> list[str]:
    return problems(stack, lambda c: c["observability"].setdefault("alertmanager", {}).update(changes))


def test_prod_must_page_someone_and_send_a_heartbeat_unless_it_says_why():
    found = edit_alerting("prod", critical=[], heartbeat=None, receivers={"team-chat": {"type": "webhook", "egressCidr": "203.0.113.0/24"}})
    assert found == [
        "somaagenthub:core.observability.alertmanager.critical: policyEnforcement is mandatory, so critical alerts must page "
        "a receiver, or alertmanager.noReceiverReason must say why none does",
        "somaagenthub:core.observability.alertmanager.heartbeat: policyEnforcement is mandatory, so a heartbeat receiver must "
        "notice when alerting stops, or alertmanager.noReceiverReason must say why there is none",
    ]
    core = json.loads(stack_config("prod")["somaagenthub:core"])
    core["observability"]["alertmanager"] = {"receivers": {}, "noReceiverReason": "paging is run by the cluster's shared Alertmanager"}
    assert platform_settings.parse(config_with("prod", core=core), "prod").core.observability.alertmanager.receivers == {}


def test_routes_name_declared_receivers_and_every_receiver_is_routed():
    found = edit_alerting("prod", warning=["team-chat", "chat"], receivers={
        "pager": {"type": "pagerduty", "egressCidr": "198.51.100.0/24"},
        "team-chat": {"type": "webhook", "egressCidr": "203.0.113.0/24"},
        "heartbeat": {"type": "webhook", "egressCidr": "203.0.113.0/24"},
        "spare": {"type": "webhook", "egressCidr": "203.0.113.0/24"},
    })
    assert found == [
        "somaagenthub:core.observability.alertmanager.warning: 'chat' is not a receiver (declared: heartbeat, pager, spare, team-chat)",
        "somaagenthub:core.observability.alertmanager.receivers.spare: declared but routed nowhere (name it in critical, warning or heartbeat)",
    ]


def test_a_receiver_has_no_place_for_a_credential_and_its_type_decides_its_fields():
    found = edit_alerting("dev", critical=["chat", "mail"], receivers={
        "chat": {"type": "webhook", "egressCidr": "203.0.113.0/24", "url": "https://hooks.example/T0/secret-token"},
        "mail": {"type": "email", "egressCidr": "192.0.2.0/24", "egressPort": 25, "smarthost": "smtp.example.com:587"},
        "page": {"type": "pagerduty", "egressCidr": "0.0.0.0/0", "to": "ops@example.com"},
    }, warning=["page"])
    key = "somaagenthub:core.observability.alertmanager.receivers"
    assert any(p.startswith(f"{key}.chat.url: unknown key") for p in found), found
    assert f"{key}.mail: receiver type 'email' needs to, fromAddress; egressPort 25 is not the smarthost's port 587" in found
    assert any(p.startswith(f"{key}.page.egressCidr: /0 is too broad") for p in found), found
    assert not any("secret-token" in p for p in found), "a refused value is not echoed"


def kps_values(plan: dict) -> dict:
    (chart,) = [r for r in plan["resources"] if r["type"] == "kubernetes:helm.sh/v4:Chart" and r["name"] == "kube-prometheus-stack"]
    return chart["inputs"]


def rendered_alertmanager_config(plan: dict, stack: str) -> str:
    """The alertmanager.yaml the chart renders into the Secret the operator reads (the plan masks Secret
    data, so the chart is rendered again with the plan's values and the Secret decoded)."""
    from tools import helm_engine

    chart = kps_values(plan)
    out = helm_engine.template(ROOT / chart["chart"], chart["values"], release="kube-prometheus-stack",
                               namespace=chart["namespace"], kube_version=loaded(stack).kubernetes_version)
    (doc,) = [yaml.safe_load(text) for path, text in out.manifests.items() if path.endswith("templates/alertmanager/secret.yaml")]
    from tests.verification import validate

    assert validate(doc, loaded(stack).kubernetes_version) == []
    (alertmanager,) = objects(plan, "Alertmanager")
    assert doc["metadata"]["name"] == f"alertmanager-{alertmanager['metadata']['name']}", "the Secret the operator reads by default"
    assert "configSecret" not in alertmanager["spec"]
    return base64.b64decode(doc["data"]["alertmanager.yaml"]).decode()


@pytest.fixture(scope="module")
def alertmanager_configs(plans) -> dict[str, str]:
    return {stack: rendered_alertmanager_config(plans[stack], stack) for stack in STACKS}


def run_amtool(*args: str) -> str:
    done = subprocess.run([amtool(), *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@needs_amtool
@pytest.mark.parametrize("stack", STACKS)
def test_amtool_accepts_the_rendered_configuration(alertmanager_configs, stack, tmp_path):
    path = tmp_path / "alertmanager.yaml"
    path.write_text(alertmanager_configs[stack])
    out = run_amtool("check-config", str(path))
    assert "SUCCESS" in out


def route(config: Path, labels: dict[str, str]) -> set[str]:
    out = run_amtool("config", "routes", "test", f"--config.file={config}", *(f"{k}={v}" for k, v in labels.items()))
    return set(out.strip().split(","))


@needs_amtool
def test_prod_routes_critical_to_the_pager_warning_to_the_channel_info_nowhere_and_the_watchdog_to_the_heartbeat(alertmanager_configs, tmp_path):
    am = loaded("prod").core.observability.alertmanager
    path = tmp_path / "alertmanager.yaml"
    path.write_text(alertmanager_configs["prod"])
    assert route(path, {"alertname": "VaultDown", "severity": "critical", "namespace": "soma-secrets"}) == set(am.critical)
    assert route(path, {"alertname": "LokiDown", "severity": "warning", "namespace": "soma-observability"}) == set(am.warning)
    assert route(path, {"alertname": "PodRestartingOften", "severity": "info"}) == {"null"}
    assert route(path, {"alertname": "SomethingWithoutSeverity"}) == {"null"}
    assert route(path, {"alertname": "Watchdog", "severity": "none"}) == {am.heartbeat}
    assert am.heartbeat not in set(am.critical) | set(am.warning)


@needs_amtool
def test_dev_without_receivers_notifies_nobody(alertmanager_configs, tmp_path):
    path = tmp_path / "alertmanager.yaml"
    path.write_text(alertmanager_configs["dev"])
    for labels in ({"severity": "critical"}, {"severity": "warning"}, {"alertname": "Watchdog"}):
        assert route(path, labels) == {"null"}
    assert [r["name"] for r in yaml.safe_load(alertmanager_configs["dev"])["receivers"]] == ["null"]


@needs_amtool
def test_an_email_receiver_with_a_password_passes_amtool(tmp_path):
    from components.core.observability import alerting

    settings = platform_settings.AlertmanagerSettings(
        receivers={"ops-mail": platform_settings.ReceiverSettings(
            type="email", egress_cidr="192.0.2.0/24", egress_port=587, to="ops@soma.example.com",
            from_address="alertmanager@soma.example.com", smarthost="smtp.soma.example.com:587", auth_username="alertmanager")},
        warning=("ops-mail",))
    path = tmp_path / "alertmanager.yaml"
    path.write_text(yaml.safe_dump(alerting.config(settings, vault_configured=True)))
    assert "SUCCESS" in run_amtool("check-config", str(path))
    assert route(path, {"severity": "warning"}) == {"ops-mail"}
    (mail,) = yaml.safe_load(path.read_text())["receivers"][1]["email_configs"]
    assert mail["auth_password_file"].endswith("/ops-mail") and mail["require_tls"] is True


CREDENTIAL_KEYS = {"url", "routing_key", "service_key", "auth_password", "auth_secret", "api_url", "api_key", "token", "password"}


@pytest.mark.parametrize("stack", STACKS)
def test_every_credential_is_a_file_of_the_mounted_eso_secret_filled_from_the_administrators_path(plans, alertmanager_configs, stack):
    s = loaded(stack)
    am, ns = s.core.observability.alertmanager, s.core.namespaces.observability.name
    config = yaml.safe_load(alertmanager_configs[stack])
    files = {}
    for receiver in config["receivers"]:
        for kind, integrations in receiver.items():
            if kind == "name":
                continue
            for integration in integrations:
                assert not CREDENTIAL_KEYS & set(integration), (receiver["name"], sorted(integration))
                files.update({receiver["name"]: v for k, v in integration.items() if k.endswith("_file")})
    (alertmanager,) = objects(plans[stack], "Alertmanager")
    mounted = alertmanager["spec"].get("secrets", [])
    wanted = {n for n, r in am.receivers.items() if r.has_credential}
    assert set(files) == wanted
    for name, path in files.items():
        directory, secret, key = path.rsplit("/", 2)
        assert directory == "/etc/alertmanager/secrets" and secret in mounted and key == name
    if not wanted:
        assert mounted == [] and not [e for e in objects(plans[stack], "ExternalSecret") if e["metadata"]["name"].startswith("alertmanager")]
        return
    (secret,) = mounted
    external = one(plans[stack], "ExternalSecret", ns, secret)
    assert {d["secretKey"] for d in external["spec"]["data"]} == wanted
    assert {d["remoteRef"]["key"] for d in external["spec"]["data"]} == {am.credentials_path}
    assert not [w for w in plans[stack]["resources"] if w["type"] == "vault:kv/secretV2:SecretV2"
                and w["inputs"]["name"] == am.credentials_path], "the program never writes the administrator's path"


@pytest.mark.parametrize("stack", STACKS)
def test_alertmanager_reaches_each_receiver_on_its_own_range_and_port_only(plans, stack):
    s = loaded(stack)
    ns = s.core.namespaces.observability.name
    alertmanager_pod = {"app.kubernetes.io/name": "alertmanager", "alertmanager": "kps-alertmanager"}
    egress = [p for p in objects(plans[stack], "NetworkPolicy") if p["metadata"]["namespace"] == ns and "Egress" in p["spec"]["policyTypes"]
              and label_selects(p["spec"]["podSelector"], alertmanager_pod)]
    outside = {(peer["ipBlock"]["cidr"], port["port"]) for p in egress for r in p["spec"].get("egress", []) for peer in r["to"]
               if "ipBlock" in peer for port in r["ports"]}
    assert outside == {(r.egress_cidr, r.egress_port) for r in s.core.observability.alertmanager.receivers.values()}


def label_selects(selector: dict, labels: dict) -> bool:
    return selector.get("matchLabels", {}).items() <= labels.items() and all(
        (e["operator"] == "In" and labels.get(e["key"]) in e["values"]) or (e["operator"] == "NotIn" and labels.get(e["key"]) not in e["values"])
        or (e["operator"] == "Exists" and e["key"] in labels) or (e["operator"] == "DoesNotExist" and e["key"] not in labels)
        for e in selector.get("matchExpressions", []))


def rule_alerts(plan: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for rule in objects(plan, "PrometheusRule"):
        for group in rule["spec"]["groups"]:
            for r in group["rules"]:
                if "alert" in r:
                    found.setdefault(r["alert"], []).append(r)
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_the_dead_mans_switch_always_fires_and_is_the_heartbeat_route(plans, alertmanager_configs, stack):
    (watchdog,) = rule_alerts(plans[stack])["Watchdog"]
    assert watchdog["expr"].strip() == "vector(1)" and "for" not in watchdog
    routes = yaml.safe_load(alertmanager_configs[stack])["route"]["routes"]
    assert routes[0]["matchers"] == ['alertname = "Watchdog"'] and not routes[0].get("continue")
    assert routes[0]["receiver"] == (loaded(stack).core.observability.alertmanager.heartbeat or "null")


@pytest.mark.parametrize("stack", STACKS)
def test_each_inhibition_names_alerts_the_rules_define_in_one_namespace(plans, alertmanager_configs, stack):
    """``equal: [namespace]`` holds only when cause and symptom carry the same namespace: both rules must
    select that one namespace, so the inhibition can take effect and cannot reach another namespace."""
    import re

    alerts = rule_alerts(plans[stack])
    inhibitions = [r for r in yaml.safe_load(alertmanager_configs[stack])["inhibit_rules"] if r["equal"] == ["namespace"]]
    assert len(inhibitions) >= 3
    for rule in inhibitions:
        (cause,) = re.fullmatch(r'alertname = "(\w+)"', rule["source_matchers"][0]).groups()
        symptoms = re.fullmatch(r'alertname =~ "([\w|]+)"', rule["target_matchers"][0]).group(1).split("|")
        exprs = {name: " ".join(r["expr"] for r in alerts[name]) for name in [cause, *symptoms]}
        (where,) = set(re.findall(r'namespace="([^"]+)"', exprs[cause]))
        for symptom in symptoms:
            named = set(re.findall(r'namespace="([^"]+)"', exprs[symptom]))
            assert named <= {where}, (symptom, named)
            assert keeps_namespace(exprs[symptom]), f"{symptom} drops the namespace label, so the inhibition cannot match it"
        assert {r["labels"]["severity"] for r in alerts[cause]} == {"critical"}


def keeps_namespace(expr: str) -> bool:
    """Every aggregation keeps ``namespace`` (``by (..., namespace, ...)``, never ``without (namespace)``)."""
    import re

    by = re.findall(r"\bby\s*\(([^)]*)\)", expr)
    without = re.findall(r"\bwithout\s*\(([^)]*)\)", expr)
    return all("namespace" in [l.strip() for l in labels.split(",")] for labels in by) and not any(
        "namespace" in [l.strip() for l in labels.split(",")] for labels in without)


def test_the_namespace_check_notices_an_aggregation_that_drops_it():
    assert keeps_namespace("max by (namespace, pod) (vault_core_unsealed) == 0")
    assert not keeps_namespace("sum by (consumergroup, topic) (kafka_consumergroup_lag) > 10")
    assert not keeps_namespace("sum without (namespace) (up)")
