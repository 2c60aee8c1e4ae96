"""Workload identity of the mesh: Vault PKI signs, cert-manager's Vault Issuer asks, istio-csr serves.

The chain (docs/architecture/mesh-identity.md):

1. the mesh CA in Vault (:mod:`.vault_pki`, data in :mod:`.pki`): root and intermediate mounts, the
   SPIFFE-only role, the signer policy and its Kubernetes-auth role;
2. cert-manager's ``Issuer`` of kind Vault in the istio namespace, signing with that role only, logging
   in as its own service account (``serviceAccountRef``, audience ``vault``; cert-manager may mint tokens
   for that one account, :func:`_issuer_token_rbac`), trusting Vault's serving certificate through the
   platform CA (raft mode);
3. cert-manager istio-csr, from its official chart, which istiod and ztunnel call instead of istiod's
   own CA (:func:`istiod_values`, :func:`ztunnel_values`), and which distributes the root from a
   ConfigMap the program writes from Vault's root certificate (``app.tls.rootCAFile``: the trust anchor
   is pinned, not whatever the issuer returns).

Nothing of Core waits for any of it: in ambient mode a pod joins the mesh when ztunnel has its
certificate, so ordering only matters inside this chain.
"""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.core import CoreOutputs
from components.core.interfaces import VaultAdmin
from components.kit import KitContext, Peer, allow_egress, allow_ingress, custom_resource, helm_chart, pod_monitor, recommended
from components.mesh.identity import istio_csr
from components.mesh.identity.pki import MeshCa
from components.mesh.identity.vault_pki import SIGNER_SERVICE_ACCOUNT, configure, mesh_ca
from components.settings import MeshSettings

API = "cert-manager.io/v1"
ISSUER = "mesh-ca"
VAULT_CA_BUNDLE = "vault-ca-bundle"
"""A certificate from the platform CA in the istio namespace, kept only for its ``ca.crt``: the Issuer
verifies Vault's serving certificate with it (``caBundleSecretRef``); cert-manager refreshes it."""
ROOT_CONFIGMAP = "mesh-root-ca"
CERT_MANAGER_SERVICE_ACCOUNT = "cert-manager"
"""The cert-manager controller's service account (Core's chart, release ``cert-manager``)."""
CERT_MANAGER_CONTROLLER = {"app.kubernetes.io/instance": "cert-manager", "app.kubernetes.io/component": "controller"}
VAULT_PODS = {"app.kubernetes.io/name": "vault", "component": "server"}
VAULT_PORT = 8200
API_SERVER_PORTS = (443, 6443)


@dataclass(frozen=True)
class IdentityOutputs:
    trust_domain: str
    ca_address: str
    """Where istiod and ztunnel send CSRs (``global.caAddress`` / ztunnel ``caAddress``)."""
    agent_installed: bool


class Identity(pulumi.ComponentResource):
    def __init__(self, settings: MeshSettings, ctx: KitContext, core: CoreOutputs, api_server_cidr: str,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("somaagenthub:mesh:Identity", "identity", None, opts)
        if core.vault is None:
            raise ValueError("mesh identity needs Vault configured (core.vault.configure true): the mesh CA lives in Vault")
        self.ca = mesh_ca(settings)
        namespace = self.ca.istio_namespace
        child = pulumi.ResourceOptions(parent=self)
        in_vault = configure(self.ca, core.vault, child, protect_root=ctx.deletion_protection)
        account = k8s.core.v1.ServiceAccount(
            "mesh-vault-issuer", metadata={"name": SIGNER_SERVICE_ACCOUNT, "namespace": namespace,
                                           "labels": recommended(SIGNER_SERVICE_ACCOUNT, "vault-issuer")},
            automount_service_account_token=False, opts=child)
        rbac = _issuer_token_rbac(namespace, core.operators_namespace, child)
        trust = []
        if core.vault.tls:
            trust = [custom_resource(API, "Certificate", VAULT_CA_BUNDLE, namespace, {
                "secretName": VAULT_CA_BUNDLE, "commonName": f"{VAULT_CA_BUNDLE}.{namespace}.svc",
                "dnsNames": [f"{VAULT_CA_BUNDLE}.{namespace}.svc"], "duration": "2160h", "renewBefore": "720h",
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
                "issuerRef": {"name": core.vault.ca_issuer, "kind": "ClusterIssuer", "group": "cert-manager.io"},
            }, child)]
        self.issuer = custom_resource(API, "Issuer", ISSUER, namespace, issuer_spec(self.ca, core.vault), pulumi.ResourceOptions(
            parent=self, depends_on=[*in_vault.ready, account, *rbac, *trust]))
        root = k8s.core.v1.ConfigMap(
            "mesh-root-ca", metadata={"name": ROOT_CONFIGMAP, "namespace": namespace, "labels": recommended(ROOT_CONFIGMAP, "trust-anchor")},
            data={istio_csr.ROOT_CA_KEY: in_vault.root_certificate}, opts=child)
        self.network_policies = _network_policies(settings, core, api_server_cidr, child)
        self.agent = None
        if istio_csr.IMAGE in ctx.catalog.images:
            self.agent = helm_chart(istio_csr.RELEASE, istio_csr.CHART, namespace,
                                    istio_csr.chart_values(self.ca, settings, ctx), ctx,
                                    pulumi.ResourceOptions(parent=self, depends_on=[self.issuer, root]))
            pod_monitor(istio_csr.RELEASE, namespace, istio_csr.POD_LABELS, [istio_csr.scrape_endpoint()], ctx, child)
        else:
            pulumi.log.warn(f"istio-csr is not installed: platform.lock.yaml has no image '{istio_csr.IMAGE}' pinned by digest "
                            "(docs/architecture/mesh-identity.md, 'What is not done')", self)
        self.alerts = istio_csr.alert_rule(namespace, ctx, child)
        self.outputs = IdentityOutputs(trust_domain=self.ca.trust_domain, ca_address=istio_csr.ca_address(namespace),
                                       agent_installed=self.agent is not None)
        self.register_outputs({"trustDomain": self.ca.trust_domain, "caAddress": self.outputs.ca_address,
                               "agentInstalled": self.outputs.agent_installed})


def issuer_spec(ca: MeshCa, vault: VaultAdmin) -> dict:
    """``spec`` of the cert-manager ``Issuer`` (cert-manager.io/v1, ``spec.vault``; field names from the
    CRD cert-manager v1.21.1 installs): Vault's in-cluster URL, the one signing path, Kubernetes auth as
    the Issuer's own service account with the ``vault`` audience, and in raft mode the platform CA."""
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


def _network_policies(settings: MeshSettings, core: CoreOutputs, api_server_cidr: str, opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
    """istiod, ztunnel and waypoints -> istio-csr (gRPC); istio-csr -> API server; Prometheus -> istio-csr
    metrics; cert-manager's controller -> Vault (the signing call), on both ends."""
    mesh_ns = settings.namespaces["istio"].name
    node_ns = settings.namespaces["nodeAgents"].name
    api = Peer(cidr=api_server_cidr)
    prometheus = Peer(namespace=core.observability_namespace, pods={"app.kubernetes.io/name": "prometheus"})
    clients = [Peer(namespace=mesh_ns, pods=istio_csr.ISTIOD_PODS), Peer(namespace=node_ns, pods=istio_csr.ZTUNNEL_PODS),
               Peer(namespaces=tuple(settings.identity.namespaces), pods=istio_csr.WAYPOINT_PODS)]
    return [
        allow_ingress("istio-csr-from-mesh", mesh_ns, istio_csr.POD_LABELS, clients, [istio_csr.GRPC_PORT], opts),
        allow_ingress("istio-csr-metrics-scrape", mesh_ns, istio_csr.POD_LABELS, [prometheus], [istio_csr.METRICS_PORT], opts),
        allow_egress("istio-csr-to-api-server", mesh_ns, istio_csr.POD_LABELS, [api], API_SERVER_PORTS, opts),
        allow_egress("cert-manager-to-vault", core.operators_namespace, CERT_MANAGER_CONTROLLER,
                     [Peer(namespace=core.secrets_namespace, pods=VAULT_PODS)], [VAULT_PORT], opts),
        allow_ingress("vault-from-cert-manager", core.secrets_namespace, VAULT_PODS,
                      [Peer(namespace=core.operators_namespace, pods=CERT_MANAGER_CONTROLLER)], [VAULT_PORT], opts),
    ]


__all__ = ["Identity", "IdentityOutputs", "issuer_spec"]
