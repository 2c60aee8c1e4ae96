"""cert-manager in Core and the platform CA, read from the rendered plans of both stacks (the chart
expanded into what it deploys), and the certificate metrics the alerts use, read from cert-manager's
source at the commit the catalog records.

Not shown offline: that cert-manager issues (no API server, no controller running). What is shown:
the chart is the vendored release with pinned images and hardened pods; every Issuer, ClusterIssuer
and Certificate waits for it; the CA chain links up by name; Vault's certificate comes from the
platform CA; the network lets the API server reach the webhook and Prometheus reach the metrics; the
chart's ServiceMonitor selects the controller that exports ``certmanager_certificate_expiration_timestamp_seconds``.
"""
from __future__ import annotations

import copy
import re
import subprocess

import pytest
from test_core_monitoring import alert_exprs, chart_children, matchers, matches, scrape_targets
from tests.scrapes import selects

from components import catalog
from components import settings as platform_settings
from components.core import certificates
from components.core.secrets import vault_server
from tests.helpers import config_with, objects, rule_values, stack_document, waits_for
from tools import vendor_chart
from tools.render import stack_config

STACKS = ("dev", "staging", "prod")
CHART = "kubernetes:helm.sh/v4:Chart"
ISSUANCE_KINDS = ("Issuer", "ClusterIssuer", "Certificate")
COMPONENTS = {"cert-manager": certificates.CONTROLLER_LABELS, "cert-manager-webhook": certificates.WEBHOOK_LABELS,
              "cert-manager-cainjector": certificates.CAINJECTOR_LABELS}
IMAGES = {"cert-manager": "cert-manager-controller", "cert-manager-webhook": "cert-manager-webhook",
          "cert-manager-cainjector": "cert-manager-cainjector"}


def core(stack: str):
    return platform_settings.parse(stack_config(stack), stack).core


def chart_resource(plan: dict) -> dict:
    (chart,) = [r for r in plan["resources"] if r["type"] == CHART and r["inputs"]["chart"] == "./charts/cert-manager"]
    return chart


def deployments(plan: dict) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in chart_children(plan, "cert-manager", "Deployment")}


def issuance_problems(plan: dict) -> list[str]:
    chart = chart_resource(plan)["urn"]
    return [f"{r['inputs']['kind']} {r['name']} does not wait for cert-manager"
            for r in plan["resources"]
            if r["inputs"].get("apiVersion") == certificates.API and r["inputs"].get("kind") in ISSUANCE_KINDS
            and not waits_for(plan, r, chart)]


# --- the chart -----------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", STACKS)
def test_cert_manager_is_the_vendored_chart_in_core_and_keeps_its_crds_in_prod(plans, stack):
    plan = plans[stack]
    chart = chart_resource(plan)
    assert "$somaagenthub:core:Certificates$" in chart["urn"] and chart["urn"].startswith(f"urn:pulumi:{stack}::somaagenthub::somaagenthub:phase:Core$")
    assert chart["inputs"]["namespace"] == core(stack).namespaces.operators.name
    assert chart["inputs"]["version"] == catalog.load().chart("cert-manager").version
    crds = chart_children(plan, "cert-manager", "CustomResourceDefinition")
    assert {c["spec"]["names"]["kind"] for c in crds} == {"Certificate", "CertificateRequest", "Issuer", "ClusterIssuer", "Order", "Challenge"}
    # retained where the stack protects its data (staging, prod); dev tears down completely
    kept = platform_settings.parse(stack_config(stack), stack).deletion_protection
    assert all(((c["metadata"].get("annotations") or {}).get("helm.sh/resource-policy") == "keep") is kept for c in crds)
    crd_resources = [r for r in plan["resources"] if r["parent"] == chart["urn"] and r["inputs"].get("kind") == "CustomResourceDefinition"]
    assert crd_resources and all(bool(r["options"].get("retainOnDelete")) is kept for r in crd_resources)
    assert bool(chart["options"].get("protect")) is kept, "protected where the stack protects its stores"


@pytest.mark.parametrize("stack", STACKS)
def test_every_issuer_and_certificate_waits_for_cert_manager(plans, stack):
    plan = plans[stack]
    kinds = {r["inputs"]["kind"] for r in plan["resources"] if r["inputs"].get("apiVersion") == certificates.API}
    assert set(ISSUANCE_KINDS) <= kinds
    assert issuance_problems(plan) == []


def test_the_ordering_check_notices_a_certificate_that_does_not_wait(plans):
    broken = copy.deepcopy(plans["prod"])
    (vault_tls,) = [r for r in broken["resources"] if r["inputs"].get("kind") == "Certificate"
                    and r["inputs"]["metadata"]["name"] == vault_server.TLS_SECRET]
    vault_tls["dependencies"] = []
    assert issuance_problems(broken) == [f"Certificate {vault_tls['name']} does not wait for cert-manager"]


@pytest.mark.parametrize("stack", STACKS)
def test_cert_manager_pods_run_pinned_images_hardened_and_sized_from_settings(plans, stack):
    plan = plans[stack]
    lock = catalog.load(registry=plan["settings"]["registry"])
    settings = core(stack).cert_manager
    found = deployments(plan)
    assert set(found) == set(COMPONENTS)
    for name, labels in COMPONENTS.items():
        deployment = found[name]
        pod = deployment["spec"]["template"]
        assert selects({"matchLabels": labels}, pod["metadata"]["labels"]), name
        assert deployment["spec"]["replicas"] == settings.replicas
        (container,) = pod["spec"]["containers"]
        assert container["image"] == lock.image(IMAGES[name]).reference
        assert pod["spec"]["securityContext"]["runAsUser"] == certificates.IMAGE_UID
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["resources"]["limits"] == {"cpu": settings.resources.cpu_limit, "memory": settings.resources.memory_limit}
    solver = [a for a in found["cert-manager"]["spec"]["template"]["spec"]["containers"][0]["args"] if a.startswith("--acme-http01-solver-image=")]
    assert solver == [f"--acme-http01-solver-image={lock.image('cert-manager-acmesolver').reference}"]
    budgets = {b["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] for b in chart_children(plan, "cert-manager", "PodDisruptionBudget")}
    assert budgets == ({"controller", "webhook", "cainjector"} if settings.replicas > 1 else set())
    assert not [j for j in chart_children(plan, "cert-manager", "Job")], "startupapicheck is a hook the provider never deploys"


def test_prod_runs_two_controllers_and_two_webhooks_and_refuses_one():
    assert core("prod").cert_manager.replicas >= 2
    document = stack_document("prod")["somaagenthub:core"]
    document["certManager"]["replicas"] = 1
    with pytest.raises(platform_settings.SettingsError, match="core.certManager.replicas: highAvailability is on"):
        platform_settings.parse(config_with("prod", core=document), "prod")


@pytest.mark.parametrize("stack", STACKS)
def test_leader_election_stays_in_cert_managers_namespace(plans, stack):
    plan = plans[stack]
    namespace = core(stack).namespaces.operators.name
    args = deployments(plan)["cert-manager"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--leader-election-namespace={namespace}" in args
    roles = chart_children(plan, "cert-manager", "Role")
    assert roles and {r["metadata"]["namespace"] for r in roles} == {namespace}, "no Role in kube-system"


# --- the platform CA -----------------------------------------------------------------------------

def issuance(plan: dict) -> dict[tuple[str, str | None, str], dict]:
    return {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o["spec"]
            for o in objects(plan) if o.get("apiVersion") == certificates.API and o["kind"] in ISSUANCE_KINDS}


@pytest.mark.parametrize("stack", STACKS)
def test_the_platform_ca_is_a_self_signed_root_behind_one_cluster_issuer(plans, stack):
    plan = plans[stack]
    found = issuance(plan)
    namespace = core(stack).namespaces.operators.name
    cluster_issuer = found[("ClusterIssuer", None, certificates.CLUSTER_ISSUER)]
    # a ClusterIssuer reads its CA Secret from the cluster resource namespace: the controller's own
    args = deployments(plan)["cert-manager"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--cluster-resource-namespace=$(POD_NAMESPACE)" in args and deployments(plan)["cert-manager"]["metadata"]["namespace"] == namespace
    ca = next(spec for (kind, ns, _), spec in found.items()
              if kind == "Certificate" and ns == namespace and spec["secretName"] == cluster_issuer["ca"]["secretName"])
    assert ca["isCA"] is True and ca["privateKey"]["rotationPolicy"] == "Never"
    bootstrap = found[(ca["issuerRef"]["kind"], namespace, ca["issuerRef"]["name"])]
    assert bootstrap == {"selfSigned": {}}
    signed_by_bootstrap = [spec for (kind, ns, _), spec in found.items() if kind == "Certificate" and ns == namespace
                           and spec["issuerRef"]["name"] == ca["issuerRef"]["name"]]
    assert signed_by_bootstrap == [ca], "the self-signed issuer signs the CA and nothing else"
    assert [k for k in found if k[0] == "ClusterIssuer"] == [("ClusterIssuer", None, certificates.CLUSTER_ISSUER)]


def test_vault_serves_a_certificate_from_the_platform_ca(plans):
    found = issuance(plans["prod"])
    secrets_ns = core("prod").namespaces.secrets.name
    vault_tls = found[("Certificate", secrets_ns, vault_server.TLS_SECRET)]
    assert vault_tls["secretName"] == vault_server.TLS_SECRET
    assert vault_tls["issuerRef"] == {"name": certificates.CLUSTER_ISSUER, "kind": "ClusterIssuer", "group": "cert-manager.io"}
    assert not [k for k in found if k[1] == secrets_ns and k[0] == "Issuer"], "no private CA chain beside Vault any more"
    assert not [k for k in issuance(plans["dev"]) if k[1] == core("dev").namespaces.secrets.name], "dev Vault serves plain HTTP"


# --- network ---------------------------------------------------------------------------------------

def policies_for(plan: dict, namespace: str, labels: dict, direction: str) -> list[dict]:
    return [p["spec"] for p in objects(plan, "NetworkPolicy")
            if p["metadata"]["namespace"] == namespace and direction in p["spec"]["policyTypes"]
            and selects(p["spec"]["podSelector"], labels)]


@pytest.mark.parametrize("stack", STACKS)
def test_the_api_server_reaches_the_webhook_and_every_pod_reaches_the_api_server(plans, stack):
    plan = plans[stack]
    settings = core(stack)
    namespace = settings.namespaces.operators.name
    api = {"ipBlock": {"cidr": settings.api_server_cidr}}
    webhook = deployments(plan)["cert-manager-webhook"]
    (container,) = webhook["spec"]["template"]["spec"]["containers"]
    https = next(p["containerPort"] for p in container["ports"] if p["name"] == "https")
    (service,) = [s for s in chart_children(plan, "cert-manager", "Service") if s["metadata"]["name"] == "cert-manager-webhook"]
    assert next(p for p in service["spec"]["ports"] if p["name"] == "https")["targetPort"] == "https"
    labels = webhook["spec"]["template"]["metadata"]["labels"]
    assert any(api in rule["from"] and {"protocol": "TCP", "port": https} in rule["ports"]
               for spec in policies_for(plan, namespace, labels, "Ingress") for rule in spec["ingress"])
    for name, deployment in deployments(plan).items():
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert any(api in rule["to"] and {"protocol": "TCP", "port": 443} in rule["ports"]
                   for spec in policies_for(plan, namespace, pod_labels, "Egress") for rule in spec["egress"]), name


# --- scraped, and the alerts can fire ---------------------------------------------------------------

@pytest.mark.parametrize("stack", STACKS)
def test_the_chart_service_monitor_scrapes_the_controller_with_honored_labels(plans, stack):
    plan = plans[stack]
    namespace = core(stack).namespaces.operators.name
    (monitor,) = chart_children(plan, "cert-manager", "ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["honorLabels"] is True, "else Prometheus renames the certificates' namespace and name labels exported_*"
    controller = deployments(plan)["cert-manager"]["spec"]["template"]["metadata"]["labels"]
    targets = scrape_targets(plan, monitor)
    assert (namespace, controller, certificates.METRICS_PORT) in targets
    assert {labels["app.kubernetes.io/component"] for _, labels, _ in targets} == {"controller", "webhook", "cainjector"}
    assert {port for _, _, port in targets} == {certificates.METRICS_PORT}
    # the job label: the selected controller Service's value of the monitor's jobLabel
    (service,) = [s for s in chart_children(plan, "cert-manager", "Service") if s["metadata"]["name"] == certificates.METRICS_SERVICE]
    assert selects({"matchLabels": service["spec"]["selector"]}, controller)
    job = service["metadata"]["labels"][monitor["spec"]["jobLabel"]]
    expr = alert_exprs()["CertManagerDown"]
    assert all(matches(m, job) for m in matchers(expr, "job")) and matchers(expr, "job")
    assert all(matches(m, namespace) for m in matchers(expr, "namespace")) and matchers(expr, "namespace")


CERT_MANAGER_METRICS = re.compile(r'prometheus\.NewDesc\(\s*"(certmanager_[a-z_]+)",\s*"[^"]*",\s*\[\]string\{([^}]*)\}')
COLLECTORS = {"internal/collectors/certificate_collector.go": "NewCertificateCollector",
              "internal/collectors/issuer_collector.go": "NewIssuerCollector",
              "internal/collectors/clusterissuer_collector.go": "NewClusterIssuerCollector",
              "internal/collectors/acme_collector.go": "NewACMECollector"}
"""Where the controller's certmanager_* metrics are defined, and the constructor that pkg/metrics/metrics.go
must call for them to be served on the controller's metrics endpoint."""


@pytest.fixture(scope="module")
def exported() -> dict[str, set[str]]:
    """``metric -> labels`` of every certmanager_* metric the controller of the vendored release serves: defined
    by a collector that pkg/metrics/metrics.go registers, read from cert-manager's Git repository at the
    commit platform.lock.yaml records for the chart (its images are that release)."""
    record = vendor_chart.load_vendored_records()["cert-manager"]
    mirror = vendor_chart.MIRRORS / record["upstream"]["git"].removeprefix("github.com/").replace("/", "+") / "repo"
    if not mirror.is_dir():
        pytest.skip(f"cert-manager's Git repository is not on this machine ({mirror}); `fetch` or clone it there")

    def show(path: str) -> str:
        return subprocess.run(["git", "-C", str(mirror), "show", f"{record['upstream']['commit']}:{path}"],
                              capture_output=True, text=True, check=True).stdout

    served = show("pkg/metrics/metrics.go")
    found: dict[str, set[str]] = {}
    for path, constructor in COLLECTORS.items():
        if f"cmcollectors.{constructor}(" not in served:
            continue
        for name, labels in CERT_MANAGER_METRICS.findall(show(path)):
            found[name] = set(re.findall(r'"([a-z_]+)"', labels))
    return found


def metric_problems(exprs: dict[str, str], exported: dict[str, set[str]]) -> list[str]:
    """Each certmanager_* metric an alert uses must be exported, and every label it groups by, matches
    on or prints (``$labels.x``) must be one of the metric's own."""
    from components.core.observability.catalog import load_alert_groups

    annotations = {rule["alert"]: " ".join(rule.get("annotations", {}).values())
                   for spec in load_alert_groups(rule_values("prod")).values() for group in spec["groups"] for rule in group["rules"]}
    problems = []
    for alert, expr in exprs.items():
        for metric in set(re.findall(r"\bcertmanager_[a-z_]+", expr)):
            if metric not in exported:
                problems.append(f"{alert}: {metric} is not exported by the vendored cert-manager")
                continue
            used = set(re.findall(r"\bby\s*\(([^)]*)\)", expr))
            labels = {label.strip() for group in used for label in group.split(",")}
            labels |= set(re.findall(rf"{metric}\{{([a-z_]+)\s*=", expr))
            labels |= set(re.findall(r"\$labels\.([a-z_]+)", annotations.get(alert, "")))
            missing = sorted(labels - exported[metric])
            if missing:
                problems.append(f"{alert}: {metric} has no label {missing}")
    return problems


def test_the_certificate_alerts_use_metrics_the_deployed_cert_manager_exports(exported):
    exprs = {alert: expr for alert, expr in alert_exprs().items() if "certmanager_" in expr}
    assert {"CertificateExpiringSoon", "CertificateExpiryImminent", "CertificateNotReady"} <= set(exprs)
    assert "certmanager_certificate_expiration_timestamp_seconds" in exported
    assert {"name", "namespace"} <= exported["certmanager_certificate_expiration_timestamp_seconds"]
    assert metric_problems(exprs, exported) == []


def test_the_metric_check_notices_a_metric_or_label_cert_manager_does_not_export(exported):
    exprs = {"Renamed": "certmanager_certificate_expiry_seconds - time() < 0",
             "WrongLabel": "max by (secret) (certmanager_certificate_ready_status) == 0"}
    assert metric_problems(exprs, exported) == [
        "Renamed: certmanager_certificate_expiry_seconds is not exported by the vendored cert-manager",
        "WrongLabel: certmanager_certificate_ready_status has no label ['secret']",
    ]
