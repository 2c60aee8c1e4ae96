"""The public edge: Envoy Gateway in front, every public route through JWT validation and OPA ext-authz.

* Envoy Gateway v1.8.3 from its official chart (charts/envoy-gateway, vendored with the release's
  packaging step). Its CRDs (Gateway API and Envoy Gateway, the chart's ``crds`` subchart) are installed
  by the program first and exposed as :attr:`EdgeOutputs.gateway_api_crds`: Istio's waypoint Gateways
  need the same Gateway API CRDs.
* The chart's certgen Job and topology-injector webhook are Helm hooks, which the provider drops: the
  control plane's xDS certificates come from cert-manager instead (:mod:`.control_plane`), as Envoy
  Gateway documents (site/content/en/latest/install/custom-cert.md at v1.8.3); the injector is switched off.
* The Envoy proxies are Deployments the controller creates from the EnvoyProxy resource
  (:mod:`.proxy`), which fixes their image (by digest), securityContext, resources and replicas.
* One Gateway (HTTPS, TLS from a cert-manager Certificate; HTTP only to redirect), one HTTPRoute and
  one SecurityPolicy (JWT + ext-authz to OPA, failing closed) per public route (:mod:`.routes`).
* OPA with the Envoy plugin in the policy namespace (:mod:`.opa`) decides with the Rego policy of
  ``rego/`` and the route table generated from the same settings.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pulumi

from components.kit import KitContext, chart_crds, custom_resource
from components.mesh.edge import control_plane, gateway, opa, proxy
from components.mesh.istio import PublicEntry
from components.settings import EdgeBackend, EdgeSettings, PlatformSettings


@dataclass(frozen=True)
class EdgeOutputs:
    gateway_api_crds: dict[str, pulumi.Resource]
    """The Gateway API CRDs (``gateways.gateway.networking.k8s.io`` ...) this component installs."""
    gateway: str
    """``<namespace>/<name>`` of the public Gateway."""
    public_entry: PublicEntry | None = None
    """The proxies' listeners: the one place the mesh admits callers without a mesh identity."""


def with_backend_names(settings: EdgeSettings, platform: PlatformSettings) -> EdgeSettings:
    """``settings`` with each backend namespace (the routes' and the JWKS service's), given as
    ``<phase>.<purpose>``, replaced by its name."""
    def named(backend: EdgeBackend) -> EdgeBackend:
        return dataclasses.replace(backend, namespace=platform.namespace_named_by(backend.namespace))
    jwt = settings.jwt
    if jwt.jwks_service is not None:
        jwt = dataclasses.replace(jwt, jwks_service=named(jwt.jwks_service))
    return dataclasses.replace(settings, jwt=jwt, routes=tuple(dataclasses.replace(r, backend=named(r.backend)) for r in settings.routes))


class Edge(pulumi.ComponentResource):
    def __init__(self, settings: EdgeSettings, domain: str, gateway_ns: str, policy_ns: str, observability_ns: str,
                 api_server_cidr: str, cluster_issuer: str, cert_manager: pulumi.Resource | None, ctx: KitContext,
                 opts: pulumi.ResourceOptions | None = None, decision_logs: opa.DecisionLogService | None = None):
        super().__init__("somaagenthub:mesh:Edge", "edge", None, opts)
        child = pulumi.ResourceOptions(parent=self)
        values = control_plane.chart_values(settings, ctx)
        crds = chart_crds(control_plane.RELEASE, control_plane.CHART_KEY, values, ctx, ctx.keep(child))
        self.crds = crds
        after_crds = pulumi.ResourceOptions(parent=self, depends_on=list(crds.values()))
        # Issuers and Certificates need cert-manager's CRDs and webhook (Core's chart)
        after_cert_manager = pulumi.ResourceOptions(parent=self, depends_on=[*crds.values(), *([cert_manager] if cert_manager else [])])
        self.certificates = control_plane.certificates(gateway_ns, after_cert_manager)
        self.chart = control_plane.chart(values, gateway_ns, ctx, crds, self.certificates, child)
        self.control_plane_network = control_plane.network(gateway_ns, observability_ns, api_server_cidr, ctx, child)
        self.envoy_proxy = proxy.envoy_proxy(settings, gateway_ns, ctx, after_crds)
        self.proxy_network = proxy.network(settings, gateway_ns, policy_ns, observability_ns, ctx, child)
        self.opa = opa.OpaExtAuthz(settings, domain, policy_ns, gateway_ns, ctx, child, decision_logs=decision_logs)
        self.public = gateway.PublicGateway(settings, domain, gateway_ns, policy_ns, cluster_issuer, self.envoy_proxy,
                                            self.opa, ctx, after_cert_manager)
        self.outputs = EdgeOutputs(gateway_api_crds={k: v for k, v in crds.items() if k.endswith(".gateway.networking.k8s.io")},
                                   gateway=f"{gateway_ns}/{gateway.GATEWAY_NAME}",
                                   public_entry=PublicEntry(gateway_ns, dict(proxy.PROXY_LABELS), proxy.listener_ports(settings),
                                                            "the public Gateway's listeners: internet clients have no mesh identity; "
                                                            "TLS from the Gateway's certificate, then JWT and OPA on every route"))
        self.register_outputs({"gateway": self.outputs.gateway})


__all__ = ["Edge", "EdgeOutputs", "custom_resource"]
