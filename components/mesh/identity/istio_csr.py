"""cert-manager istio-csr from its official chart, and the values that point istiod and ztunnel at it.

Chart keys are read from charts/cert-manager-istio-csr/values.yaml and templates/deployment.yaml at
v0.17.0; Istio keys from github.com/istio/istio at 1.30.3, manifests/charts/istio-control/
istio-discovery (values.yaml ``env``, ``global.caAddress``, ``global.trustBundleName``,
``meshConfig.trustDomain``; templates/deployment.yaml mounts the ``istiod-tls`` Secret istio-csr's
Certificate fills, and the root ConfigMap ``istio-ca-root-cert``) and manifests/charts/ztunnel
(values.yaml ``caAddress``, ``trustBundleName``).
"""
from __future__ import annotations

from typing import Any

import pulumi

from components.kit import KitContext, custom_resource, recommended
from components.kit.security import resource_requirements
from components.mesh.identity.pki import ISTIO_CSR_SERVICE, MeshCa
from components.settings import MeshSettings

CHART = "cert-manager-istio-csr"
IMAGE = "cert-manager-istio-csr"
RELEASE = "istio-csr"
GRPC_PORT = 6443
"""``app.server.serving.port``: the container port istiod, ztunnel and waypoints reach (Service port 443)."""
SERVICE_PORT = 443
METRICS_PORT = 9402
IMAGE_UID = 65532
"""The image is built on cert-manager's distroless ``static`` base (make/00_mod.mk
``oci_manager_base_image_flavor := static``), whose nonroot user is 65532."""
POD_LABELS = {"app": ISTIO_CSR_SERVICE}
"""The Deployment's selector (templates/deployment.yaml: ``app: <name>``)."""
ISTIOD_PODS = {"app": "istiod"}
ZTUNNEL_PODS = {"app": "ztunnel"}
WAYPOINT_PODS = {"gateway.istio.io/managed": "istio.io-mesh-controller"}
"""Waypoint proxies (Istio's pkg/config/constants ManagedGatewayMeshControllerLabel) request their own
certificates from the CA address."""
ROOT_CA_KEY = "root-ca.pem"
ROOT_CA_MOUNT = "/var/run/secrets/mesh-root"
TRUST_BUNDLE = "istio-ca-root-cert"
"""The ConfigMap istio-csr writes into every namespace and istiod/ztunnel mount (their default name)."""
ISTIOD_CERTIFICATE_DURATION = "1h"
ISTIOD_CERTIFICATE_RENEW_BEFORE = "30m"


def ca_address(namespace: str) -> str:
    return f"{ISTIO_CSR_SERVICE}.{namespace}.svc:{SERVICE_PORT}"


def chart_values(ca: MeshCa, settings: MeshSettings, ctx: KitContext) -> dict[str, Any]:
    """Values of the istio-csr chart (keys from its values.yaml at v0.17.0).

    * image by repository, tag and digest from the catalog;
    * the Vault Issuer (``app.certmanager.issuer``) for istio-csr's serving certificate, the CSRs and
      istiod's certificate, all CertificateRequests in the istio namespace, deleted once signed;
    * trust domain and the leaf TTL (``app.server.maxCertificateDuration``) from settings;
    * the root of trust from the program's ConfigMap (``app.tls.rootCAFile``), not from what the issuer
      returns;
    * ztunnel's service account as a trusted node account (ambient: ztunnel asks for the certificates of
      the pods on its node);
    * leader election in its own namespace; non-root (65532), read-only, no capabilities, limits;
      replicas from settings with a PodDisruptionBudget and spreading when more than one.
    """
    s = settings.identity.istio_csr
    namespace = ca.istio_namespace
    image = ctx.catalog.image(IMAGE)
    node_agents = settings.namespaces["nodeAgents"].name
    from components.mesh.identity import ISSUER

    values: dict[str, Any] = {
        "replicaCount": s.replicas,
        "image": {"repository": image.name, "tag": image.tag, "digest": image.digest, "pullPolicy": "IfNotPresent"},
        "app": {
            "logFormat": "json",
            "metrics": {"port": METRICS_PORT, "service": {"enabled": True, "servicemonitor": {"enabled": False}}},
            "certmanager": {
                "namespace": namespace,
                "preserveCertificateRequests": False,
                "issuer": {"enabled": True, "name": ISSUER, "kind": "Issuer", "group": "cert-manager.io"},
            },
            "tls": {
                "trustDomain": ca.trust_domain,
                "rootCAFile": f"{ROOT_CA_MOUNT}/{ROOT_CA_KEY}",
                "certificateDNSNames": [f"{ISTIO_CSR_SERVICE}.{namespace}.svc"],
                "certificateDuration": ISTIOD_CERTIFICATE_DURATION,
                "istiodCertificateEnable": True,
                "istiodCertificateDuration": ISTIOD_CERTIFICATE_DURATION,
                "istiodCertificateRenewBefore": ISTIOD_CERTIFICATE_RENEW_BEFORE,
                "istiodPrivateKeyAlgorithm": "ECDSA",
                "istiodPrivateKeySize": 256,
            },
            "server": {
                "maxCertificateDuration": f"{ca.leaf_ttl}s",
                "serving": {"port": GRPC_PORT, "signatureAlgorithm": "ECDSA", "certificateKeySize": 256},
                "caTrustedNodeAccounts": f"{node_agents}/ztunnel",
            },
            "istio": {"revisions": ["default"], "namespace": namespace},
            "controller": {"leaderElectionNamespace": namespace},
        },
        "resources": resource_requirements(s.resources),
        "securityContext": {
            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
            "runAsUser": IMAGE_UID, "runAsGroup": IMAGE_UID, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumes": [{"name": "mesh-root", "configMap": {"name": "mesh-root-ca", "defaultMode": 0o444}}],
        "volumeMounts": [{"name": "mesh-root", "mountPath": ROOT_CA_MOUNT, "readOnly": True}],
        "podDisruptionBudget": {"enabled": s.replicas > 1, "maxUnavailable": 1},
    }
    if s.replicas > 1:
        values["affinity"] = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": dict(POD_LABELS)}, "topologyKey": "kubernetes.io/hostname"}}
        ]}}
    return values


def scrape_endpoint() -> dict:
    """The container's metrics port, unnamed in the chart, scraped by number (``targetPort``)."""
    return {"targetPort": METRICS_PORT, "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}


def istiod_values(trust_domain: str, istio_namespace: str) -> dict[str, Any]:
    """What the istio-discovery chart (1.30.3) needs to use istio-csr instead of its own CA.

    * ``env.ENABLE_CA_SERVER: "false"``: istiod signs nothing (istio-csr's docs set it as
      ``pilot.env`` in IstioOperator form; in the Helm chart it is the top-level ``env``, rendered into
      the container's environment by templates/deployment.yaml);
    * ``global.caAddress``: where istio agents (waypoints) send CSRs;
    * ``global.trustBundleName``: the ConfigMap istio-csr writes (its default name, said explicitly),
      which istiod mounts at /var/run/secrets/istiod/ca; istiod's serving certificate comes from the
      ``istiod-tls`` Secret of istio-csr's ``istiod`` Certificate, which the chart mounts when present;
    * ``meshConfig.trustDomain``: the same trust domain as the certificates.
    """
    return {
        "env": {"ENABLE_CA_SERVER": "false"},
        "global": {"caAddress": ca_address(istio_namespace), "trustBundleName": TRUST_BUNDLE},
        "meshConfig": {"trustDomain": trust_domain},
    }


def ztunnel_values(istio_namespace: str) -> dict[str, Any]:
    """The ztunnel chart (1.30.3): ``caAddress`` (rendered as CA_ADDRESS) and the root ConfigMap name."""
    return {"caAddress": ca_address(istio_namespace), "trustBundleName": TRUST_BUNDLE}


ALERT_RULE = "mesh-identity"


def alert_rules(namespace: str) -> dict:
    """What Core's certificate alerts do not cover: istio-csr itself (its serving certificate requests,
    its scrape) and istiod's one-hour certificate, whose renewal (every 30 minutes) must not fall
    behind. The PodMonitor names the job ``<namespace>/istio-csr``."""
    job = f"{namespace}/{RELEASE}"
    failed = 'cert_manager_istio_csr_tls_provider_certificate_requests{success="0"}'
    return {"groups": [{"name": "somaagenthub.mesh-identity", "rules": [
        {"alert": "IstioCsrDown",
         "expr": f'(max(up{{namespace="{namespace}", job="{job}"}}) == 0) or absent(up{{namespace="{namespace}", job="{job}"}})',
         "for": "5m", "labels": {"severity": "critical"},
         "annotations": {"summary": "istio-csr, the mesh's certificate agent, answers no scrape.",
                         "description": "Workloads keep their certificates until they expire (one hour), then mTLS fails; new pods get no identity.",
                         "runbook_url": "docs/runbooks/mesh-ca.md#istiocsrdown"}},
        {"alert": "IstioCsrServingCertificateFailing",
         "expr": f"sum(increase({failed}[15m])) > 0",
         "for": "5m", "labels": {"severity": "warning"},
         "annotations": {"summary": "istio-csr cannot renew its gRPC serving certificate from the Vault Issuer.",
                         "description": "The Vault Issuer is failing (Vault sealed or unreachable, role or policy changed): workload certificates fail next.",
                         "runbook_url": "docs/runbooks/mesh-ca.md#istiocsrservingcertificatefailing"}},
        {"alert": "IstiodCertificateRenewalOverdue",
         "expr": f'time() - certmanager_certificate_renewal_timestamp_seconds{{namespace="{namespace}", name="istiod"}} > 600',
         "for": "5m", "labels": {"severity": "critical"},
         "annotations": {"summary": "istiod's one-hour serving certificate is past its renewal time.",
                         "description": "Renewal is failing; istiod's certificate expires within 30 minutes of the renewal time.",
                         "runbook_url": "docs/runbooks/mesh-ca.md#istiodcertificaterenewaloverdue"}},
    ]}]}


def alert_rule(namespace: str, ctx: KitContext, opts: pulumi.ResourceOptions) -> pulumi.Resource:
    return custom_resource("monitoring.coreos.com/v1", "PrometheusRule", ALERT_RULE, namespace, alert_rules(namespace),
                           ctx.after_metrics_crds(opts), labels=recommended(ALERT_RULE, "alert-rules"))
