"""The public route table: one declaration in settings (``somaagenthub:mesh.edge.routes``) feeds the
HTTPRoutes Envoy Gateway serves, the SecurityPolicies that guard them and the data OPA decides with.

Because the three come from the same function, a route cannot be served without its policy, and OPA
cannot know a route the gateway does not serve (tests/mesh/test_edge_plan.py checks the rendered plan).
"""
from __future__ import annotations

from typing import Any

from components.settings import EdgeRoute, EdgeSettings

GATEWAY_API = "gateway.networking.k8s.io/v1"
EG_API = "gateway.envoyproxy.io/v1alpha1"
GATEWAY_NAME = "soma-public"
HTTPS_LISTENER = "https"
HTTP_LISTENER = "http-redirect"


def hostname(route: EdgeRoute, domain: str) -> str:
    return f"{route.host}.{domain}"


def route_table(edge: EdgeSettings, domain: str) -> dict[str, Any]:
    """The OPA data document (``data.soma.edge.routes``): everything the Rego policy needs per route.

    Methods map to the scopes they need; the tenant is read from a header or a path segment, and
    compared with the token's claim named ``tenant_claim``.
    """
    return {
        "routes": [
            {
                "name": r.name,
                "host": hostname(r, domain),
                "path_prefix": r.path_prefix,
                "methods": {m: sorted(r.scopes[m]) for m in r.methods},
                "tenant_claim": r.tenant_claim,
                "tenant_header": (r.tenant_header or "").lower(),
                "tenant_path_segment": r.tenant_path_segment or 0,
            }
            for r in edge.routes
        ]
    }


def http_route(route: EdgeRoute, domain: str, namespace: str) -> dict[str, Any]:
    """The HTTPRoute spec: the route's host and path prefix, its methods only, to its backend Service."""
    return {
        "parentRefs": [{"name": GATEWAY_NAME, "namespace": namespace, "sectionName": HTTPS_LISTENER}],
        "hostnames": [hostname(route, domain)],
        "rules": [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": route.path_prefix}, "method": m} for m in route.methods],
                "backendRefs": [{"name": route.backend.service, "namespace": route.backend.namespace,
                                 "port": route.backend.port, "kind": "Service", "group": ""}],
            }
        ],
    }


def security_policy(route: EdgeRoute, edge: EdgeSettings, opa_service: str, opa_namespace: str, opa_port: int) -> dict[str, Any]:
    """JWT validation against the identity service's JWKS and ext-authz to OPA, failing closed.

    Field names from the SecurityPolicy CRD of Envoy Gateway v1.8.3 (charts/envoy-gateway/charts/crds/
    crds/generated/gateway.envoyproxy.io_securitypolicies.yaml): ``extAuth.failOpen`` (default false,
    said explicitly), ``extAuth.grpc.backendRefs``, ``jwt.providers[].remoteJWKS.uri``.
    """
    return {
        "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": route.name}],
        "jwt": {
            "providers": [
                {
                    "name": "soma-identity",
                    "issuer": edge.jwt.issuer,
                    "audiences": list(edge.jwt.audiences),
                    "remoteJWKS": {"uri": edge.jwt.jwks_uri()},
                }
            ]
        },
        "extAuth": {
            "failOpen": False,
            "grpc": {"backendRefs": [{"name": opa_service, "namespace": opa_namespace, "port": opa_port,
                                      "kind": "Service", "group": ""}]},
        },
    }
