"""Workload identity as both stacks render it: settings refused with the key named; the mesh CA in Vault,
the Vault Issuer and the ``cacerts`` Certificate in the plan, in order; Core's certificate alerts covering
that Certificate; and the istiod/ztunnel values accepted by Istio 1.30.2's own charts, rendered from the
mirror, doing what the plug-in CA needs."""
from __future__ import annotations

import io
import re
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from components.mesh.identity import plugin_ca
from components.mesh.identity.pki import CA_SECRET, INTERMEDIATE_COMMON_NAME, ROOT_MOUNT, SIGNER_POLICY, MeshCa
from components.mesh.identity.vault_pki import mesh_ca
from components.settings import CERTIFICATE_WARNING_SECONDS, duration_seconds
from tests.helpers import by_type, config_with, objects, stack_document, waits_for

STACKS = ("dev", "staging", "prod")
ROOT = Path(__file__).resolve().parents[2]
ISTIO_MIRROR = Path("/work/.mirror/istio+istio/repo")
ISTIO_TAG = "1.30.2"
CORE_CERTIFICATE_ALERTS = ROOT / "components/core/observability/alerts/certificates.yaml"


def _identity(stack: str, **changes) -> dict:
    mesh = stack_document(stack)["somaagenthub:mesh"]
    mesh["identity"] = {**mesh["identity"], **changes}
    return config_with(stack, mesh=mesh)


def _loaded(stack: str):
    from components import settings
    from tools.render import stack_config

    return settings.parse(stack_config(stack), stack)


def _ca(stack: str) -> MeshCa:
    return mesh_ca(_loaded(stack).mesh)


@pytest.mark.parametrize(("changes", "needle"), [
    ({"trustDomain": "cluster.local"}, "mesh.identity.trustDomain: 'cluster.local' is Istio's default"),
    ({"trustDomain": "other.example.org"}, "mesh.identity.trustDomain: 'other.example.org' must be the stack's domain"),
    ({"leafTtl": "48h"}, "mesh.identity.leafTtl"),
    ({"leafTtl": "500ms"}, "mesh.identity.leafTtl"),
    ({"intermediateTtl": "5h"}, "mesh.identity.intermediateTtl"),
    ({"intermediateRenewBefore": "10d"}, "mesh.identity.intermediateRenewBefore: must be shorter than intermediateTtl"),
    ({"intermediateRenewBefore": "400d"}, "mesh.identity.intermediateRenewBefore"),
    ({"rootTtl": "400d"}, "mesh.identity.rootTtl"),
])
def test_bad_identity_settings_are_refused_naming_the_key(changes, needle):
    from components import settings

    with pytest.raises(settings.SettingsError) as error:
        settings.parse(_identity("prod", **changes), "prod")
    assert any(needle in p for p in error.value.problems), error.value.problems


def test_a_trust_domain_under_the_stacks_domain_is_accepted():
    from components import settings

    loaded = settings.parse(_identity("prod", trustDomain="mesh.soma.example.com"), "prod")
    assert loaded.mesh.identity.trust_domain == "mesh.soma.example.com"


# --------------------------------------------------------------------------------------------
# The plan


@pytest.mark.parametrize("stack", STACKS)
def test_the_plan_configures_the_mesh_root_and_a_signer_pinned_to_istiods_intermediate(plans, stack):
    plan = plans[stack]
    ca = _ca(stack)
    (root,) = by_type(plan, "vault:pkiSecret/secretBackendRootCert:SecretBackendRootCert")
    assert root["inputs"]["type"] == "internal" and root["inputs"]["maxPathLength"] == 1
    protects = _loaded(stack).deletion_protection
    assert (root["options"].get("protect") is True) == protects, "the root is protected where the stack protects data"
    mounts = [m["inputs"]["path"] for m in by_type(plan, "vault:index/mount:Mount") if m["inputs"]["path"].startswith("pki_mesh")]
    assert mounts == [ROOT_MOUNT], "one mount: the root signs istiod's intermediate directly"
    assert not by_type(plan, "vault:pkiSecret/secretBackendRole:SecretBackendRole"), "no leaf-signing role in Vault"
    (policy,) = [p for p in by_type(plan, "vault:index/policy:Policy") if p["inputs"]["name"] == SIGNER_POLICY]
    text = policy["inputs"]["policy"]
    assert re.findall(r'^path "([^"]+)"', text, re.M) == [f"{ROOT_MOUNT}/root/sign-intermediate"]
    assert f'"uri_sans" = ["spiffe://{ca.trust_domain}"]' in text
    assert f'"common_name" = ["{INTERMEDIATE_COMMON_NAME}"]' in text


@pytest.mark.parametrize("stack", STACKS)
def test_the_vault_issuer_asks_the_root_for_intermediates_as_its_own_service_account(plans, stack):
    (issuer,) = [o for o in objects(plans[stack], "Issuer") if o["metadata"]["name"] == "mesh-ca"]
    vault = issuer["spec"]["vault"]
    assert vault["path"] == f"{ROOT_MOUNT}/root/sign-intermediate"
    assert vault["auth"]["kubernetes"]["serviceAccountRef"] == {"name": "vault-issuer", "audiences": ["vault"]}
    assert ("caBundleSecretRef" in vault) == vault["server"].startswith("https://")
    assert vault["server"].startswith("https://") == (_loaded(stack).core.vault.mode == "raft")
    (role,) = [o for o in objects(plans[stack], "Role") if o["metadata"]["name"] == "cert-manager-vault-issuer-token"]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"],
                              "resourceNames": ["vault-issuer"]}]


@pytest.mark.parametrize("stack", STACKS)
def test_the_cacerts_certificate_is_what_the_signer_policy_admits_and_is_awaited(plans, stack):
    plan = plans[stack]
    ca = _ca(stack)
    identity = stack_document(stack)["somaagenthub:mesh"]["identity"]
    (resource,) = [r for r in plan["resources"] if r["inputs"].get("kind") == "Certificate"
                   and r["inputs"]["metadata"]["name"] == CA_SECRET]
    certificate = resource["inputs"]
    assert certificate["metadata"]["namespace"] == "soma-mesh"
    assert certificate["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Ready"
    spec = certificate["spec"]
    assert spec["secretName"] == "cacerts" and spec["isCA"] is True
    assert spec["commonName"] == INTERMEDIATE_COMMON_NAME and spec["uris"] == [f"spiffe://{identity['trustDomain']}"]
    assert "dnsNames" not in spec and "ipAddresses" not in spec
    assert spec["duration"] == f"{duration_seconds(identity['intermediateTtl'])}s"
    assert spec["renewBefore"] == f"{duration_seconds(identity['intermediateRenewBefore'])}s"
    assert spec["issuerRef"] == {"name": "mesh-ca", "kind": "Issuer", "group": "cert-manager.io"}
    # what cert-manager will send is exactly what the policy pins (the body test_mesh_pki signs with)
    assert ca.signing_request("csr")["ttl"] in resource_policy(plan)
    (issuer,) = [r for r in plan["resources"] if r["inputs"].get("kind") == "Issuer" and r["inputs"]["metadata"]["name"] == "mesh-ca"]
    assert waits_for(plan, resource, issuer["urn"])


def resource_policy(plan: dict) -> str:
    (policy,) = [p for p in by_type(plan, "vault:index/policy:Policy") if p["inputs"]["name"] == SIGNER_POLICY]
    return policy["inputs"]["policy"]


@pytest.mark.parametrize("stack", STACKS)
def test_core_certificate_alerts_cover_the_intermediate_and_fire_only_when_its_renewal_fails(stack):
    """Core's rules match every Certificate (no namespace or name filter), so ``soma-mesh/cacerts`` too;
    CertificateExpiringSoon's horizon is the one the settings check renewBefore against, and renewal
    happens before it, so the alert means "renewal is failing"."""
    rules = {r["alert"]: r["expr"] for g in yaml.safe_load(CORE_CERTIFICATE_ALERTS.read_text())["groups"] for r in g["rules"]}
    for alert in ("CertificateExpiringSoon", "CertificateExpiryImminent", "CertificateNotReady"):
        assert "namespace=" not in rules[alert] and "name=" not in rules[alert], alert
    (horizon,) = {int(a) * int(b) * int(c) for a, b, c in re.findall(r"< (\d+) \* (\d+) \* (\d+)", rules["CertificateExpiringSoon"])}
    assert horizon == CERTIFICATE_WARNING_SECONDS
    ca = _ca(stack)
    assert ca.intermediate_renew_before > horizon


# --------------------------------------------------------------------------------------------
# The values istiod and ztunnel need, rendered by Istio 1.30.2's own charts


def _istio_chart(path: str, into: Path) -> Path:
    if not (ISTIO_MIRROR / "HEAD").exists() and not (ISTIO_MIRROR / ".git").exists():
        pytest.skip(f"the Istio {ISTIO_TAG} sources are not on this machine ({ISTIO_MIRROR})")
    archive = subprocess.run(["git", "-C", str(ISTIO_MIRROR), "archive", "--format=tar", ISTIO_TAG, path],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / path


def _objects(rendered) -> list[dict]:
    return [doc for path, text in rendered.manifests.items() if path.endswith((".yaml", ".yml"))
            for doc in yaml.safe_load_all(text) if doc]


def _container(workload: dict, names: tuple[str, ...]) -> dict:
    (container,) = [c for c in workload["spec"]["template"]["spec"]["containers"] if c["name"] in names]
    return container


@pytest.mark.parametrize("stack", STACKS)
def test_istiod_reads_cacerts_as_its_signing_ca_with_these_values(tmp_path, stack):
    from tools.helm_engine import template

    ca = _ca(stack)
    chart = _istio_chart("manifests/charts/istio-control/istio-discovery", tmp_path)
    rendered = _objects(template(chart, plugin_ca.istiod_values(ca), release="istiod", namespace="soma-mesh", kube_version="1.33"))
    (deployment,) = [o for o in rendered if o.get("kind") == "Deployment"]
    container = _container(deployment, ("discovery",))
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    assert env["ROOT_CA_DIR"] == "/etc/cacerts"
    assert env["DEFAULT_WORKLOAD_CERT_TTL"] == env["MAX_WORKLOAD_CERT_TTL"] == f"{ca.leaf_ttl}s"
    assert "ENABLE_CA_SERVER" not in env, "istiod is the CA (its default), signing with Vault's intermediate"
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["cacerts"]["secret"]["secretName"] == CA_SECRET
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["cacerts"] == env["ROOT_CA_DIR"], "the Secret is mounted where istiod looks for tls.crt"
    (mesh,) = [o for o in rendered if o.get("kind") == "ConfigMap" and o["metadata"]["name"] == "istio"]
    mesh_config = yaml.safe_load(mesh["data"]["mesh"])
    assert mesh_config["trustDomain"] == ca.trust_domain
    assert mesh_config["defaultConfig"]["proxyMetadata"]["SECRET_TTL"] == f"{ca.leaf_ttl}s", "waypoints ask for the leaf TTL"


def test_istiod_1_30_2_reads_the_tls_layout_and_reloads_it_without_a_switch():
    """The source facts istiod_values relies on, read at the tag (not assumed): kubernetes.io/tls file
    names, the cacerts Secret name, the watcher started for a plugged CA, AUTO_RELOAD_PLUGIN_CERTS gone."""
    if not (ISTIO_MIRROR / "HEAD").exists() and not (ISTIO_MIRROR / ".git").exists():
        pytest.skip(f"the Istio {ISTIO_TAG} sources are not on this machine ({ISTIO_MIRROR})")

    def show(path: str) -> str:
        return subprocess.run(["git", "-C", str(ISTIO_MIRROR), "show", f"{ISTIO_TAG}:{path}"], check=True, capture_output=True, text=True).stdout

    ca_go = show("security/pkg/pki/ca/ca.go")
    for constant, value in (("TLSSecretCACertFile", "tls.crt"), ("TLSSecretCAPrivateKeyFile", "tls.key"),
                            ("TLSSecretRootCertFile", "ca.crt"), ("CACertsSecret", CA_SECRET)):
        assert re.search(rf'{constant}\s*=\s*"{re.escape(value)}"', ca_go), constant
    bootstrap = show("pilot/pkg/bootstrap/istio_ca.go")
    assert 'env.Register("ROOT_CA_DIR", "./etc/cacerts"' in bootstrap
    plugged = bootstrap[bootstrap.index('log.Info("Use local CA certificate")'):]
    assert "s.initCACertsAndCRLWatcher()" in plugged[:plugged.index("istioCA, err := ca.NewIstioCA")]
    grep = subprocess.run(["git", "-C", str(ISTIO_MIRROR), "grep", "-l", "AUTO_RELOAD_PLUGIN_CERTS", ISTIO_TAG, "--", "pilot", "pkg", "security"],
                          capture_output=True, text=True)
    assert grep.stdout == "", "the switch is gone from the code (releasenotes/notes/drop-reload-plugin-certs.yaml)"


@pytest.mark.parametrize("stack", STACKS)
def test_ztunnel_asks_istiod_for_leaf_ttl_certificates_in_the_trust_domain(tmp_path, stack):
    from tools.helm_engine import template

    ca = _ca(stack)
    chart = _istio_chart("manifests/charts/ztunnel", tmp_path)
    rendered = _objects(template(chart, plugin_ca.ztunnel_values(ca), release="ztunnel", namespace="soma-mesh-node", kube_version="1.33"))
    (daemonset,) = [o for o in rendered if o.get("kind") == "DaemonSet"]
    env = {e["name"]: e.get("value") for e in _container(daemonset, ("istio-proxy",))["env"]}
    assert env["SECRET_TTL"] == f"{ca.leaf_ttl}s"
    assert env["TRUST_DOMAIN"] == ca.trust_domain
    assert env["CA_ADDRESS"] == "istiod.istio-system.svc:15012", "ztunnel's CA is istiod by default (the Istio part sets its namespace)"
