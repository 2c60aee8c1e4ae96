"""Workload identity as both stacks render it: settings refused with the key named, the mesh CA and the
Vault Issuer in the plan, the istiod/ztunnel values accepted by Istio 1.30.3's own charts, and istio-csr's
chart rendered with the program's values (with a test-only image entry, because the real image has no
digest in platform.lock.yaml yet: docs/architecture/mesh-identity.md, "What is not done")."""
from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from components.mesh.identity import istio_csr
from components.mesh.identity.pki import INTERMEDIATE_MOUNT, ROLE
from tests.helpers import by_type, config_with, objects, pod_specs, stack_document

STACKS = ("dev", "prod")
ISTIO_MIRROR = Path("/work/.mirror/istio+istio/repo")
ISTIO_TAG = "1.30.3"


def _identity(stack: str, **changes) -> dict:
    mesh = stack_document(stack)["somaagenthub:mesh"]
    mesh["identity"] = {**mesh["identity"], **changes}
    return config_with(stack, mesh=mesh)


@pytest.mark.parametrize(("changes", "needle"), [
    ({"trustDomain": "cluster.local"}, "mesh.identity.trustDomain: 'cluster.local' is Istio's default"),
    ({"trustDomain": "other.example.org"}, "mesh.identity.trustDomain: 'other.example.org' must be the stack's domain"),
    ({"namespaces": ["soma-mesh-node"]}, "mesh.identity.namespaces: soma-mesh-node holds the node agents"),
    ({"namespaces": ["kube-system"]}, "mesh.identity.namespaces: kube-system is not a namespace of this stack"),
    ({"leafTtl": "48h"}, "mesh.identity.leafTtl"),
    ({"intermediateTtl": "5h"}, "mesh.identity.intermediateTtl"),
    ({"rootTtl": "400d"}, "mesh.identity.rootTtl"),
    ({"leafTtl": "500ms"}, "mesh.identity.leafTtl"),
    ({"istioCsr": {"replicas": 1, "resources": {"cpuRequest": "25m", "memoryRequest": "64Mi", "cpuLimit": "500m",
                                                 "memoryLimit": "256Mi"}}}, "mesh.identity.istioCsr.replicas"),
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


@pytest.mark.parametrize("stack", STACKS)
def test_the_plan_configures_the_mesh_ca_in_vault_from_the_settings(plans, stack):
    plan = plans[stack]
    identity = stack_document(stack)["somaagenthub:mesh"]["identity"]
    (role,) = by_type(plan, "vault:pkiSecret/secretBackendRole:SecretBackendRole")
    assert role["inputs"]["name"] == ROLE and role["inputs"]["backend"] == INTERMEDIATE_MOUNT
    assert role["inputs"]["allowedUriSans"] == [f"spiffe://{identity['trustDomain']}/ns/{ns}/sa/*" for ns in identity["namespaces"]]
    assert role["inputs"]["allowIpSans"] is False and role["inputs"]["allowAnyName"] is False
    (root,) = by_type(plan, "vault:pkiSecret/secretBackendRootCert:SecretBackendRootCert")
    assert root["inputs"]["type"] == "internal"
    assert by_type(plan, "vault:pkiSecret/secretBackendIntermediateSetSigned:SecretBackendIntermediateSetSigned")
    assert (root["options"].get("protect") is True) == (stack == "prod"), "the root is protected where the stack protects data"


@pytest.mark.parametrize("stack", STACKS)
def test_the_vault_issuer_signs_with_the_role_as_its_own_service_account(plans, stack):
    (issuer,) = [o for o in objects(plans[stack], "Issuer") if o["metadata"]["name"] == "mesh-ca"]
    vault = issuer["spec"]["vault"]
    assert vault["path"] == f"{INTERMEDIATE_MOUNT}/sign/{ROLE}"
    assert vault["auth"]["kubernetes"]["serviceAccountRef"] == {"name": "vault-issuer", "audiences": ["vault"]}
    assert ("caBundleSecretRef" in vault) == vault["server"].startswith("https://")
    assert vault["server"].startswith("https://") == (stack == "prod")
    (role,) = [o for o in objects(plans[stack], "Role") if o["metadata"]["name"] == "cert-manager-vault-issuer-token"]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"],
                              "resourceNames": ["vault-issuer"]}]


def test_without_a_pinned_image_istio_csr_is_not_installed_and_the_plan_says_so(plans):
    for plan in plans.values():
        charts = [r["name"] for r in by_type(plan, "kubernetes:helm.sh/v4:Chart")]
        assert "istio-csr" not in charts
        (component,) = by_type(plan, "somaagenthub:mesh:Identity")
        assert component is not None


# --------------------------------------------------------------------------------------------
# istio-csr rendered with a test-only image entry (NOT a real digest; the lock has none)


@pytest.fixture(scope="module")
def with_agent(monkeypatch_module):
    from components import catalog
    from components.catalog import Image, Signer
    from tools.render import render

    real_load = catalog.load

    def load(*args, **kwargs):
        loaded = real_load(*args, **kwargs)
        digest = "sha256:" + hashlib.sha256(b"test-only stand-in for the unpinned istio-csr v0.17.0 image").hexdigest()
        image = Image(key=istio_csr.IMAGE, registry="quay.io", repository="jetstack/cert-manager-istio-csr", tag="v0.17.0",
                      digest=digest, source="test only", signer=Signer(kind="platform"))
        return catalog.Catalog(images={**loaded.images, istio_csr.IMAGE: image}, charts=loaded.charts, registry=loaded.registry)

    monkeypatch_module.setattr(catalog, "load", load)
    return render("prod")


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_istio_csr_renders_ha_non_root_limited_in_the_mesh_namespace_within_six_waves(with_agent):
    from tools.render import dependency_waves

    plan = with_agent
    (chart,) = [r for r in by_type(plan, "kubernetes:helm.sh/v4:Chart") if r["name"] == "istio-csr"]
    assert chart["inputs"]["namespace"] == "soma-mesh"
    deployments = [o for o in objects(plan, "Deployment") if o["metadata"]["name"] == "cert-manager-istio-csr"]
    assert len(deployments) == 1
    deployment = deployments[0]
    assert deployment["spec"]["replicas"] == 2
    (_, spec), = [(o, s) for o, s in pod_specs(plan) if o is deployment or o["metadata"]["name"] == "cert-manager-istio-csr"]
    (container,) = spec["containers"]
    assert container["securityContext"]["runAsNonRoot"] is True and container["securityContext"]["runAsUser"] == 65532
    assert container["resources"]["limits"]
    args = container["args"]
    assert "--trust-domain=soma.example.com" in args
    assert "--issuer-name=mesh-ca" in args and "--issuer-kind=Issuer" in args
    assert f"--root-ca-file={istio_csr.ROOT_CA_MOUNT}/{istio_csr.ROOT_CA_KEY}" in args
    assert "--ca-trusted-node-accounts=soma-mesh-node/ztunnel" in args
    assert "--max-client-certificate-duration=3600s" in args
    assert [o for o in objects(plan, "PodDisruptionBudget") if o["metadata"]["namespace"] == "soma-mesh"]
    (istiod_cert,) = [o for o in objects(plan, "Certificate") if o["metadata"]["name"] == "istiod"]
    assert istiod_cert["spec"]["issuerRef"]["name"] == "mesh-ca"
    assert len(dependency_waves(plan)) <= 6, dependency_waves(plan)


def test_istio_csr_passes_the_gate_but_for_its_test_only_image(with_agent):
    """Every mandatory finding, if any, is about the stand-in image's unknown digest, nothing else."""
    from policies.config import load_config_file, stack_config_path
    from tools.gate import run_gate

    report = run_gate(with_agent, load_config_file(stack_config_path("prod")))
    others = [line for line in report.blocking if "istio-csr" not in (line.urn + line.message)]
    assert others == [], report.render()
    assert all(line.rule == "digest-pinned-images" for line in report.blocking), report.render()


# --------------------------------------------------------------------------------------------
# The values istiod and ztunnel need, rendered by Istio 1.30.3's own charts


def _istio_chart(path: str, into: Path) -> Path:
    if not (ISTIO_MIRROR / "HEAD").exists() and not (ISTIO_MIRROR / ".git").exists():
        pytest.skip(f"the Istio {ISTIO_TAG} sources are not on this machine ({ISTIO_MIRROR})")
    archive = subprocess.run(["git", "-C", str(ISTIO_MIRROR), "archive", "--format=tar", ISTIO_TAG, path],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / path


def _objects(rendered) -> list[dict]:
    import yaml

    return [doc for path, text in rendered.manifests.items() if path.endswith((".yaml", ".yml"))
            for doc in yaml.safe_load_all(text) if doc]


def _env(rendered: list[dict], kind: str) -> dict[str, str]:
    (workload,) = [o for o in rendered if o and o.get("kind") == kind]
    (container,) = [c for c in workload["spec"]["template"]["spec"]["containers"] if c["name"] in ("discovery", "istio-proxy")]
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def test_istiod_takes_its_certificates_from_istio_csr_with_these_values(tmp_path):
    from tools.helm_engine import template

    chart = _istio_chart("manifests/charts/istio-control/istio-discovery", tmp_path)
    values = {**istio_csr.istiod_values("soma.example.com", "soma-mesh")}
    rendered = _objects(template(chart, values, release="istiod", namespace="soma-mesh", kube_version="1.33"))
    env = _env(rendered, "Deployment")
    assert env["ENABLE_CA_SERVER"] == "false"
    (deployment,) = [o for o in rendered if o and o.get("kind") == "Deployment"]
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["istio-csr-ca-configmap"]["configMap"]["name"] == istio_csr.TRUST_BUNDLE
    assert volumes["istio-csr-dns-cert"]["secret"]["secretName"] == "istiod-tls"
    (mesh,) = [o for o in rendered if o and o.get("kind") == "ConfigMap" and o["metadata"]["name"] == "istio"]
    assert "trustDomain: soma.example.com" in mesh["data"]["mesh"]
    assert "cert-manager-istio-csr.soma-mesh.svc:443" in str(rendered)


def test_ztunnel_asks_istio_csr_with_these_values(tmp_path):
    from tools.helm_engine import template

    chart = _istio_chart("manifests/charts/ztunnel", tmp_path)
    rendered = _objects(template(chart, istio_csr.ztunnel_values("soma-mesh"), release="ztunnel", namespace="soma-mesh-node",
                                 kube_version="1.33"))
    (daemonset,) = [o for o in rendered if o and o.get("kind") == "DaemonSet"]
    (container,) = daemonset["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CA_ADDRESS"] == "cert-manager-istio-csr.soma-mesh.svc:443"
