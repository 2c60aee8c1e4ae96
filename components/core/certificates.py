"""cert-manager, and the platform CA that issues every in-cluster TLS certificate.

cert-manager comes from its official chart (``charts/cert-manager``, vendored at the release tag)
in Core's operators namespace, built right after the monitoring CRDs and before anything that
requests a certificate. The chart installs its CRDs and, in prod, keeps them (``crds.keep``: they carry
``helm.sh/resource-policy: keep``, so the engine retains them on delete) and is protected like every
chart that installs CRDs.

The platform CA, for TLS inside the cluster (Vault's listener first; later phases issue theirs from
the same ClusterIssuer):

* ``somaagenthub-ca-bootstrap``, a self-signed Issuer in cert-manager's namespace, signs exactly one
  certificate: the CA's own;
* ``somaagenthub-ca``, that CA Certificate (ECDSA P-256, ten years, key kept on renewal so a renewed
  root verifies what the old one signed), in the Secret of the same name;
* ``somaagenthub-ca``, the ClusterIssuer backed by that Secret. A ClusterIssuer reads its CA Secret
  from the cluster resource namespace, which the chart sets to cert-manager's own
  (``--cluster-resource-namespace=$(POD_NAMESPACE)``, templates/deployment.yaml).

The three are applied together once the chart is up; cert-manager orders them itself (a CA issuer
whose Secret does not exist yet is retried until the CA Certificate has been issued), so the chain
adds one wave, not three. Rotating the CA is in docs/runbooks/core-secrets.md.
"""
from __future__ import annotations

import pulumi

from components.core.interfaces import IssuerRef
from components.kit import KitContext, Peer, allow_egress, allow_ingress, custom_resource, helm_chart
from components.kit.security import container_security_context, pod_security_context, resource_requirements
from components.settings import CoreSettings

API = "cert-manager.io/v1"
RELEASE = "cert-manager"
CLUSTER_ISSUER = "somaagenthub-ca"
CA_SECRET = "somaagenthub-ca"
BOOTSTRAP_ISSUER = "somaagenthub-ca-bootstrap"
CA_DURATION = "87600h"
IMAGE_UID = 65532
"""The images are built on distroless ``static-debian13:nonroot`` (hack/latest-base-images.sh, LATEST_TAG=nonroot;
hack/containers/Containerfile.* set no USER), whose user is 65532 (distroless common/variables.bzl, NONROOT)."""
METRICS_PORT = 9402
"""Container port ``http-metrics`` of the controller, webhook and CA injector (templates/*deployment.yaml)."""
WEBHOOK_PORT = 10250
"""``webhook.securePort``: the API server calls the admission webhook here."""
API_SERVER_PORTS = (443, 6443)
POD_LABELS = {"app.kubernetes.io/instance": RELEASE}
"""Every pod of the release; each also carries ``app.kubernetes.io/component``."""
CONTROLLER_LABELS = {**POD_LABELS, "app.kubernetes.io/component": "controller"}
WEBHOOK_LABELS = {**POD_LABELS, "app.kubernetes.io/component": "webhook"}
CAINJECTOR_LABELS = {**POD_LABELS, "app.kubernetes.io/component": "cainjector"}
METRICS_SERVICE = RELEASE
"""The controller's metrics Service; the chart's ServiceMonitor names the job after its
``app.kubernetes.io/name`` label, ``cert-manager``, which the certificate alerts match."""


def _image(ctx: KitContext, key: str) -> dict:
    ref = ctx.catalog.image(key)
    return {"repository": ref.name, "tag": ref.tag, "digest": ref.digest, "pullPolicy": "IfNotPresent"}


def _spread(labels: dict[str, str]) -> dict:
    return {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": dict(labels)}, "topologyKey": "kubernetes.io/hostname"}}
    ]}}


def chart_values(settings: CoreSettings, ctx: KitContext) -> dict:
    """Keys read from deploy/charts/cert-manager/values.yaml at v1.21.1 (see platform.lock.yaml).

    Each image is set by repository, tag and digest, which the chart renders as ``repo:tag@digest``;
    the ACME solver's is passed to the controller (``--acme-http01-solver-image``). The startupapicheck
    Job is off: it is a post-install hook, which the provider never deploys.
    """
    cm = settings.cert_manager
    namespace = settings.namespaces.operators.name

    def component(labels: dict[str, str]) -> dict:
        return {
            "replicaCount": cm.replicas,
            "podDisruptionBudget": {"enabled": cm.replicas > 1},
            "resources": resource_requirements(cm.resources),
            "securityContext": pod_security_context(IMAGE_UID),
            "containerSecurityContext": container_security_context(uid=IMAGE_UID),
            **({"affinity": _spread(labels)} if cm.replicas > 1 else {}),
        }

    return {
        # kept (retained on delete) where the stack protects its data, like every other CRD; dev tears down
        "crds": {"enabled": True, "keep": ctx.deletion_protection},
        "global": {
            # leader election in cert-manager's own namespace, not kube-system (the chart's default)
            "leaderElection": {"namespace": namespace},
            # no aggregation of Certificate rights into every namespace's admin/edit/view roles
            "rbac": {"aggregateClusterRoles": False},
        },
        "image": _image(ctx, "cert-manager-controller"),
        **component(CONTROLLER_LABELS),
        # The controller's, webhook's and CA injector's metrics Services and one ServiceMonitor over
        # them (templates/servicemonitor.yaml). honorLabels keeps the certificate's own namespace and
        # name labels on certmanager_certificate_* (else Prometheus renames them exported_*), which
        # the certificate alerts group and report by.
        "prometheus": {"enabled": True, "servicemonitor": {"enabled": True, "interval": "30s", "scrapeTimeout": "10s",
                                                          "honorLabels": True}},
        "webhook": {"image": _image(ctx, "cert-manager-webhook"), "securePort": WEBHOOK_PORT, **component(WEBHOOK_LABELS)},
        "cainjector": {"enabled": True, "image": _image(ctx, "cert-manager-cainjector"), **component(CAINJECTOR_LABELS)},
        "acmesolver": {"image": _image(ctx, "cert-manager-acmesolver")},
        # a post-install hook, which the provider never deploys (hooks are dropped); its image stays pinned
        # in the catalog for a `helm install` of the same values
        "startupapicheck": {"enabled": False},
    }


class Certificates(pulumi.ComponentResource):
    """cert-manager and the platform CA; ``issuer`` is what certificates inside the cluster name."""

    def __init__(self, settings: CoreSettings, ctx: KitContext, opts: pulumi.ResourceOptions | None = None):
        super().__init__("somaagenthub:core:Certificates", "certificates", None, opts)
        child = pulumi.ResourceOptions(parent=self)
        namespace = settings.namespaces.operators.name
        self.chart = helm_chart(RELEASE, "cert-manager", namespace, chart_values(settings, ctx), ctx, ctx.keep(child))
        after_chart = pulumi.ResourceOptions(parent=self, depends_on=[self.chart])
        self.bootstrap = custom_resource(API, "Issuer", BOOTSTRAP_ISSUER, namespace, {"selfSigned": {}}, after_chart)
        self.ca = custom_resource(
            API, "Certificate", CA_SECRET, namespace,
            {
                "isCA": True,
                "commonName": "SomaAgentHub platform CA",
                "subject": {"organizations": ["SomaAgentHub"]},
                "secretName": CA_SECRET,
                "duration": CA_DURATION,
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Never"},
                "issuerRef": {"name": BOOTSTRAP_ISSUER, "kind": "Issuer", "group": "cert-manager.io"},
            },
            # the root of trust: protected where the stack protects its stores
            ctx.keep(after_chart),
        )
        cluster_issuer = custom_resource(API, "ClusterIssuer", CLUSTER_ISSUER, None, {"ca": {"secretName": CA_SECRET}}, after_chart)
        self.issuer = IssuerRef(name=CLUSTER_ISSUER, kind="ClusterIssuer", resource=cluster_issuer)
        self.network_policies = self._network(settings, child)
        self.register_outputs({"clusterIssuer": CLUSTER_ISSUER})

    @staticmethod
    def _network(settings: CoreSettings, opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
        """All three talk to the API server; the API server calls the webhook; Prometheus scrapes all three."""
        ns = settings.namespaces.operators.name
        api = Peer(cidr=settings.api_server_cidr)
        prometheus = Peer(namespace=settings.namespaces.observability.name, pods={"app.kubernetes.io/name": "prometheus"})
        return [
            allow_egress("cert-manager-to-api-server", ns, CONTROLLER_LABELS, [api], API_SERVER_PORTS, opts),
            allow_egress("cert-manager-cainjector-to-api-server", ns, CAINJECTOR_LABELS, [api], API_SERVER_PORTS, opts),
            allow_egress("cert-manager-webhook-to-api-server", ns, WEBHOOK_LABELS, [api], API_SERVER_PORTS, opts),
            allow_ingress("cert-manager-webhook-from-api-server", ns, WEBHOOK_LABELS, [api], [WEBHOOK_PORT], opts),
            allow_ingress("cert-manager-metrics-scrape", ns, POD_LABELS, [prometheus], [METRICS_PORT], opts),
        ]


__all__ = ["CLUSTER_ISSUER", "Certificates", "IssuerRef", "chart_values"]
