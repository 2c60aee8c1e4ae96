"""The Envoy proxies: Deployments Envoy Gateway creates at run time from this EnvoyProxy resource.

Nothing else fixes what those pods run, so the EnvoyProxy says all of it (field names from the
EnvoyProxy CRD of v1.8.3, ``spec.provider.kubernetes.envoyDeployment``): the image by digest (the
controller's built-in default is the tag ``docker.io/envoyproxy/envoy:distroless-v1.38.3``,
api/v1alpha1/shared_types.go), replicas, the pod and container securityContext, resources, a
writable /tmp on a read-only root, and the filter order (JWT before ext-authz: Envoy Gateway's
default order runs ext-authz first, internal/xds/translator/httpfilters.go). The policy gate judges
these pods through policies/operator_pods.py.

Each proxy pod has a second container, ``shutdown-manager`` (internal/infrastructure/kubernetes/proxy/
resource.go at v1.8.3), which drains Envoy before the pod stops. The controller builds it with the
EnvoyGateway configuration's shutdownManager.image (the chart sets the controller image, pinned),
the envoy container's securityContext, fixed requests (10m CPU, 32Mi, no limits:
``DefaultShutdownManagerContainerResourceRequirements``) and no volume mounts, although it writes
/tmp/shutdown-ready when the drain is done (internal/cmd/envoy/shutdown_manager.go), which a
read-only root refuses. The EnvoyProxy has no field for that container; its
``envoyDeployment.patch`` (a strategic merge over the Deployment the controller builds,
internal/utils/merge.go) is Envoy Gateway's way to set the rest, so the patch names the image by
digest, requests and limits, and /tmp from the pod's ``tmp`` volume.
"""
from __future__ import annotations

import pulumi

from components.kit import KitContext, Peer, allow_egress, allow_ingress, custom_resource, pod_monitor
from components.kit.security import container_security_context, pod_security_context, resource_requirements
from components.settings import EdgeSettings

PROXY_IMAGE = "envoy-proxy"
ENVOY_PROXY_NAME = "soma-public-proxy"
UID = 65532
"""internal/infrastructure/kubernetes/proxy/resource.go (expectedEnvoySecurityContext): runAsUser 65532."""
PROXY_LABELS = {"app.kubernetes.io/name": "envoy", "app.kubernetes.io/component": "proxy",
                "app.kubernetes.io/managed-by": "envoy-gateway"}
"""proxy/resource.go envoyLabels: every proxy pod the controller creates."""
STATS_PORT = 19001
"""bootstrap.EnvoyStatsPort: the ``metrics`` container port, /stats/prometheus."""
HTTPS_CONTAINER_PORT = 10443
HTTP_CONTAINER_PORT = 10080
"""Listener ports below 1024 are served on port+10000 in the container (non-root cannot bind them)."""
XDS_PORT = 18000
OPA_PORT = 9191
SHUTDOWN_MANAGER = "shutdown-manager"
SHUTDOWN_MANAGER_IMAGE = "envoy-gateway"
"""The catalog key: the shutdown manager is the controller's binary (``envoy-gateway envoy shutdown-manager``)."""
SHUTDOWN_MANAGER_RESOURCES = {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}}
"""Envoy Gateway's own requests for it (api/v1alpha1/shared_types.go DefaultShutdownManager*ResourceRequests)
and limits: it polls Envoy's admin port once a second while draining and otherwise idles."""


def shutdown_manager_patch(ctx: KitContext) -> dict:
    """The strategic-merge patch (containers merge by name, volumeMounts by mountPath) that pins the
    shutdown manager's image and sets its limits and a writable /tmp."""
    return {
        "type": "StrategicMerge",
        "value": {"spec": {"template": {"spec": {"containers": [{
            "name": SHUTDOWN_MANAGER,
            "image": ctx.catalog.image(SHUTDOWN_MANAGER_IMAGE).reference,
            "resources": SHUTDOWN_MANAGER_RESOURCES,
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        }]}}}},
    }


def envoy_proxy(settings: EdgeSettings, namespace: str, ctx: KitContext, opts: pulumi.ResourceOptions) -> pulumi.Resource:
    image = ctx.catalog.image(PROXY_IMAGE)
    spec = {
        "provider": {
            "type": "Kubernetes",
            "kubernetes": {
                "envoyDeployment": {
                    "replicas": settings.proxy_replicas,
                    "container": {
                        "image": image.reference,
                        "resources": resource_requirements(settings.proxy_resources),
                        "securityContext": container_security_context(uid=UID),
                        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                    },
                    "pod": {
                        "securityContext": pod_security_context(UID),
                        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
                        **({"topologySpreadConstraints": [{
                            "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "DoNotSchedule" if ctx.high_availability else "ScheduleAnyway",
                            "labelSelector": {"matchLabels": PROXY_LABELS}}]} if settings.proxy_replicas > 1 else {}),
                    },
                    "patch": shutdown_manager_patch(ctx),
                },
                **({"envoyPDB": {"minAvailable": 1}} if settings.proxy_replicas > 1 else {}),
                # the one public entry of the platform
                "envoyService": {"type": "LoadBalancer", "externalTrafficPolicy": "Local"},
            },
        },
        "filterOrder": [{"name": "envoy.filters.http.jwt_authn", "before": "envoy.filters.http.ext_authz"}],
    }
    return custom_resource("gateway.envoyproxy.io/v1alpha1", "EnvoyProxy", ENVOY_PROXY_NAME, namespace, spec, opts)


def listener_ports(settings: EdgeSettings) -> tuple[int, ...]:
    """The proxies' container ports the public listeners bind: HTTPS, and HTTP when it redirects."""
    return (HTTPS_CONTAINER_PORT,) + ((HTTP_CONTAINER_PORT,) if settings.http_redirect else ())


def network(settings: EdgeSettings, namespace: str, policy_ns: str, observability_ns: str, ctx: KitContext,
            opts: pulumi.ResourceOptions) -> list:
    """Clients reach the listeners; the proxies reach the controller (xDS), OPA, the identity service's
    JWKS (in the cluster: one flow; outside it: the destination declared in mesh.istio.egress), and the
    route backends."""
    anyone = Peer(cidr="0.0.0.0/0")
    controller = Peer(pods={"control-plane": "envoy-gateway"})
    opa = Peer(namespace=policy_ns, pods={"app.kubernetes.io/name": "opa-ext-authz"})
    prometheus = Peer(namespace=observability_ns, pods={"app.kubernetes.io/name": "prometheus"})
    listeners = list(listener_ports(settings))
    flows = [
        allow_ingress("envoy-proxy-listeners", namespace, PROXY_LABELS, [anyone], listeners, opts, ledger=ctx.flows),
        allow_ingress("envoy-proxy-metrics-scrape", namespace, PROXY_LABELS, [prometheus], [STATS_PORT], opts, ledger=ctx.flows),
        allow_egress("envoy-proxy-to-xds", namespace, PROXY_LABELS, [controller], [XDS_PORT], opts, ledger=ctx.flows),
        allow_egress("envoy-proxy-to-opa", namespace, PROXY_LABELS, [opa], [OPA_PORT], opts, ledger=ctx.flows),
        pod_monitor("envoy-proxy", namespace, PROXY_LABELS,
                    [{"port": "metrics", "path": "/stats/prometheus", "interval": "30s", "scheme": "http"}], ctx, opts),
    ]
    if settings.jwt.jwks_service is not None:
        # the identity service's keys, inside the cluster: both ends of the one flow (a jwksUrl outside the
        # cluster is a destination declared in mesh.istio.egress, which opens it)
        jwks = settings.jwt.jwks_service
        jwks_pods = dict(jwks.pods) or {"app.kubernetes.io/name": jwks.service}
        flows += [
            allow_egress("envoy-proxy-to-jwks", namespace, PROXY_LABELS, [Peer(namespace=jwks.namespace, pods=jwks_pods)],
                         [jwks.port], opts, ledger=ctx.flows),
            allow_ingress(f"{jwks.service}-jwks-from-edge", jwks.namespace, jwks_pods, [Peer(namespace=namespace, pods=PROXY_LABELS)],
                          [jwks.port], opts, ledger=ctx.flows),
        ]
    for route in settings.routes:
        backend = Peer(namespace=route.backend.namespace, pods=dict(route.backend.pods) or {"app.kubernetes.io/name": route.backend.service})
        flows.append(allow_egress(f"envoy-proxy-to-{route.name}", namespace, PROXY_LABELS, [backend], [route.backend.port], opts, ledger=ctx.flows))
    return flows
