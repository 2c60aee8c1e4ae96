"""The public Gateway, its certificate, and per public route an HTTPRoute and its SecurityPolicy.

Routes live in the gateway's namespace and reach backends in other namespaces through a
ReferenceGrant there; SecurityPolicies reach OPA's Service through one in the policy namespace. The
Gateway admits routes from its own namespace only, so nothing outside this module attaches a route
to it, and every route this module attaches gets its SecurityPolicy from the same loop.
"""
from __future__ import annotations

import pulumi

from components.kit import KitContext, Peer, allow_ingress, custom_resource
from components.mesh.edge import routes
from components.mesh.edge.proxy import ENVOY_PROXY_NAME, PROXY_LABELS
from components.settings import EdgeSettings

GATEWAY_NAME = routes.GATEWAY_NAME
GATEWAY_CLASS = "soma-edge"
CONTROLLER_NAME = "gateway.envoyproxy.io/gatewayclass-controller"
"""values.yaml config.envoyGateway.gateway.controllerName."""
TLS_SECRET = "soma-public-tls"


class PublicGateway(pulumi.ComponentResource):
    def __init__(self, settings: EdgeSettings, domain: str, namespace: str, policy_ns: str, cluster_issuer: str,
                 envoy_proxy: pulumi.Resource, opa, ctx: KitContext, opts: pulumi.ResourceOptions):
        super().__init__("somaagenthub:mesh:PublicGateway", GATEWAY_NAME, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=opts.depends_on)
        api = routes.GATEWAY_API
        hosts = sorted({routes.hostname(r, domain) for r in settings.routes})
        self.certificate = custom_resource("cert-manager.io/v1", "Certificate", TLS_SECRET, namespace, {
            "secretName": TLS_SECRET, "dnsNames": hosts,
            "issuerRef": {"name": settings.tls_issuer or cluster_issuer, "kind": "ClusterIssuer", "group": "cert-manager.io"},
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
        }, child)
        self.gateway_class = custom_resource(api, "GatewayClass", GATEWAY_CLASS, None, {
            "controllerName": CONTROLLER_NAME,
            "parametersRef": {"group": "gateway.envoyproxy.io", "kind": "EnvoyProxy", "name": ENVOY_PROXY_NAME, "namespace": namespace},
        }, pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[envoy_proxy])))
        same_namespace = {"namespaces": {"from": "Same"}}
        listeners = [{"name": routes.HTTPS_LISTENER, "protocol": "HTTPS", "port": 443, "hostname": f"*.{domain}",
                      "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "group": "", "name": TLS_SECRET}]},
                      "allowedRoutes": {**same_namespace, "kinds": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}]}}]
        if settings.http_redirect:
            listeners.append({"name": routes.HTTP_LISTENER, "protocol": "HTTP", "port": 80, "hostname": f"*.{domain}",
                              "allowedRoutes": {**same_namespace, "kinds": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute"}]}})
        self.gateway = custom_resource(api, "Gateway", GATEWAY_NAME, namespace, {"gatewayClassName": GATEWAY_CLASS, "listeners": listeners},
                                       pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[self.gateway_class, self.certificate])))
        after_gateway = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[self.gateway]))
        self.redirect = None
        if settings.http_redirect:
            self.redirect = custom_resource(api, "HTTPRoute", "https-redirect", namespace, {
                "parentRefs": [{"name": GATEWAY_NAME, "namespace": namespace, "sectionName": routes.HTTP_LISTENER}],
                "hostnames": hosts,
                "rules": [{"filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]}],
            }, after_gateway)
        self.http_routes, self.security_policies, self.grants, self.backend_network = [], [], [], []
        for route in settings.routes:
            self.http_routes.append(custom_resource(api, "HTTPRoute", route.name, namespace,
                                                    routes.http_route(route, domain, namespace), after_gateway))
            self.security_policies.append(custom_resource(
                routes.EG_API, "SecurityPolicy", route.name, namespace,
                routes.security_policy(route, settings, opa.service_name, policy_ns, opa.port), after_gateway))
        backends = sorted({(r.backend.namespace, r.backend.service) for r in settings.routes})
        for backend_ns in sorted({ns for ns, _ in backends}):
            self.grants.append(custom_resource("gateway.networking.k8s.io/v1beta1", "ReferenceGrant", "edge-routes", backend_ns, {
                "from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": namespace}],
                "to": [{"group": "", "kind": "Service", "name": svc} for ns, svc in backends if ns == backend_ns],
            }, child))
        self.grants.append(custom_resource("gateway.networking.k8s.io/v1beta1", "ReferenceGrant", "edge-ext-authz", policy_ns, {
            "from": [{"group": "gateway.envoyproxy.io", "kind": "SecurityPolicy", "namespace": namespace}],
            "to": [{"group": "", "kind": "Service", "name": opa.service_name}],
        }, child))
        proxies = Peer(namespace=namespace, pods=PROXY_LABELS)
        for route in settings.routes:
            pods = dict(route.backend.pods) or {"app.kubernetes.io/name": route.backend.service}
            self.backend_network.append(allow_ingress(f"{route.backend.service}-from-edge-{route.name}", route.backend.namespace,
                                                      pods, [proxies], [route.backend.port], child, ledger=ctx.flows))
        self.register_outputs({"gateway": GATEWAY_NAME})
