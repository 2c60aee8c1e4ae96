"""The Envoy Gateway controller: chart values, its xDS certificates from cert-manager, its flows.

Values read from charts/envoy-gateway/values.yaml (v1.8.3, generated from values.tmpl.yaml by the
release packaging step) and templates/: ``deployment.envoyGateway.image.{repository,tag}``
(_helpers.tpl "eg.image": the controller's image and, in the EnvoyGateway configuration the chart
writes, ``provider.kubernetes.shutdownManager.image``, the proxies' second container),
``deployment.replicas``, ``deployment.envoyGateway.resources`` and ``securityContext``,
``deployment.pod.{extraVolumes,extraVolumeMounts}``, ``podDisruptionBudget``, ``topologyInjector.enabled``.

The v1.8.3 chart has no pod-level securityContext value (templates/envoy-gateway-deployment.yaml sets
none; v1.9.0 added ``deployment.pod.securityContext``), so the container's securityContext carries
non-root, the UID and seccomp. Its root filesystem is read-only here, so the Wasm module cache the
controller creates at start (internal/gatewayapi/runner/runner.go: /var/lib/eg/wasm) gets an emptyDir,
as the v1.9.0 chart does itself.
"""
from __future__ import annotations

import pulumi

from components.kit import KitContext, Peer, allow_egress, allow_ingress, custom_resource, helm_chart
from components.kit.observability import monitor
from components.kit.security import container_security_context, resource_requirements
from components.settings import EdgeSettings

RELEASE = "envoy-gateway"
CHART_KEY = "envoy-gateway"
CONTROLLER_IMAGE = "envoy-gateway"
UID = 65532
"""The chart's own securityContext (values.yaml: runAsUser 65532), the distroless nonroot user."""
CONTROLLER_LABELS = {"control-plane": "envoy-gateway"}
"""templates/envoy-gateway-deployment.yaml: the pod's and the Service's label."""
WASM_CACHE = "/var/lib/eg/wasm"
XDS_PORT = 18000
METRICS_PORT = 19001
API_SERVER_PORTS = (443, 6443)
CERT_API = "cert-manager.io/v1"
CA_NAME = "envoy-gateway-ca"


def chart_values(settings: EdgeSettings, ctx: KitContext) -> dict:
    image = ctx.catalog.image(CONTROLLER_IMAGE)
    c = settings.controller
    values: dict = {
        "deployment": {
            "replicas": c.replicas,
            "envoyGateway": {
                "image": {"repository": image.name, "tag": image.tag_at_digest},
                "resources": resource_requirements(c.resources),
                "securityContext": container_security_context(uid=UID),
            },
            "pod": {
                "extraVolumes": [{"name": "wasm-cache", "emptyDir": {"sizeLimit": "256Mi"}}],
                "extraVolumeMounts": [{"name": "wasm-cache", "mountPath": WASM_CACHE}],
                # no prometheus.io annotations: the platform scrapes with a ServiceMonitor
                "annotations": {},
                **({"topologySpreadConstraints": [{
                    "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "DoNotSchedule" if ctx.high_availability else "ScheduleAnyway",
                    "labelSelector": {"matchLabels": CONTROLLER_LABELS}}]} if c.replicas > 1 else {}),
            },
        },
        "podDisruptionBudget": {"minAvailable": 1} if c.replicas > 1 else {"minAvailable": 0},
        # a pre-install hook (dropped by the provider) whose certificate the certgen hook patches in
        "topologyInjector": {"enabled": False},
        "service": {"type": "ClusterIP"},
    }
    return values


def certificates(namespace: str, opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
    """The Secrets the certgen hook would create (internal/provider/kubernetes/secrets.go at v1.8.3:
    ``envoy-gateway`` for the controller's xDS server, ``envoy`` for the proxies' client certificate,
    each with ``ca.crt``), issued by a CA of their own as custom-cert.md shows: the xDS server trusts
    exactly this CA, not the platform CA that signs every other in-cluster certificate.
    ``envoy-rate-limit`` and ``envoy-oidc-hmac`` are not made: no rate limiting, no OIDC here."""
    usages = ["digital signature", "key encipherment"]
    issuer = {"name": CA_NAME, "kind": "Issuer", "group": "cert-manager.io"}
    return [
        custom_resource(CERT_API, "Issuer", f"{CA_NAME}-bootstrap", namespace, {"selfSigned": {}}, opts),
        custom_resource(CERT_API, "Certificate", CA_NAME, namespace, {
            "isCA": True, "commonName": "envoy-gateway", "secretName": CA_NAME, "duration": "87600h",
            "privateKey": {"algorithm": "ECDSA", "size": 256},
            "issuerRef": {"name": f"{CA_NAME}-bootstrap", "kind": "Issuer", "group": "cert-manager.io"}}, opts),
        custom_resource(CERT_API, "Issuer", CA_NAME, namespace, {"ca": {"secretName": CA_NAME}}, opts),
        custom_resource(CERT_API, "Certificate", "envoy-gateway", namespace, {
            "commonName": "envoy-gateway", "secretName": "envoy-gateway", "issuerRef": issuer, "usages": usages,
            "dnsNames": ["envoy-gateway", f"envoy-gateway.{namespace}", f"envoy-gateway.{namespace}.svc",
                         f"envoy-gateway.{namespace}.svc.cluster.local"]}, opts),
        custom_resource(CERT_API, "Certificate", "envoy", namespace, {
            "commonName": "*", "secretName": "envoy", "issuerRef": issuer, "usages": usages,
            "dnsNames": [f"*.{namespace}"]}, opts),
    ]


def chart(values: dict, namespace: str, ctx: KitContext, crds: dict, certs: list, opts: pulumi.ResourceOptions):
    """The controller release, waiting for its certificates."""
    return helm_chart(RELEASE, CHART_KEY, namespace, values, ctx,
                      ctx.keep(pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=certs))), crds=crds)


def network(namespace: str, observability_ns: str, api_server_cidr: str, ctx: KitContext, opts: pulumi.ResourceOptions) -> list:
    """The controller watches the API server and creates the proxies; the proxies fetch xDS from it;
    Prometheus scrapes its metrics port (a ServiceMonitor on the chart's Service)."""
    api = Peer(cidr=api_server_cidr)
    proxies = Peer(pods={"app.kubernetes.io/managed-by": "envoy-gateway", "app.kubernetes.io/name": "envoy"})
    prometheus = Peer(namespace=observability_ns, pods={"app.kubernetes.io/name": "prometheus"})
    return [
        allow_egress("envoy-gateway-to-api-server", namespace, CONTROLLER_LABELS, [api], API_SERVER_PORTS, opts, ledger=ctx.flows),
        allow_ingress("envoy-gateway-xds-from-proxies", namespace, CONTROLLER_LABELS, [proxies], [XDS_PORT], opts, ledger=ctx.flows),
        allow_ingress("envoy-gateway-metrics-scrape", namespace, CONTROLLER_LABELS, [prometheus], [METRICS_PORT], opts, ledger=ctx.flows),
        monitor("ServiceMonitor", "envoy-gateway", namespace, CONTROLLER_LABELS,
                [{"port": "metrics", "path": "/metrics", "interval": "30s", "scheme": "http"}], ctx, opts),
    ]
