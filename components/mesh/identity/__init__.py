"""Workload identity of the mesh: Vault's root signs istiod's intermediate, cert-manager renews it,
istiod signs the workloads (Istio's plug-in CA).

The chain (docs/architecture/mesh-identity.md):

1. the mesh CA in Vault (:mod:`.vault_pki`, data in :mod:`.pki`): the root mount and root, the signer
   policy (the root's ``sign-intermediate`` with every parameter pinned) and its Kubernetes-auth role;
2. cert-manager's ``Issuer`` of kind Vault in the istio namespace, with that one path, logging in as
   its own service account (``serviceAccountRef``, audience ``vault``; cert-manager may mint tokens for
   that one account, :func:`_issuer_token_rbac`), trusting Vault's serving certificate through the
   platform CA (raft mode);
3. the ``cacerts`` Certificate (:mod:`.plugin_ca`): the intermediate and its key, in the Secret istiod
   reads as its signing CA and reloads when cert-manager renews it. istiod itself is installed by the
   Istio part with :func:`.plugin_ca.istiod_values` / :func:`.plugin_ca.ztunnel_values`, and must wait
   for ``IdentityOutputs.signing_ca``.

Alerts: Core's certificate rules (alerts/certificates.yaml) match every Certificate, this one included;
``mesh.identity.intermediateRenewBefore`` is validated to lie beyond their warning horizon.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.core import CoreOutputs
from components.core.interfaces import VaultAdmin
from components.core.secrets.ca_bundle import VAULT_CA_BUNDLE, vault_ca_bundle
from components.kit import KitContext, Peer, allow_egress, allow_ingress, custom_resource, recommended
from components.mesh.identity import plugin_ca
from components.mesh.identity.pki import CA_SECRET, MeshCa
from components.mesh.identity.vault_pki import SIGNER_SERVICE_ACCOUNT, configure, mesh_ca
from components.settings import MeshSettings

API = plugin_ca.API
ISSUER = "mesh-ca"
CERT_MANAGER_SERVICE_ACCOUNT = "cert-manager"
"""The cert-manager controller's service account (Core's chart, release ``cert-manager``)."""
CERT_MANAGER_CONTROLLER = {"app.kubernetes.io/instance": "cert-manager", "app.kubernetes.io/component": "controller"}
VAULT_PODS = {"app.kubernetes.io/name": "vault", "component": "server"}
VAULT_PORT = 8200


@dataclass(frozen=True)
class IdentityOutputs:
    trust_domain: str
    ca_secret: str
    """The Secret istiod reads its signing CA from (in the istio namespace)."""
    signing_ca: pulumi.Resource
    """The ``cacerts`` Certificate, created once Ready: istiod's chart must depend on it, or istiod starts
    with its self-signed CA and keeps it."""
    istiod_values: dict[str, Any]
    ztunnel_values: dict[str, Any]


class Identity(pulumi.ComponentResource):
    def __init__(self, settings: MeshSettings, ctx: KitContext, core: CoreOutputs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("somaagenthub:mesh:Identity", "identity", None, opts)
        if core.vault is None:
            raise ValueError("mesh identity needs Vault configured (core.vault.configure true): the mesh CA lives in Vault")
        self.ca = mesh_ca(settings)
        namespace = self.ca.istio_namespace
        child = pulumi.ResourceOptions(parent=self)
        # Issuers and Certificates need cert-manager's CRDs and webhook first
        after_cert_manager = pulumi.ResourceOptions(parent=self, depends_on=[core.cert_manager] if core.cert_manager else [])
        in_vault = configure(self.ca, core.vault, child, protect_root=ctx.deletion_protection)
        account = k8s.core.v1.ServiceAccount(
            "mesh-vault-issuer", metadata={"name": SIGNER_SERVICE_ACCOUNT, "namespace": namespace,
                                           "labels": recommended(SIGNER_SERVICE_ACCOUNT, "vault-issuer")},
            automount_service_account_token=False, opts=child)
        rbac = _issuer_token_rbac(namespace, core.operators_namespace, child)
        trust = []
        if core.vault.tls:
            trust = [vault_ca_bundle(namespace, core.vault.ca_issuer, after_cert_manager)]
        network = _network_policies(core, ctx, child)
        self.issuer = custom_resource(API, "Issuer", ISSUER, namespace, issuer_spec(self.ca, core.vault), pulumi.ResourceOptions.merge(
            after_cert_manager, pulumi.ResourceOptions(depends_on=[*in_vault.ready, account, *rbac, *network])))
        self.signing_ca = custom_resource(
            API, "Certificate", CA_SECRET, namespace, plugin_ca.certificate_spec(self.ca, ISSUER),
            # the Issuer reads the CA bundle only when it signs: both before the first request, not one after the other
            pulumi.ResourceOptions.merge(after_cert_manager, pulumi.ResourceOptions(depends_on=[self.issuer, *trust])),
            labels=recommended(CA_SECRET, "mesh-ca"), annotations=dict(plugin_ca.WAIT_FOR_READY))
        self.outputs = IdentityOutputs(trust_domain=self.ca.trust_domain, ca_secret=CA_SECRET, signing_ca=self.signing_ca,
                                       istiod_values=plugin_ca.istiod_values(self.ca), ztunnel_values=plugin_ca.ztunnel_values(self.ca))
        self.register_outputs({"trustDomain": self.ca.trust_domain, "caSecret": CA_SECRET})


def issuer_spec(ca: MeshCa, vault: VaultAdmin) -> dict:
    """``spec`` of the cert-manager ``Issuer`` (cert-manager.io/v1, ``spec.vault``; field names from the
    CRD cert-manager v1.21.1 installs): Vault's in-cluster URL; the root's sign-intermediate path (the
    issuer POSTs to ``path`` as given, for CA and leaf certificates alike: internal/vault/vault.go
    ``Sign``); Kubernetes auth as the Issuer's own service account with the ``vault`` audience; and in
    raft mode the platform CA."""
    spec: dict = {
        "server": vault.url,
        "path": ca.sign_path,
        "auth": {"kubernetes": {
            "mountPath": "/v1/auth/kubernetes",
            "role": ca.signer_role_settings()["role_name"],
            "serviceAccountRef": {"name": ca.signer_service_account, "audiences": ca.signer_role_settings()["audience"].split()},
        }},
    }
    if vault.tls:
        spec["caBundleSecretRef"] = {"name": VAULT_CA_BUNDLE, "key": "ca.crt"}
    return {"vault": spec}


def _issuer_token_rbac(namespace: str, cert_manager_namespace: str, opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
    """cert-manager's controller may request tokens for the Issuer's service account and no other
    (``serviceaccounts/token`` ``create``, resourceNames: that account), as its Vault docs require for
    ``serviceAccountRef``."""
    name = "cert-manager-vault-issuer-token"
    role = k8s.rbac.v1.Role(name, metadata={"name": name, "namespace": namespace, "labels": recommended(name, "rbac")},
                            rules=[{"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"],
                                    "resourceNames": [SIGNER_SERVICE_ACCOUNT]}], opts=opts)
    binding = k8s.rbac.v1.RoleBinding(
        name, metadata={"name": name, "namespace": namespace, "labels": recommended(name, "rbac")},
        role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        subjects=[{"kind": "ServiceAccount", "name": CERT_MANAGER_SERVICE_ACCOUNT, "namespace": cert_manager_namespace}],
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[role])))
    return [role, binding]


def _network_policies(core: CoreOutputs, ctx: KitContext, opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
    """cert-manager's controller -> Vault (the signing call), on both ends. istiod reads ``cacerts``
    from a mounted Secret: no flow of its own."""
    return [
        allow_egress("cert-manager-to-vault", core.operators_namespace, CERT_MANAGER_CONTROLLER,
                     [Peer(namespace=core.secrets_namespace, pods=VAULT_PODS)], [VAULT_PORT], opts, ledger=ctx.flows),
        allow_ingress("vault-from-cert-manager", core.secrets_namespace, VAULT_PODS,
                      [Peer(namespace=core.operators_namespace, pods=CERT_MANAGER_CONTROLLER)], [VAULT_PORT], opts, ledger=ctx.flows),
    ]


__all__ = ["Identity", "IdentityOutputs", "issuer_spec"]
