"""The mesh CA in Vault, as data: mounts, the root and the intermediate, the signing role, the
signer's policy and its Kubernetes-auth role.

Pure (no Pulumi resource, no I/O), like ``components/core/secrets/vault_access.py``: the same values
are handed to ``pulumi_vault`` by :mod:`components.mesh.identity.vault_pki` and written through the
HTTP API into a real OpenBao server by ``tests/mesh/test_mesh_pki.py``, so what is proven there is
what the program configures. Each ``*_settings`` dict has exactly the keyword arguments of its
``pulumi_vault`` resource, which are also the parameter names of the matching API endpoint.

Shape of the CA (docs/architecture/mesh-identity.md):

* ``pki_mesh_root``: the root, generated inside Vault (``type internal``: its key never leaves
  Vault), used for one thing only, signing intermediates;
* ``pki_mesh_int``: the intermediate, whose key is generated in that mount and whose certificate
  the root signs; it signs workload certificates through one role, :data:`ROLE`;
* the role allows exactly SPIFFE URI SANs ``spiffe://<trust domain>/ns/<ns>/sa/<sa>`` for the
  configured namespaces, plus the two DNS names istio-csr asks for (istiod's serving certificate
  and istio-csr's own gRPC serving certificate), and nothing else: no IP SANs, no other names, no
  wildcard, no localhost;
* the signer policy lets a token use ``<int>/sign/<ROLE>`` and nothing else (not ``issue``, not
  ``sign-verbatim``, not another role, not the root).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from components.core.secrets.vault_access import MIN_TOKEN_TTL_SECONDS, VAULT_AUDIENCE, validate_mount

ROOT_MOUNT = "pki_mesh_root"
INTERMEDIATE_MOUNT = "pki_mesh_int"
ROLE = "mesh-workload"
SIGNER_POLICY = "mesh-ca-signer"
"""The Vault policy and the Kubernetes-auth role of cert-manager's Vault Issuer for istio-csr."""
SIGNER_TOKEN_TTL_SECONDS = 300
"""cert-manager logs in for each signing and uses the token at once: five minutes is plenty."""
ROOT_KEY = ("ec", 384)
INTERMEDIATE_KEY = ("ec", 256)
ORGANIZATION = "SomaAgentHub"
ISTIOD_SERVICE = "istiod"
ISTIO_CSR_SERVICE = "cert-manager-istio-csr"
"""The chart's Service name (``cert-manager-istio-csr.name``): istio-csr's serving certificate names
``<service>.<namespace>.svc`` (``app.tls.certificateDNSNames``)."""

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class MeshCa:
    """What the mesh CA is made of; validated at construction, so a bad value fails before any resource.

    ``namespaces``: whose service accounts may hold an identity; ``istio_namespace``: where istiod and
    istio-csr run (their DNS names); ``signer_namespace`` / ``signer_service_account``: the service
    account cert-manager's Vault Issuer logs in as; TTLs in seconds.
    """

    trust_domain: str
    namespaces: tuple[str, ...]
    istio_namespace: str
    signer_namespace: str
    signer_service_account: str
    leaf_ttl: int
    intermediate_ttl: int
    root_ttl: int

    def __post_init__(self) -> None:
        if not isinstance(self.trust_domain, str) or not _DOMAIN.match(self.trust_domain):
            raise ValueError(f"mesh CA: trust_domain {self.trust_domain!r} is not a DNS name")
        for field_name in ("istio_namespace", "signer_namespace", "signer_service_account"):
            value = getattr(self, field_name)
            if not isinstance(value, str) or not _LABEL.match(value):
                raise ValueError(f"mesh CA: {field_name} {value!r} is not a DNS-1123 label")
        if not self.namespaces or any(not isinstance(n, str) or not _LABEL.match(n) for n in self.namespaces):
            raise ValueError(f"mesh CA: namespaces {self.namespaces!r} must be DNS-1123 labels, at least one")
        if not 0 < self.leaf_ttl < self.intermediate_ttl < self.root_ttl:
            raise ValueError(f"mesh CA: TTLs must nest, leaf < intermediate < root; got {self.leaf_ttl}, "
                             f"{self.intermediate_ttl}, {self.root_ttl}")

    # -- names ----------------------------------------------------------------------------------

    def spiffe_id(self, namespace: str, service_account: str) -> str:
        return f"spiffe://{self.trust_domain}/ns/{namespace}/sa/{service_account}"

    @property
    def allowed_uri_sans(self) -> list[str]:
        """One glob per namespace; the ``/sa/`` after the namespace keeps ``ns/core`` from matching ``ns/core-x``."""
        return [f"spiffe://{self.trust_domain}/ns/{ns}/sa/*" for ns in self.namespaces]

    @property
    def allowed_dns_names(self) -> list[str]:
        """istiod's serving certificate (istio-csr's chart, templates/certificate.yaml: ``istiod.<ns>.svc``
        for the default revision) and istio-csr's own gRPC serving certificate."""
        return [f"{ISTIOD_SERVICE}.{self.istio_namespace}.svc", f"{ISTIO_CSR_SERVICE}.{self.istio_namespace}.svc"]

    @property
    def sign_path(self) -> str:
        """What cert-manager's Vault Issuer names in ``spec.vault.path``."""
        return f"{INTERMEDIATE_MOUNT}/sign/{ROLE}"

    # -- mounts ---------------------------------------------------------------------------------

    def root_mount_settings(self) -> dict[str, Any]:
        """``pulumi_vault.Mount`` arguments; the mount's max lease TTL caps what the root can sign."""
        return {"path": validate_mount(ROOT_MOUNT), "type": "pki", "max_lease_ttl_seconds": self.root_ttl,
                "description": f"Mesh root CA for spiffe://{self.trust_domain}: signs intermediates only"}

    def intermediate_mount_settings(self) -> dict[str, Any]:
        return {"path": validate_mount(INTERMEDIATE_MOUNT), "type": "pki", "max_lease_ttl_seconds": self.intermediate_ttl,
                "description": f"Mesh intermediate CA for spiffe://{self.trust_domain}: signs workload certificates"}

    # -- the root and the intermediate -----------------------------------------------------------

    def root_settings(self) -> dict[str, Any]:
        """``pulumi_vault.pkisecret.SecretBackendRootCert`` arguments (API: ``<root>/root/generate/internal``).

        ``internal``: the key is generated in Vault and never returned. Path length 1: the root may sign an
        intermediate, which may sign only leaves.
        """
        key_type, key_bits = ROOT_KEY
        return {"backend": ROOT_MOUNT, "type": "internal", "common_name": f"{ORGANIZATION} mesh root CA ({self.trust_domain})",
                "organization": ORGANIZATION, "ttl": str(self.root_ttl), "key_type": key_type, "key_bits": key_bits,
                "max_path_length": 1, "issuer_name": "root"}

    def intermediate_request_settings(self) -> dict[str, Any]:
        """``pulumi_vault.pkisecret.SecretBackendIntermediateCertRequest`` (API: ``<int>/intermediate/generate/internal``)."""
        key_type, key_bits = INTERMEDIATE_KEY
        return {"backend": INTERMEDIATE_MOUNT, "type": "internal", "common_name": self.intermediate_common_name,
                "organization": ORGANIZATION, "key_type": key_type, "key_bits": key_bits}

    @property
    def intermediate_common_name(self) -> str:
        return f"{ORGANIZATION} mesh intermediate CA ({self.trust_domain})"

    def sign_intermediate_settings(self) -> dict[str, Any]:
        """``pulumi_vault.pkisecret.SecretBackendRootSignIntermediate`` without ``csr`` (API:
        ``<root>/root/sign-intermediate``): path length 0, so the intermediate signs leaves only."""
        return {"backend": ROOT_MOUNT, "common_name": self.intermediate_common_name, "organization": ORGANIZATION,
                "ttl": str(self.intermediate_ttl), "max_path_length": 0, "use_csr_values": False}

    @staticmethod
    def chain(intermediate_pem: str, root_pem: str) -> str:
        """What ``<int>/intermediate/set-signed`` takes: the intermediate followed by the root, so that
        every signing answer's ``ca_chain`` ends at the root (cert-manager's Vault Issuer hands the last
        certificate of that chain to istio-csr as the CA)."""
        return intermediate_pem.strip() + "\n" + root_pem.strip() + "\n"

    # -- the role ---------------------------------------------------------------------------------

    def role_settings(self) -> dict[str, Any]:
        """``pulumi_vault.pkisecret.SecretBackendRole`` arguments (API: ``<int>/roles/<ROLE>``).

        Only the names in :attr:`allowed_uri_sans` and :attr:`allowed_dns_names`: ``allow_bare_domains``
        admits the two exact DNS names, with no subdomain, glob, wildcard, localhost or IP; no CN is
        required (workload CSRs have none); the CSR's key (Istio sends ECDSA P-256, istio-csr RSA 2048)
        is kept; both client and server usage, as mTLS needs. ``ttl`` = ``max_ttl`` = the leaf TTL: a
        longer request is cut to it. ``no_store``: short-lived certificates are not written to Vault's
        storage (one per workload per hour would grow it without bound); they expire instead of being
        revoked.
        """
        return {
            "backend": INTERMEDIATE_MOUNT,
            "name": ROLE,
            "issuer_ref": "default",
            "allowed_uri_sans": self.allowed_uri_sans,
            "allowed_uri_sans_template": False,
            "allowed_domains": self.allowed_dns_names,
            "allow_bare_domains": True,
            "allow_subdomains": False,
            "allow_glob_domains": False,
            "allow_wildcard_certificates": False,
            "allow_localhost": False,
            "allow_ip_sans": False,
            "allow_any_name": False,
            "enforce_hostnames": True,
            "require_cn": False,
            "use_csr_common_name": True,
            "use_csr_sans": True,
            "server_flag": True,
            "client_flag": True,
            "code_signing_flag": False,
            "email_protection_flag": False,
            "key_type": "any",
            "key_bits": 0,
            "ttl": str(self.leaf_ttl),
            "max_ttl": str(self.leaf_ttl),
            "no_store": True,
            "generate_lease": False,
            "organizations": [ORGANIZATION],
        }

    # -- who may sign -------------------------------------------------------------------------------

    def signer_policy_hcl(self) -> str:
        """``update`` (the API's POST) on the one signing path: cert-manager's Vault Issuer writes the CSR
        there and reads the certificate from the answer. Nothing else: Vault's default deny refuses
        ``issue`` (Vault would make the key), ``sign-verbatim`` (ignores the role), every other role, the
        root mount and the mounts' configuration."""
        return (
            f"# Policy {SIGNER_POLICY}: sign mesh workload certificates with role {ROLE}, nothing else.\n"
            "# Generated by components/mesh/identity/pki.py. Everything not granted here is denied by default.\n"
            f'path "{self.sign_path}" {{\n  capabilities = ["create", "update"]\n}}\n'
        )

    def signer_role_settings(self) -> dict[str, Any]:
        """``pulumi_vault.kubernetes.AuthBackendRole`` arguments (the caller adds ``backend``): bound to
        exactly the Issuer's service account in its namespace, with the ``vault`` audience (the Issuer's
        ``serviceAccountRef.audiences`` asks for it), granting :data:`SIGNER_POLICY` alone."""
        assert SIGNER_TOKEN_TTL_SECONDS >= MIN_TOKEN_TTL_SECONDS
        return {
            "role_name": SIGNER_POLICY,
            "bound_service_account_names": [self.signer_service_account],
            "bound_service_account_namespaces": [self.signer_namespace],
            "token_policies": [SIGNER_POLICY],
            "token_ttl": SIGNER_TOKEN_TTL_SECONDS,
            "token_max_ttl": SIGNER_TOKEN_TTL_SECONDS,
            "token_type": "service",
            "audience": VAULT_AUDIENCE,
        }


__all__ = ["INTERMEDIATE_MOUNT", "ISTIO_CSR_SERVICE", "MeshCa", "ROLE", "ROOT_MOUNT", "SIGNER_POLICY"]
