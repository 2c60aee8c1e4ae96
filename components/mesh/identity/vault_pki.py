"""The mesh CA applied to Vault with pulumi-vault, from the data of :mod:`components.mesh.identity.pki`.

Order is Vault's own: the two PKI mounts, the root generated in its mount, the intermediate's CSR
generated in its mount, signed by the root, imported back with the root behind it (set-signed), then
the role that issues from it, and the signer's policy and Kubernetes-auth role. The provider and the
Kubernetes-auth mount are Core's (``CoreOutputs.vault``): the same Vault, the same deployer token.

The root's and the intermediate's keys are generated inside Vault (``internal``) and never leave it; the
plan holds only certificates. Re-running ``pulumi up`` changes nothing; replacing the root is a
deliberate act (docs/runbooks/mesh-ca.md), which is why the root is protected where the stack protects
its data.
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
        namespaces=tuple(identity.namespaces),
        istio_namespace=istio,
        signer_namespace=istio,
        signer_service_account=SIGNER_SERVICE_ACCOUNT,
        leaf_ttl=duration_seconds(identity.leaf_ttl),
        intermediate_ttl=duration_seconds(identity.intermediate_ttl),
        root_ttl=duration_seconds(identity.root_ttl),
    )


@dataclass(frozen=True)
class MeshCaInVault:
    """What later resources wait for and read: the root certificate (the mesh's root of trust), and the
    role plus signer role the Issuer needs before it can sign."""

    root_certificate: pulumi.Output[str]
    ready: tuple[pulumi.Resource, ...]


def configure(ca: MeshCa, admin: VaultAdmin, opts: pulumi.ResourceOptions, protect_root: bool) -> MeshCaInVault:
    on = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(provider=admin.provider))
    root_mount = vault.Mount("mesh-pki-root", **ca.root_mount_settings(), opts=on)
    int_mount = vault.Mount("mesh-pki-intermediate", **ca.intermediate_mount_settings(), opts=on)
    root_settings = {**ca.root_settings(), "backend": root_mount.path}
    root = vault.pkisecret.SecretBackendRootCert(
        "mesh-root-ca", **root_settings,
        opts=pulumi.ResourceOptions.merge(on, pulumi.ResourceOptions(protect=protect_root)),
    )
    request = vault.pkisecret.SecretBackendIntermediateCertRequest(
        "mesh-intermediate-ca", **{**ca.intermediate_request_settings(), "backend": int_mount.path}, opts=on)
    signed = vault.pkisecret.SecretBackendRootSignIntermediate(
        "mesh-intermediate-ca", **{**ca.sign_intermediate_settings(), "backend": root_mount.path}, csr=request.csr,
        opts=pulumi.ResourceOptions.merge(on, pulumi.ResourceOptions(depends_on=[root])))
    imported = vault.pkisecret.SecretBackendIntermediateSetSigned(
        "mesh-intermediate-ca", backend=int_mount.path,
        # both are known once Vault answered; the offline render's mocks leave outputs empty
        certificate=pulumi.Output.all(signed.certificate, root.certificate).apply(lambda pems: MeshCa.chain(*pems) if all(pems) else None),
        opts=on)
    role = vault.pkisecret.SecretBackendRole(
        "mesh-workload", **{**ca.role_settings(), "backend": int_mount.path},
        opts=pulumi.ResourceOptions.merge(on, pulumi.ResourceOptions(depends_on=[imported])))
    signer = ca.signer_role_settings()
    policy = vault.Policy("mesh-ca-signer", name=signer["role_name"], policy=ca.signer_policy_hcl(), opts=on)
    login = vault.kubernetes.AuthBackendRole(
        "mesh-ca-signer", backend=admin.kubernetes_auth_path, **signer,
        opts=pulumi.ResourceOptions.merge(on, pulumi.ResourceOptions(depends_on=[policy])))
    return MeshCaInVault(root_certificate=root.certificate, ready=(role, login))


__all__ = ["MeshCaInVault", "SIGNER_SERVICE_ACCOUNT", "configure", "mesh_ca"]
