"""The mesh CA as the program configures it, on a real OpenBao server.

The values come from ``components/mesh/identity/pki.py`` for the prod stack's settings (the same
``MeshCa`` the program hands to pulumi-vault, built by the same ``mesh_ca`` function); they are written
through the HTTP API into the session's OpenBao dev server (test_vault_access's fixture). Each
``*_settings`` dict is sent as is, minus the keys pulumi-vault takes as path parts (``backend``,
``type``, ``name``, ``role_name``) and the mount's ``max_lease_ttl_seconds``, which the API spells
``config.max_lease_ttl``.

Then, as cert-manager's Vault Issuer would (a token holding only the signer policy, a CSR written to
``pki_mesh_int/sign/mesh-workload``): an allowed SPIFFE identity gets a certificate with exactly that
URI SAN and the leaf TTL, chained intermediate -> root (checked with ``openssl verify``); identities
outside the namespaces or the trust domain, and any other name, are refused; the token can do nothing
else; a second intermediate under the same root (rotation) issues certificates that the same root
verifies, while the first one's still verify.

Not exercised: the Kubernetes login (needs a TokenReview API server; the token is minted with the
role's policies instead, as test_vault_access does) and cert-manager/istio-csr themselves.
"""
from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from test_vault_access import ROOT_TOKEN, bao_server  # noqa: E402,F401 - the session's OpenBao fixture

from components.mesh.identity.pki import INTERMEDIATE_MOUNT, ROLE, ROOT_MOUNT, SIGNER_POLICY, MeshCa  # noqa: E402
from components.mesh.identity.vault_pki import mesh_ca  # noqa: E402

K8S_AUTH = "kubernetes-mesh-test"
PATH_KEYS = ("backend", "type", "name", "role_name")


def _body(settings: dict) -> dict:
    return {k: v for k, v in settings.items() if k not in PATH_KEYS}


class Api:
    def __init__(self, addr: str, token: str):
        self.addr, self.token = addr, token

    def call(self, method: str, path: str, body: dict | None = None, token: str | None = None) -> requests.Response:
        return requests.request(method, f"{self.addr}/v1/{path}", json=body, timeout=10,
                                headers={"X-Vault-Token": token or self.token})

    def ok(self, method: str, path: str, body: dict | None = None) -> dict:
        response = self.call(method, path, body)
        assert response.status_code in (200, 204), (path, response.status_code, response.text)
        return response.json() if response.text else {}


def apply(api: Api, ca: MeshCa) -> dict:
    """The program's configuration, step by step as pulumi-vault applies it; returns the PEMs."""
    for mount in (ca.root_mount_settings(), ca.intermediate_mount_settings()):
        api.ok("POST", f"sys/mounts/{mount['path']}", {"type": mount["type"], "description": mount["description"],
                                                       "config": {"max_lease_ttl": mount["max_lease_ttl_seconds"]}})
    root = ca.root_settings()
    root_pem = api.ok("POST", f"{root['backend']}/root/generate/{root['type']}", _body(root))["data"]["certificate"]
    request = ca.intermediate_request_settings()
    intermediate_pem, _ = sign_new_intermediate(api, ca)
    role = ca.role_settings()
    api.ok("POST", f"{role['backend']}/roles/{role['name']}", _body(role))
    api.ok("PUT", f"sys/policies/acl/{SIGNER_POLICY}", {"policy": ca.signer_policy_hcl()})
    api.ok("POST", f"sys/auth/{K8S_AUTH}", {"type": "kubernetes"})
    signer = ca.signer_role_settings()
    api.ok("POST", f"auth/{K8S_AUTH}/role/{signer['role_name']}", _body(signer))
    assert request["backend"] == INTERMEDIATE_MOUNT
    return {"root": root_pem, "intermediate": intermediate_pem}


def sign_new_intermediate(api: Api, ca: MeshCa) -> tuple[str, str]:
    """Generate a key and CSR in the intermediate mount, have the root sign it, import the chain;
    returns the intermediate's PEM and its issuer id (the imported issuer that has a key: the root comes
    along as a key-less issuer, so that every answer's ``ca_chain`` reaches it)."""
    request = ca.intermediate_request_settings()
    csr = api.ok("POST", f"{request['backend']}/intermediate/generate/{request['type']}", _body(request))["data"]["csr"]
    signing = ca.sign_intermediate_settings()
    signed = api.ok("POST", f"{signing['backend']}/root/sign-intermediate", {**_body(signing), "csr": csr})["data"]
    root_pem = api.ok("GET", f"{ROOT_MOUNT}/cert/ca")["data"]["certificate"]
    imported = api.ok("POST", f"{INTERMEDIATE_MOUNT}/intermediate/set-signed", {"certificate": ca.chain(signed["certificate"], root_pem)})
    with_key = [issuer for issuer, key in imported["data"]["mapping"].items() if key]
    assert len(with_key) == 1, imported
    return signed["certificate"], with_key[0]


@pytest.fixture(scope="module")
def ca() -> MeshCa:
    from components import settings
    from tools.render import stack_config

    return mesh_ca(settings.parse(stack_config("prod"), "prod").mesh)


@pytest.fixture(scope="module")
def pki(bao_server, ca):  # noqa: F811 - the imported fixture
    api = Api(bao_server.addr, ROOT_TOKEN)
    pems = apply(api, ca)
    created = api.ok("POST", "auth/token/create", {"policies": [SIGNER_POLICY], "ttl": "10m"})
    return api, pems, created["auth"]["client_token"]


def _csr(tmp_path: Path, *, uris: list[str] = (), dns: list[str] = (), ips: list[str] = (), cn: str = "") -> str:
    sans = [f"URI:{u}" for u in uris] + [f"DNS:{d}" for d in dns] + [f"IP:{i}" for i in ips]
    cmd = ["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
           "-keyout", str(tmp_path / "key.pem"), "-subj", f"/CN={cn}" if cn else "/"]
    if sans:
        cmd += ["-addext", "subjectAltName=" + ",".join(sans)]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def _sign(api: Api, token: str, csr: str, *, uris: list[str] = (), cn: str = "", ttl: str = "1h") -> requests.Response:
    """The request cert-manager's Vault Issuer makes: the CSR, its names, the requested duration."""
    body = {"csr": csr, "common_name": cn, "uri_sans": ",".join(uris), "ttl": ttl, "exclude_cn_from_sans": True}
    return api.call("POST", f"{INTERMEDIATE_MOUNT}/sign/{ROLE}", body, token=token)


def _x509(pem: str, tmp_path: Path, *options: str) -> str:
    path = tmp_path / "cert.pem"
    path.write_text(pem)
    return subprocess.run(["openssl", "x509", "-in", str(path), "-noout", *options], check=True, capture_output=True, text=True).stdout


def _verify(tmp_path: Path, root: str, chain: list[str], leaf: str) -> subprocess.CompletedProcess:
    (tmp_path / "root.pem").write_text(root)
    (tmp_path / "untrusted.pem").write_text("".join(c.strip() + "\n" for c in chain))
    (tmp_path / "leaf.pem").write_text(leaf)
    cmd = ["openssl", "verify", "-x509_strict", "-CAfile", str(tmp_path / "root.pem")]
    if chain:
        cmd += ["-untrusted", str(tmp_path / "untrusted.pem")]
    return subprocess.run([*cmd, str(tmp_path / "leaf.pem")], capture_output=True, text=True)


def _date(text: str, field: str) -> datetime:
    line = next(line for line in text.splitlines() if line.startswith(field + "="))
    return datetime.strptime(line.split("=", 1)[1].replace("  ", " "), "%b %d %H:%M:%S %Y %Z")


# --------------------------------------------------------------------------------------------
# Allowed identities


def test_an_allowed_workload_identity_gets_exactly_its_spiffe_id_for_the_leaf_ttl(pki, ca, tmp_path):
    api, pems, token = pki
    identity = ca.spiffe_id("soma-agents", "agent-runner")
    assert identity == "spiffe://soma.example.com/ns/soma-agents/sa/agent-runner"
    response = _sign(api, token, _csr(tmp_path, uris=[identity]), uris=[identity])
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    text = _x509(data["certificate"], tmp_path, "-ext", "subjectAltName", "-dates")
    assert f"URI:{identity}" in text
    assert "DNS:" not in text and "IP Address" not in text
    lifetime = (_date(text, "notAfter") - _date(text, "notBefore")).total_seconds()
    # Vault backdates notBefore by 30 s (not_before_duration) against clock skew
    assert ca.leaf_ttl <= lifetime <= ca.leaf_ttl + 60, lifetime
    assert data["issuing_ca"].strip() == pems["intermediate"].strip(), "the intermediate signs, never the root"
    assert data["ca_chain"][-1].strip() == pems["root"].strip(), "the chain ends at the root istio-csr distributes"
    verified = _verify(tmp_path, pems["root"], data["ca_chain"][:-1], data["certificate"])
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_longer_duration_is_cut_to_the_leaf_ttl(pki, ca, tmp_path):
    api, _, token = pki
    identity = ca.spiffe_id("soma-ops", "reporter")
    response = _sign(api, token, _csr(tmp_path, uris=[identity]), uris=[identity], ttl="720h")
    assert response.status_code == 200, response.text
    text = _x509(response.json()["data"]["certificate"], tmp_path, "-dates")
    assert (_date(text, "notAfter") - _date(text, "notBefore")).total_seconds() <= ca.leaf_ttl + 60


def test_istiods_serving_certificate_as_istio_csr_requests_it_is_issued(pki, ca, tmp_path):
    """istio-csr's chart (templates/certificate.yaml): CN and DNS ``istiod.<ns>.svc``, URI of istiod's account."""
    api, _, token = pki
    dns = f"istiod.{ca.istio_namespace}.svc"
    uri = ca.spiffe_id(ca.istio_namespace, "istiod-service-account")
    response = _sign(api, token, _csr(tmp_path, uris=[uri], dns=[dns], cn=dns), uris=[uri], cn=dns)
    assert response.status_code == 200, response.text
    text = _x509(response.json()["data"]["certificate"], tmp_path, "-ext", "subjectAltName")
    assert f"DNS:{dns}" in text and f"URI:{uri}" in text


# --------------------------------------------------------------------------------------------
# Refused identities and names


@pytest.mark.parametrize("uri", [
    "spiffe://soma.example.com/ns/soma-node-logs/sa/agent",  # a namespace of the stack, not in the mesh
    "spiffe://soma.example.com/ns/soma-mesh-node/sa/ztunnel",  # the node agents' namespace
    "spiffe://soma.example.com/ns/soma-agents-x/sa/runner",  # a look-alike namespace
    "spiffe://cluster.local/ns/soma-agents/sa/agent-runner",  # Istio's default trust domain
    "spiffe://dev.soma.local/ns/soma-agents/sa/agent-runner",  # another stack's trust domain
    "spiffe://evil.soma.example.com/ns/soma-agents/sa/agent-runner",  # a name under the trust domain
    "https://soma.example.com/ns/soma-agents/sa/agent-runner",  # not a SPIFFE ID
])
def test_an_identity_outside_the_namespaces_or_the_trust_domain_is_refused(pki, tmp_path, uri):
    api, _, token = pki
    response = _sign(api, token, _csr(tmp_path, uris=[uri]), uris=[uri])
    assert response.status_code == 400, (uri, response.status_code, response.text)
    assert "not allowed" in response.text or "URI" in response.text


@pytest.mark.parametrize(("what", "names"), [
    ("a DNS name", {"dns": ["api.soma.example.com"]}),
    ("a subdomain of istiod's name", {"dns": ["x.istiod.soma-mesh.svc"]}),
    ("a wildcard", {"dns": ["*.soma-mesh.svc"]}),
    ("localhost", {"dns": ["localhost"]}),
    ("an IP address", {"ips": ["10.0.0.1"]}),
    ("a common name", {"cn": "vault.soma-secrets.svc"}),
])
def test_any_other_name_is_refused(pki, ca, tmp_path, what, names):
    api, _, token = pki
    identity = ca.spiffe_id("soma-agents", "agent-runner")
    cn = names.get("cn", "")
    response = _sign(api, token, _csr(tmp_path, uris=[identity], dns=names.get("dns", []), ips=names.get("ips", []), cn=cn),
                     uris=[identity], cn=cn)
    assert response.status_code == 400, (what, response.status_code, response.text)


def test_the_signer_token_can_do_nothing_but_sign_with_the_role(pki, ca, tmp_path):
    api, _, token = pki
    identity = ca.spiffe_id("soma-agents", "agent-runner")
    csr = _csr(tmp_path, uris=[identity])
    # another role on the same mount, as an administrator might add one day
    api.ok("POST", f"{INTERMEDIATE_MOUNT}/roles/anything", {"allow_any_name": True, "max_ttl": "8760h"})
    attempts = [
        ("POST", f"{INTERMEDIATE_MOUNT}/issue/{ROLE}", {"uri_sans": identity}),
        ("POST", f"{INTERMEDIATE_MOUNT}/sign-verbatim", {"csr": csr}),
        ("POST", f"{INTERMEDIATE_MOUNT}/sign/anything", {"csr": csr, "common_name": "evil.example.com"}),
        ("POST", f"{INTERMEDIATE_MOUNT}/roles/{ROLE}", {"allow_any_name": True}),
        ("POST", f"{ROOT_MOUNT}/root/sign-intermediate", {"csr": csr, "common_name": "rogue"}),
        ("POST", f"{ROOT_MOUNT}/sign-verbatim", {"csr": csr}),
        ("POST", f"{INTERMEDIATE_MOUNT}/intermediate/generate/internal", {"common_name": "rogue"}),
        ("POST", f"{INTERMEDIATE_MOUNT}/config/issuers", {"default": "root"}),
        ("DELETE", f"{INTERMEDIATE_MOUNT}/root", None),
        ("PUT", f"sys/policies/acl/{SIGNER_POLICY}", {"policy": 'path "*" { capabilities = ["sudo"] }'}),
    ]
    for method, path, body in attempts:
        response = api.call(method, path, body, token=token)
        assert response.status_code == 403, (method, path, response.status_code, response.text)
    api.ok("DELETE", f"{INTERMEDIATE_MOUNT}/roles/anything")


def test_the_signer_role_binds_one_service_account_with_the_vault_audience(pki, ca):
    api, _, _ = pki
    role = api.ok("GET", f"auth/{K8S_AUTH}/role/{SIGNER_POLICY}")["data"]
    assert role["bound_service_account_names"] == [ca.signer_service_account]
    assert role["bound_service_account_namespaces"] == [ca.signer_namespace]
    assert role["token_policies"] == [SIGNER_POLICY]
    assert role["audience"] == "vault"


# --------------------------------------------------------------------------------------------
# The chain and its rotation


def test_the_intermediate_chains_to_the_root_and_signs_leaves_only(pki, tmp_path):
    _, pems, _ = pki
    verified = _verify(tmp_path, pems["root"], [], pems["intermediate"])
    assert verified.returncode == 0, verified.stdout + verified.stderr
    root = _x509(pems["root"], tmp_path, "-ext", "basicConstraints")
    intermediate = _x509(pems["intermediate"], tmp_path, "-ext", "basicConstraints")
    assert "CA:TRUE, pathlen:1" in root
    assert "CA:TRUE, pathlen:0" in intermediate


def test_a_second_intermediate_under_the_same_root_takes_over_without_breaking_issued_certificates(pki, ca, tmp_path):
    """Intermediate rotation (docs/runbooks/mesh-ca.md): a new issuer in the same mount, made the default;
    certificates of both verify against the one root that istio-csr distributes, so nothing restarts."""
    api, pems, token = pki
    identity = ca.spiffe_id("soma-agents", "agent-runner")
    before = _sign(api, token, _csr(tmp_path, uris=[identity]), uris=[identity]).json()["data"]
    old_default = api.ok("GET", f"{INTERMEDIATE_MOUNT}/config/issuers")["data"]["default"]
    new_pem, new = sign_new_intermediate(api, ca)
    assert new != old_default
    api.ok("POST", f"{INTERMEDIATE_MOUNT}/config/issuers", {"default": new})
    after = _sign(api, token, _csr(tmp_path, uris=[identity]), uris=[identity]).json()["data"]
    assert before["issuing_ca"].strip() == pems["intermediate"].strip()
    assert after["issuing_ca"].strip() == new_pem.strip(), "the new intermediate signed"
    for issued in (before, after):
        verified = _verify(tmp_path, pems["root"], issued["ca_chain"][:-1], issued["certificate"])
        assert verified.returncode == 0, verified.stdout + verified.stderr
    api.ok("POST", f"{INTERMEDIATE_MOUNT}/config/issuers", {"default": old_default})


# --------------------------------------------------------------------------------------------
# Validation without a server


@pytest.mark.parametrize(("change", "message"), [
    ({"trust_domain": "Soma_Example"}, "trust_domain"),
    ({"namespaces": ()}, "namespaces"),
    ({"namespaces": ("soma/agents",)}, "namespaces"),
    ({"leaf_ttl": 10 ** 9}, "TTLs must nest"),
    ({"signer_service_account": "Bad_Name"}, "signer_service_account"),
])
def test_a_bad_mesh_ca_is_refused_naming_the_field(ca, change, message):
    import dataclasses

    with pytest.raises(ValueError, match=message):
        dataclasses.replace(ca, **change)
