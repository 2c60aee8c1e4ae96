"""Signed images only: sigstore policy-controller verifies every image of every platform pod at admission.

The verifier comes from sigstore's chart (charts/policy-controller, 0.10.6, appVersion 0.13.1) in the
admission namespace; its ClusterImagePolicies are generated from the catalog's signer records
(policies.py), so what admission trusts is exactly what platform.lock.yaml says signed each image.
The namespaces it checks carry ``policy.sigstore.dev/include: "true"`` (kit PlatformNamespace, from
``ctx.verified_namespaces``); the chart's post-delete lease cleanup Job is a Helm hook, which the
provider never runs, and only deletes the webhook's leader-election leases after an uninstall
(templates/webhook/cleanup-leases.yaml): nothing the running verifier needs.
"""
from __future__ import annotations

import pulumi

from components.kit import KitContext, custom_resource, helm_chart
from components.kit.labels import recommended
from components.kit.network import Flow, FlowRule, Peer, flow_policy, tcp
from components.kit.security import anti_affinity, container_security_context, pod_security_context, resource_requirements
from components.mesh.signatures import alerts
from components.mesh.signatures.policies import API_VERSION, KIND, ImagePolicy, image_policies
from components.settings import SignatureSettings

RELEASE = "policy-controller"
CHART = "policy-controller"
WEBHOOK_PORT = 8443
"""The webhook container's ``https`` port (templates/webhook/deployment_webhook.yaml)."""
METRICS_PORT = 9090
"""knative's Prometheus exporter port (knative.dev/pkg metrics/config.go defaultPrometheusPort), the ``metrics`` port."""
KUBERNETES_API = (443, 6443)
WEBHOOK_PODS = {"control-plane": f"{RELEASE}-webhook"}
"""The webhook pods' label (deployment_webhook.yaml: ``control-plane: <fullname>-webhook``; fullname = release name)."""
NONROOT_UID = 65532
"""The distroless ``nonroot`` user the image runs as (values.yaml webhook.securityContext.runAsUser; HOME=/home/nonroot)."""


def chart_values(settings: SignatureSettings, ctx: KitContext) -> dict:
    """Keys read from charts/policy-controller/values.yaml at 0.10.6 (see platform.lock.yaml).

    ``webhook.securityContext`` is the pod's and ``webhook.podSecurityContext`` the container's
    (deployment_webhook.yaml); each is rendered without its ``enabled`` switch.
    """
    image = ctx.catalog.image("policy-controller")
    replicas = settings.replicas
    # the kit's secure defaults, with the chart's own on-switch
    container = {"enabled": True, **container_security_context(uid=NONROOT_UID)}
    pod = {"enabled": True, **pod_security_context(NONROOT_UID)}
    # No installCRDs: values.yaml declares it but no template reads it at 0.10.6; templates/crds/ always renders.
    return {
        "webhook": {
            "replicaCount": replicas,
            # "<tag>@<digest>": the image helper writes repository:version (_helpers.tpl policy-controller.image)
            "image": {"repository": image.name, "version": image.tag_at_digest, "pullPolicy": "IfNotPresent"},
            "resources": resource_requirements(settings.resources),
            "securityContext": pod,
            "podSecurityContext": container,
            "failurePolicy": settings.failure_policy,
            # pkg/config/store.go (v0.13.1): what happens to an image no ClusterImagePolicy names
            "configData": {"no-match-policy": settings.no_match_policy},
            "podDisruptionBudget": {"enabled": replicas > 1, "minAvailable": 1},
            "affinity": anti_affinity(WEBHOOK_PODS, required=ctx.high_availability),
        },
        # templates/webhook/service_monitor_webhook.yaml: the metrics Service's port "metrics", /metrics
        "serviceMonitor": {"enabled": True},
    }


def flows(settings: SignatureSettings, api_server_cidr: str, scraper_namespace: str) -> list[Flow]:
    """API server -> webhook, webhook -> API server, webhook -> declared registries/TUF, Prometheus -> metrics."""
    pods = {"matchLabels": dict(WEBHOOK_PODS)}
    api = {"ipBlock": {"cidr": api_server_cidr}}
    outside = tuple(FlowRule(({"ipBlock": {"cidr": d.cidr}},), tcp(d.port)) for d in settings.egress)
    prometheus = Peer(namespace=scraper_namespace, pods={"app.kubernetes.io/name": "prometheus"}).as_rule()
    return [
        Flow("signature-webhook-from-api-server", "Ingress", pods, (FlowRule((api,), tcp(WEBHOOK_PORT)),),
             why="the API server calls the admission webhooks (pods, ClusterImagePolicy defaulting and validation)"),
        Flow("signature-webhook-to-api-server", "Egress", pods, (FlowRule((api,), tcp(*KUBERNETES_API)),),
             why="the webhook watches ClusterImagePolicies, its ConfigMaps and leases, and reads pull secrets"),
        Flow("signature-webhook-to-signature-sources", "Egress", pods, outside,
             why="; ".join(f"{d.name}: {d.why}" for d in settings.egress) or "declared in mesh.signatures.egress"),
        Flow("signature-webhook-metrics-scrape", "Ingress", pods, (FlowRule((prometheus,), tcp(METRICS_PORT)),),
             why="Prometheus scrapes the webhook's request counts and latencies"),
    ]


class ImageSignatures(pulumi.ComponentResource):
    """The verifier, its network flows, its policies (one per trusted signer) and its alerts."""

    def __init__(self, settings: SignatureSettings, namespace: str, ctx: KitContext, api_server_cidr: str,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("somaagenthub:mesh:ImageSignatures", "image-signatures", None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.flows = [flow_policy(namespace, f, child) for f in flows(settings, api_server_cidr, ctx.telemetry.scraper_namespace)]
        self.chart = helm_chart(RELEASE, CHART, namespace, chart_values(settings, ctx), ctx,
                                pulumi.ResourceOptions.merge(ctx.keep(child), pulumi.ResourceOptions(depends_on=self.flows)))
        self.policies: tuple[ImagePolicy, ...] = image_policies(ctx.catalog, settings)
        after_chart = pulumi.ResourceOptions(parent=self, depends_on=[self.chart])
        for policy in self.policies:
            custom_resource(API_VERSION, KIND, policy.name, None, policy.spec(), after_chart,
                            labels=recommended(policy.name, "image-policy"),
                            annotations={"somaagenthub.io/images": ",".join(policy.images)})
        self.alerts = alerts.rule(namespace, ctx, child)
        self.register_outputs({"policies": [p.name for p in self.policies]})
