"""Traffic policy defaults (timeout, retries, circuit breaking), applied by each namespace's waypoint.

In ambient mode ztunnel is L4 only; L7 policy needs a waypoint proxy. Each namespace listed in
``mesh.istio.waypoints`` gets a Gateway ``waypoint`` of class ``istio-waypoint`` (listener ``mesh``,
port 15008, protocol HBONE: istio.io/latest/docs/ambient/usage/waypoint, "Deploy a waypoint proxy")
and the namespace label ``istio.io/use-waypoint: waypoint``, which enrols every Service of the
namespace (components/mesh/istio/__init__.py passes the label to the namespace).

Which API: Istio 1.30 applies DestinationRule ``trafficPolicy`` (connectionPool, outlierDetection)
at waypoints, and VirtualService ``timeout``/``retries`` for waypoint-served Services (Alpha in
ambient; istio.io/latest/docs/ambient/usage/l7-features, "Traffic routing": "VirtualService ... with
waypoints"; pilot/pkg/networking/core/listener_waypoint.go at tag 1.30.2 reads the DestinationRule of
each waypoint-served host). Gateway API HTTPRoute has ``timeouts`` but no retry-on conditions or
connection limits, so DestinationRule + VirtualService carry the settings. Hosts: one wildcard per
namespace (``*.<namespace>.svc.cluster.local``) gives every Service the defaults, including the
Services charts render (unknown to the program until the chart is expanded); an override for
``<namespace>/<service>`` is a DestinationRule and VirtualService for that exact host, which Istio
prefers over the wildcard. This is stated from the documentation; it needs checking on a cluster
(docs/runbooks/mesh.md, "What the offline checks do not prove").
"""
from __future__ import annotations

from typing import Any

import pulumi

from components.kit import KitContext, custom_resource, recommended
from components.mesh.istio.authorization import WAYPOINT
from components.settings import IstioSettings, TrafficOverride, TrafficPolicySettings

CLUSTER_DOMAIN = "cluster.local"
"""The cluster DNS domain Service hosts are named in (the kubelet default; not the trust domain)."""
WAYPOINT_LABEL = {"istio.io/use-waypoint": WAYPOINT}
HBONE_PORT = 15008


def merged(defaults: TrafficPolicySettings, override: TrafficOverride | None) -> TrafficPolicySettings:
    """The defaults with the override's fields put over them."""
    if override is None:
        return defaults
    return TrafficPolicySettings(
        request_timeout=override.request_timeout or defaults.request_timeout,
        retries=override.retries or defaults.retries,
        connection_pool=override.connection_pool or defaults.connection_pool,
        outlier_detection=override.outlier_detection or defaults.outlier_detection,
    )


def destination_rule_spec(host: str, policy: TrafficPolicySettings) -> dict[str, Any]:
    pool, outlier = policy.connection_pool, policy.outlier_detection
    return {
        "host": host,
        "trafficPolicy": {
            "connectionPool": {
                "tcp": {"maxConnections": pool.max_connections},
                "http": {"http1MaxPendingRequests": pool.http1_max_pending_requests, "http2MaxRequests": pool.http2_max_requests,
                         "maxRequestsPerConnection": pool.max_requests_per_connection},
            },
            "outlierDetection": {"consecutive5xxErrors": outlier.consecutive_5xx_errors, "interval": outlier.interval,
                                 "baseEjectionTime": outlier.base_ejection_time, "maxEjectionPercent": outlier.max_ejection_percent},
        },
    }


def virtual_service_spec(host: str, policy: TrafficPolicySettings) -> dict[str, Any]:
    retries = policy.retries
    return {
        "hosts": [host],
        "http": [{
            "timeout": policy.request_timeout,
            "retries": {"attempts": retries.attempts, "perTryTimeout": retries.per_try_timeout, "retryOn": ",".join(retries.retry_on)},
            "route": [{"destination": {"host": host}}],
        }],
    }


def waypoint(namespace: str, opts: pulumi.ResourceOptions) -> pulumi.Resource:
    return custom_resource("gateway.networking.k8s.io/v1", "Gateway", WAYPOINT, namespace, opts=opts,
                           labels={**recommended(WAYPOINT, "waypoint"), "istio.io/waypoint-for": "service"},
                           spec={"gatewayClassName": "istio-waypoint",
                                 "listeners": [{"name": "mesh", "port": HBONE_PORT, "protocol": "HBONE"}]})


def _pair(name: str, namespace: str, host: str, policy: TrafficPolicySettings, opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
    return [
        custom_resource("networking.istio.io/v1", "DestinationRule", name, namespace, spec=destination_rule_spec(host, policy),
                        opts=opts, labels=recommended(name, "traffic-policy")),
        custom_resource("networking.istio.io/v1", "VirtualService", name, namespace, spec=virtual_service_spec(host, policy),
                        opts=opts, labels=recommended(name, "traffic-policy")),
    ]


def traffic_policies(settings: IstioSettings, namespace_of: dict[str, str], ctx: KitContext,
                     opts: pulumi.ResourceOptions, gateway_opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
    """A waypoint, the namespace-wide defaults and each override, for every waypoint namespace."""
    made: list[pulumi.Resource] = []
    for key in settings.waypoints:
        namespace = namespace_of[key]
        made.append(waypoint(namespace, gateway_opts))
        made += _pair("traffic-defaults", namespace, f"*.{namespace}.svc.{CLUSTER_DOMAIN}", settings.traffic, opts)
    waypoint_namespaces = {namespace_of[k] for k in settings.waypoints}
    for service, override in sorted(settings.overrides.items()):
        namespace, _, name = service.partition("/")
        if namespace in waypoint_namespaces:
            made += _pair(f"traffic-{name}", namespace, f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}",
                          merged(settings.traffic, override), opts)
    return made
