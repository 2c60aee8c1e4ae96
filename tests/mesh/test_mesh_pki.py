"""The mesh CA as the program configures it, on a real OpenBao server.

The values come from ``components/mesh/identity/pki.py`` for the prod stack's settings (the same
``MeshCa`` the program hands to pulumi-vault, built by the same ``mesh_ca`` function); they are written
through the HTTP API into the session's OpenBao dev server (test_vault_access's fixture). Each
``*_settings`` dict is sent as is, minus the keys pulumi-vault takes as path parts (``backend``,
``type``, ``name``, ``role_name``) and the mount's ``max_lease_ttl_seconds``, which the API spells
``config.max_lease_ttl``.

Then, as cert-manager's Vault Issuer does for the ``cacerts`` Certificate (a token holding only the
signer policy; the body ``MeshCa.signing_request`` builds, which is cert-manager v1.21.1's ``Sign``):
the intermediate is signed, CA with path length 0, named only ``spiffe://<trust domain>``, for the
intermediate's TTL, and verifies to the root; a workload certificate that istiod would sign with it (a
SPIFFE ID, signed here with openssl and the intermediate's key, as cert-manager leaves it in the Secret)
verifies to the root; a CA below the intermediate does not. Every other request - a leaf name, another
trust domain, a longer lifetime, any extra parameter, any other path - is refused. Name constraints are
not set (cert-manager cannot ask for them): a certificate for any name signed with the intermediate's
key verifies, which is why that key is the mesh (docs/architecture/mesh-identity.md).

Not exercised: the Kubernetes login (needs a TokenReview API server; the token is minted with the
role's policies instead, as test_vault_access does), cert-manager and istiod themselves.
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

from components.mesh.identity.pki import INTERMEDIATE_COMMON_NAME, ROOT_MOUNT, SIGNER_POLICY, MeshCa, go_duration  # noqa: E402
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


def apply(api: Api, ca: MeshCa) -> str:
    """The program's configuration, step by step as pulumi-vault applies it; returns the root's PEM."""
    mount = ca.root_mount_settings()
    api.ok("POST", f"sys/mounts/{mount['path']}", {"type": mount["type"], "description": mount["description"],
                                                   "config": {"max_lease_ttl": mount["max_lease_ttl_seconds"]}})
    root = ca.root_settings()
    root_pem = api.ok("POST", f"{root['backend']}/root/generate/{root['type']}", _body(root))["data"]["certificate"]
    api.ok("PUT", f"sys/policies/acl/{SIGNER_POLICY}", {"policy": ca.signer_policy_hcl()})
    api.ok("POST", f"sys/auth/{K8S_AUTH}", {"type": "kubernetes"})
    signer = ca.signer_role_settings()
    api.ok("POST", f"auth/{K8S_AUTH}/role/{signer['role_name']}", _body(signer))
    return root_pem


@pytest.fixture(scope="module")
def ca() -> MeshCa:
    from components import settings
    from tools.render import stack_config

    return mesh_ca(settings.parse(stack_config("prod"), "prod").mesh)


@pytest.fixture(scope="module")
def pki(bao_server, ca):  # noqa: F811 - the imported fixture
    api = Api(bao_server.addr, ROOT_TOKEN)
    root = apply(api, ca)
    created = api.ok("POST", "auth/token/create", {"policies": [SIGNER_POLICY], "ttl": "10m"})
    return api, root, created["auth"]["client_token"]


def _key(path: Path) -> Path:
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path)],
                   check=True, capture_output=True)
    return path


def _csr(key: Path, subject: str = "/", extensions: list[str] = ()) -> str:
    cmd = ["openssl", "req", "-new", "-key", str(key), "-subj", subject]
    for extension in extensions:
        cmd += ["-addext", extension]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def _intermediate_csr(ca: MeshCa, key: Path) -> str:
    """What cert-manager builds from the ``cacerts`` Certificate (plugin_ca.certificate_spec): CN, the
    trust domain's URI, CA basic constraints."""
    return _csr(key, f"/CN={INTERMEDIATE_COMMON_NAME}", [f"subjectAltName=URI:{ca.trust_domain_id}",
                                                        "basicConstraints=critical,CA:TRUE"])


def _sign_intermediate(api: Api, token: str, body: dict) -> requests.Response:
    return api.call("POST", f"{ROOT_MOUNT}/root/sign-intermediate", body, token=token)


def _issue(tmp_path: Path, name: str, issuer_cert: str, issuer_key: Path, extensions: list[str], days: int = 1) -> str:
    """A certificate signed with ``issuer_key`` as istiod signs workload certificates with the key it
    reads from ``cacerts`` (openssl standing in for istiod: the check is on the chain, not on istiod)."""
    key = _key(tmp_path / f"{name}.key")
    (tmp_path / f"{name}.csr").write_text(_csr(key))
    (tmp_path / "issuer.pem").write_text(issuer_cert)
    (tmp_path / f"{name}.ext").write_text("\n".join(extensions) + "\n")
    return subprocess.run(["openssl", "x509", "-req", "-in", str(tmp_path / f"{name}.csr"), "-CA", str(tmp_path / "issuer.pem"),
                           "-CAkey", str(issuer_key), "-set_serial", str(abs(hash(name)) % 10 ** 12), "-days", str(days),
                           "-extfile", str(tmp_path / f"{name}.ext")], check=True, capture_output=True, text=True).stdout


WORKLOAD = ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment",
            "extendedKeyUsage=serverAuth,clientAuth"]


@pytest.fixture(scope="module")
def intermediate(pki, ca, tmp_path_factory):
    """The ``cacerts`` intermediate as cert-manager obtains it: its own key, the signer token, the request body."""
    api, _, token = pki
    folder = tmp_path_factory.mktemp("cacerts")
    key = _key(folder / "tls.key")
    response = _sign_intermediate(api, token, ca.signing_request(_intermediate_csr(ca, key)))
    assert response.status_code == 200, response.text
    return response.json()["data"], key


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
# What the signer can get: istiod's intermediate, exactly


def test_the_signer_gets_a_ca_for_the_trust_domain_for_the_intermediate_ttl_chained_to_the_root(intermediate, pki, ca, tmp_path):
    _, root, _ = pki
    data, _ = intermediate
    text = _x509(data["certificate"], tmp_path, "-ext", "subjectAltName,basicConstraints,nameConstraints", "-dates", "-subject")
    assert "CA:TRUE, pathlen:0" in text, "a CA that signs leaves only (the root has path length 1)"
    assert f"URI:{ca.trust_domain_id}" in text and "DNS:" not in text and "IP Address" not in text
    assert INTERMEDIATE_COMMON_NAME in text
    lifetime = (_date(text, "notAfter") - _date(text, "notBefore")).total_seconds()
    assert ca.intermediate_ttl <= lifetime <= ca.intermediate_ttl + 60, lifetime  # Vault backdates notBefore by 30 s
    assert data["issuing_ca"].strip() == root.strip()
    verified = _verify(tmp_path, root, [], data["certificate"])
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_workload_certificate_signed_with_the_intermediate_verifies_to_the_vault_root(intermediate, pki, ca, tmp_path):
    """What istiod does with ``cacerts``: a SPIFFE leaf for an allowed identity, checked against Vault's
    root with the intermediate as the chain the workload presents (tls.crt)."""
    _, root, _ = pki
    data, key = intermediate
    identity = ca.spiffe_id("soma-agents", "agent-runner")
    assert identity == "spiffe://soma.example.com/ns/soma-agents/sa/agent-runner"
    leaf = _issue(tmp_path, "workload", data["certificate"], key, [*WORKLOAD, f"subjectAltName=critical,URI:{identity}"])
    verified = _verify(tmp_path, root, [data["certificate"]], leaf)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"URI:{identity}" in _x509(leaf, tmp_path, "-ext", "subjectAltName")


def test_a_ca_below_the_intermediate_does_not_verify(intermediate, pki, tmp_path):
    """Path length 0: even with the intermediate's key, nobody can add a CA level the root accepts."""
    _, root, _ = pki
    data, key = intermediate
    sub_ca = _issue(tmp_path, "sub-ca", data["certificate"], key, ["basicConstraints=critical,CA:TRUE",
                                                                    "keyUsage=critical,keyCertSign,cRLSign"])
    leaf = _issue(tmp_path, "below", sub_ca, tmp_path / "sub-ca.key", [*WORKLOAD, "subjectAltName=critical,URI:spiffe://soma.example.com/ns/x/sa/y"])
    verified = _verify(tmp_path, root, [data["certificate"], sub_ca], leaf)
    assert verified.returncode != 0
    assert "path length" in (verified.stdout + verified.stderr)


def test_the_intermediate_has_no_name_constraints_so_its_key_can_sign_any_name(intermediate, pki, tmp_path):
    """The limitation docs/architecture/mesh-identity.md states: cert-manager's Vault issuer cannot ask
    for name constraints, so a certificate for a name outside the trust domain, signed with the key in
    ``cacerts``, verifies to the mesh root. If this starts failing, constraints exist: update the docs."""
    _, root, _ = pki
    data, key = intermediate
    assert "Name Constraints" not in _x509(data["certificate"], tmp_path, "-text")
    stranger = _issue(tmp_path, "stranger", data["certificate"], key,
                      [*WORKLOAD, "subjectAltName=critical,URI:spiffe://other.example.org/ns/a/sa/b,DNS:vault.soma-secrets.svc"])
    assert _verify(tmp_path, root, [data["certificate"]], stranger).returncode == 0


def test_a_renewed_intermediate_takes_over_while_certificates_of_the_old_one_still_verify(intermediate, pki, ca, tmp_path):
    """Renewal (cert-manager, ``rotationPolicy: Always``): a new key, the same request, the same root.
    istiod reloads it; workloads trust the root, so leaves of both intermediates verify side by side."""
    api, root, token = pki
    old, old_key = intermediate
    new_key = _key(tmp_path / "renewed-ca.key")
    response = _sign_intermediate(api, token, ca.signing_request(_intermediate_csr(ca, new_key)))
    assert response.status_code == 200, response.text
    new = response.json()["data"]
    assert new["serial_number"] != old["serial_number"]
    identity = ca.spiffe_id("soma-ops", "reporter")
    for name, (data, key) in {"old": (old, old_key), "new": (new, new_key)}.items():
        leaf = _issue(tmp_path, name, data["certificate"], key, [*WORKLOAD, f"subjectAltName=critical,URI:{identity}"])
        verified = _verify(tmp_path, root, [data["certificate"]], leaf)
        assert verified.returncode == 0, (name, verified.stdout + verified.stderr)


# --------------------------------------------------------------------------------------------
# What the signer cannot get


@pytest.mark.parametrize(("what", "change"), [
    ("a leaf's name as the CN", {"common_name": "api.soma.example.com"}),
    ("another trust domain", {"uri_sans": "spiffe://other.example.org"}),
    ("Istio's default trust domain", {"uri_sans": "spiffe://cluster.local"}),
    ("a workload's SPIFFE ID", {"uri_sans": "spiffe://soma.example.com/ns/soma-agents/sa/agent-runner"}),
    ("a second URI", {"uri_sans": "spiffe://soma.example.com,spiffe://other.example.org"}),
    ("a DNS name", {"alt_names": "vault.soma-secrets.svc"}),
    ("an IP address", {"ip_sans": "10.0.0.1"}),
    ("a longer lifetime", {"ttl": "87600h0m0s"}),
    ("the same lifetime spelled otherwise", {"ttl": "365d"}),
    ("the CN among the SANs", {"exclude_cn_from_sans": "false"}),
    ("a deeper path length", {"max_path_length": "3"}),
    ("the CSR's own names and extensions", {"use_csr_values": "true"}),
    ("name constraints of its choosing", {"permitted_dns_domains": "example.org"}),
    ("a fixed expiry", {"not_after": "2099-01-01T00:00:00Z"}),
    ("another issuer's name", {"issuer_name": "rogue"}),
])
def test_any_other_request_to_the_root_is_refused(pki, ca, tmp_path, what, change):
    api, _, token = pki
    body = {**ca.signing_request(_intermediate_csr(ca, _key(tmp_path / "k.pem"))), **change}
    response = _sign_intermediate(api, token, body)
    assert response.status_code == 403, (what, response.status_code, response.text)


def test_a_leaf_request_for_an_arbitrary_name_is_refused_everywhere(pki, ca, tmp_path):
    api, _, token = pki
    csr = _csr(_key(tmp_path / "leaf.key"), "/CN=api.soma.example.com", ["subjectAltName=DNS:api.soma.example.com"])
    # a role on the root mount, as an administrator might add one day
    api.ok("POST", f"{ROOT_MOUNT}/roles/anything", {"allow_any_name": True, "max_ttl": "8760h"})
    attempts = [
        ("POST", f"{ROOT_MOUNT}/sign/anything", {"csr": csr, "common_name": "api.soma.example.com"}),
        ("POST", f"{ROOT_MOUNT}/issue/anything", {"common_name": "api.soma.example.com"}),
        ("POST", f"{ROOT_MOUNT}/sign-verbatim", {"csr": csr}),
        ("POST", f"{ROOT_MOUNT}/root/sign-self-issued", {"certificate": csr}),
        ("POST", f"{ROOT_MOUNT}/issuer/root/sign-intermediate", ca.signing_request(csr)),
        ("POST", f"{ROOT_MOUNT}/root/generate/internal", {"common_name": "rogue"}),
        ("POST", f"{ROOT_MOUNT}/roles/anything", {"allow_any_name": True}),
        ("POST", f"{ROOT_MOUNT}/config/issuers", {"default": "root"}),
        ("DELETE", f"{ROOT_MOUNT}/root", None),
        ("PUT", f"sys/policies/acl/{SIGNER_POLICY}", {"policy": 'path "*" { capabilities = ["sudo"] }'}),
        ("POST", "sys/mounts/pki_rogue", {"type": "pki"}),
    ]
    try:
        for method, path, body in attempts:
            response = api.call(method, path, body, token=token)
            assert response.status_code == 403, (method, path, response.status_code, response.text)
    finally:
        api.ok("DELETE", f"{ROOT_MOUNT}/roles/anything")


def test_the_signer_role_binds_one_service_account_with_the_vault_audience(pki, ca):
    api, _, _ = pki
    role = api.ok("GET", f"auth/{K8S_AUTH}/role/{SIGNER_POLICY}")["data"]
    assert role["bound_service_account_names"] == [ca.signer_service_account]
    assert role["bound_service_account_namespaces"] == [ca.signer_namespace]
    assert role["token_policies"] == [SIGNER_POLICY]
    assert role["audience"] == "vault"


def test_the_root_signs_intermediates_only(pki, tmp_path):
    _, root, _ = pki
    assert "CA:TRUE, pathlen:1" in _x509(root, tmp_path, "-ext", "basicConstraints")


# --------------------------------------------------------------------------------------------
# Without a server


@pytest.mark.parametrize(("seconds", "printed"), [(31536000, "8760h0m0s"), (5400, "1h30m0s"), (90, "1m30s"), (59, "59s")])
def test_durations_are_pinned_as_go_prints_them(seconds, printed):
    """cert-manager sends ``duration.String()``; the policy must hold the same text."""
    assert go_duration(seconds) == printed


@pytest.mark.parametrize(("change", "message"), [
    ({"trust_domain": "Soma_Example"}, "trust_domain"),
    ({"leaf_ttl": 10 ** 9}, "TTLs must nest"),
    ({"intermediate_renew_before": 10 ** 9}, "intermediate_renew_before"),
    ({"signer_service_account": "Bad_Name"}, "signer_service_account"),
])
def test_a_bad_mesh_ca_is_refused_naming_the_field(ca, change, message):
    import dataclasses

    with pytest.raises(ValueError, match=message):
        dataclasses.replace(ca, **change)
