"""The mesh CA applied to Vault with pulumi-vault, from the data of :mod:`components.mesh.identity.pki`.

Order is Vault's own: the PKI mount, the root generated in it, then the signer's policy and its
Kubernetes-auth role. The provider and the Kubernetes-auth mount are Core's (``CoreOutputs.vault``):
the same Vault, the same deployer token.

The root's key is generated inside Vault (``internal``) and never leaves it; the plan holds only its
certificate. Re-running ``pulumi up`` changes nothing; replacing the root is a deliberate act
(docs/runbooks/mesh-ca.md), which is why the root is protected where the stack protects its data.
"""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_vault as vault

from components.core.interfaces import VaultAdmin
from components.mesh.identity.pki import MeshCa
from components.settings import MeshSettings, duration_seconds

SIGNER_SERVICE_ACCOUNT = "vault-issuer"
"""The service account cert-manager's Vault Issuer logs into Vault as (in the istio namespace)."""


def mesh_ca(settings: MeshSettings) -> MeshCa:
    """The mesh CA the stack's settings describe; the one place settings become a :class:`MeshCa`."""
    identity = settings.identity
    istio = settings.namespaces["istio"].name
    return MeshCa(
        trust_domain=identity.trust_domain,
        istio_namespace=istio,
        signer_namespace=istio,
        signer_service_account=SIGNER_SERVICE_ACCOUNT,
        leaf_ttl=duration_seconds(identity.leaf_ttl),
        intermediate_ttl=duration_seconds(identity.intermediate_ttl),
        intermediate_renew_before=duration_seconds(identity.intermediate_renew_before),
        root_ttl=duration_seconds(identity.root_ttl),
    )


@dataclass(frozen=True)
class MeshCaInVault:
    """What later resources wait for: the root, the signer policy and its login role."""

    ready: tuple[pulumi.Resource, ...]


def configure(ca: MeshCa, admin: VaultAdmin, opts: pulumi.ResourceOptions, protect_root: bool) -> MeshCaInVault:
    on = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(provider=admin.provider))
    mount = vault.Mount("mesh-pki-root", **ca.root_mount_settings(), opts=on)
    root = vault.pkisecret.SecretBackendRootCert(
        "mesh-root-ca", **{**ca.root_settings(), "backend": mount.path},
        opts=pulumi.ResourceOptions.merge(on, pulumi.ResourceOptions(protect=protect_root)),
    )
    signer = ca.signer_role_settings()
    policy = vault.Policy("mesh-ca-signer", name=signer["role_name"], policy=ca.signer_policy_hcl(), opts=on)
    login = vault.kubernetes.AuthBackendRole(
        "mesh-ca-signer", backend=admin.kubernetes_auth_path, **signer,
        opts=pulumi.ResourceOptions.merge(on, pulumi.ResourceOptions(depends_on=[policy])))
    return MeshCaInVault(ready=(root, policy, login))


__all__ = ["MeshCaInVault", "SIGNER_SERVICE_ACCOUNT", "configure", "mesh_ca"]
