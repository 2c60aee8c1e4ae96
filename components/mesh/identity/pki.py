"""The mesh CA in Vault, as data: the root mount, the root, and who may have it sign istiod's intermediate.

Pure (no Pulumi resource, no I/O), like ``components/core/secrets/vault_access.py``: the same values
are handed to ``pulumi_vault`` by :mod:`components.mesh.identity.vault_pki` and written through the
HTTP API into a real OpenBao server by ``tests/mesh/test_mesh_pki.py``, so what is proven there is
what the program configures. Each ``*_settings`` dict has exactly the keyword arguments of its
``pulumi_vault`` resource, which are also the parameter names of the matching API endpoint.

Shape of the CA (docs/architecture/mesh-identity.md): Istio's plug-in CA. istiod signs workload
certificates with an intermediate whose key and certificate it reads from the ``cacerts`` Secret;
cert-manager issues and renews that intermediate through a Vault ``Issuer`` whose path is the root's
``root/sign-intermediate``. So:

* ``pki_mesh_root``: the root, generated inside Vault (``type internal``: its key never leaves
  Vault), path length 1, used for one thing only: signing istiod's intermediate;
* the signer policy grants that one path and pins every parameter cert-manager's Vault issuer sends
  (cert-manager v1.21.1, internal/vault/vault.go ``Sign``: ``common_name``, ``alt_names``,
  ``ip_sans``, ``uri_sans``, ``ttl``, ``csr``, ``exclude_cn_from_sans``) to the intermediate's own
  values, and refuses every other parameter (``allowed_parameters``). The signer can therefore get
  exactly one kind of certificate: a CA named ``spiffe://<trust domain>``, for the configured lifetime,
  path length 0 (derived from the root's), over a key of its choosing. No leaf for any name, no CA for
  another trust domain, no longer lifetime, no ``use_csr_values``, no ``max_path_length``.
* Name constraints: not set. cert-manager's Vault issuer sends no ``permitted_*`` parameter, and with
  ``use_csr_values`` false Vault copies no extension from the CSR; OpenBao (2.7) knows only
  ``permitted_dns_domains`` anyway. The intermediate can therefore sign any name; only the mesh
  trusts its root (docs/architecture/mesh-identity.md, "What the intermediate's key can do").
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from components.core.secrets.vault_access import MIN_TOKEN_TTL_SECONDS, VAULT_AUDIENCE, validate_mount

ROOT_MOUNT = "pki_mesh_root"
SIGNER_POLICY = "mesh-ca-signer"
"""The Vault policy and the Kubernetes-auth role of cert-manager's Vault Issuer for the mesh CA."""
SIGNER_TOKEN_TTL_SECONDS = 300
"""cert-manager logs in for each signing and uses the token at once: five minutes is plenty."""
ROOT_KEY = ("ec", 384)
ORGANIZATION = "SomaAgentHub"
INTERMEDIATE_COMMON_NAME = f"{ORGANIZATION} mesh intermediate CA"
"""Fixed, short (cert-manager refuses a commonName over 64 bytes); the trust domain is in the URI SAN."""
CA_SECRET = "cacerts"
"""The Secret istiod reads its signing CA from (Istio 1.30.2 security/pkg/pki/ca/ca.go ``CACertsSecret``;
the istio-discovery chart mounts it at /etc/cacerts). cert-manager writes it as kubernetes.io/tls:
``tls.crt`` the intermediate, ``tls.key`` its key, ``ca.crt`` Vault's root, which is the layout
pilot/pkg/bootstrap/istio_ca.go ``detectSigningCABundleAndCRL`` looks for first."""

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def go_duration(seconds: int) -> str:
    """How Go's ``time.Duration.String()`` writes a whole number of seconds (``8760h0m0s``): the form in
    which cert-manager sends ``ttl`` to Vault, so the form the signer policy pins."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


@dataclass(frozen=True)
class MeshCa:
    """What the mesh CA is made of; validated at construction, so a bad value fails before any resource.

    ``istio_namespace``: where istiod runs and reads ``cacerts``; ``signer_namespace`` /
    ``signer_service_account``: the service account cert-manager's Vault Issuer logs in as; TTLs in seconds.
    """

    trust_domain: str
    istio_namespace: str
    signer_namespace: str
    signer_service_account: str
    leaf_ttl: int
    intermediate_ttl: int
    intermediate_renew_before: int
    root_ttl: int

    def __post_init__(self) -> None:
        if not isinstance(self.trust_domain, str) or not _DOMAIN.match(self.trust_domain):
            raise ValueError(f"mesh CA: trust_domain {self.trust_domain!r} is not a DNS name")
        for field_name in ("istio_namespace", "signer_namespace", "signer_service_account"):
            value = getattr(self, field_name)
            if not isinstance(value, str) or not _LABEL.match(value):
                raise ValueError(f"mesh CA: {field_name} {value!r} is not a DNS-1123 label")
        if not 0 < self.leaf_ttl < self.intermediate_ttl < self.root_ttl:
            raise ValueError(f"mesh CA: TTLs must nest, leaf < intermediate < root; got {self.leaf_ttl}, "
                             f"{self.intermediate_ttl}, {self.root_ttl}")
        if not 0 < self.intermediate_renew_before < self.intermediate_ttl:
            raise ValueError(f"mesh CA: intermediate_renew_before must be shorter than the intermediate's TTL; got "
                             f"{self.intermediate_renew_before} of {self.intermediate_ttl}")

    # -- names ----------------------------------------------------------------------------------

    def spiffe_id(self, namespace: str, service_account: str) -> str:
        """The identity istiod writes into a workload certificate (Istio's ``spiffe://<td>/ns/<ns>/sa/<sa>``)."""
        return f"spiffe://{self.trust_domain}/ns/{namespace}/sa/{service_account}"

    @property
    def trust_domain_id(self) -> str:
        """The intermediate's URI SAN: the SPIFFE ID of the trust domain itself (no path), as the X509-SVID
        specification allows for signing certificates."""
        return f"spiffe://{self.trust_domain}"

    @property
    def sign_path(self) -> str:
        """What cert-manager's Vault Issuer names in ``spec.vault.path``."""
        return f"{ROOT_MOUNT}/root/sign-intermediate"

    # -- the mount and the root -------------------------------------------------------------------

    def root_mount_settings(self) -> dict[str, Any]:
        """``pulumi_vault.Mount`` arguments; the mount's max lease TTL caps what the root can sign."""
        return {"path": validate_mount(ROOT_MOUNT), "type": "pki", "max_lease_ttl_seconds": self.root_ttl,
                "description": f"Mesh root CA for spiffe://{self.trust_domain}: signs istiod's intermediate only"}

    def root_settings(self) -> dict[str, Any]:
        """``pulumi_vault.pkisecret.SecretBackendRootCert`` arguments (API: ``<root>/root/generate/internal``).

        ``internal``: the key is generated in Vault and never returned. Path length 1: the root may sign an
        intermediate, which may sign only leaves.
        """
        key_type, key_bits = ROOT_KEY
        return {"backend": ROOT_MOUNT, "type": "internal", "common_name": f"{ORGANIZATION} mesh root CA ({self.trust_domain})",
                "organization": ORGANIZATION, "ttl": str(self.root_ttl), "key_type": key_type, "key_bits": key_bits,
                "max_path_length": 1, "issuer_name": "root"}

    # -- the intermediate, as cert-manager asks for it ------------------------------------------------

    def signing_request(self, csr: str) -> dict[str, str]:
        """The body cert-manager v1.21.1's Vault issuer POSTs to :attr:`sign_path` for the ``cacerts``
        Certificate (internal/vault/vault.go ``Sign``: names from the CSR, which cert-manager builds from
        the Certificate's spec, ``ttl`` the Certificate's duration as Go prints it, every value a string)."""
        return {**self._pinned_parameters(), "csr": csr}

    def _pinned_parameters(self) -> dict[str, str]:
        return {"common_name": INTERMEDIATE_COMMON_NAME, "alt_names": "", "ip_sans": "", "uri_sans": self.trust_domain_id,
                "ttl": go_duration(self.intermediate_ttl), "exclude_cn_from_sans": "true"}

    # -- who may sign -------------------------------------------------------------------------------

    def signer_policy_hcl(self) -> str:
        """``update`` (the API's POST) on the root's sign-intermediate path, with every parameter pinned
        (``allowed_parameters``: a key not listed is refused, a listed key must have a listed value; ``csr``
        is free: it only contributes the public key, since ``use_csr_values`` cannot be sent). Nothing
        else: Vault's default deny refuses issuing, sign-verbatim, sign-self-issued, the root's
        configuration and every other mount."""
        pinned = "\n".join(f'    "{key}" = ["{value}"]' for key, value in self._pinned_parameters().items())
        return (
            f"# Policy {SIGNER_POLICY}: have the mesh root sign istiod's intermediate (the cacerts Secret), nothing else.\n"
            "# Generated by components/mesh/identity/pki.py. Everything not granted here is denied by default.\n"
            f'path "{self.sign_path}" {{\n  capabilities = ["update"]\n  allowed_parameters = {{\n'
            f'    "csr" = []\n{pinned}\n  }}\n}}\n'
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


__all__ = ["CA_SECRET", "INTERMEDIATE_COMMON_NAME", "MeshCa", "ROOT_MOUNT", "SIGNER_POLICY", "go_duration"]
