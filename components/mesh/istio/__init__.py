"""Istio in ambient mode: charts, mesh-wide STRICT mTLS, the mesh's own flows and metrics, traffic
defaults at waypoints, declared egress, and (after the last phase) AuthorizationPolicies from the flows.

Why ambient and which namespaces are in the mesh: docs/architecture/mesh.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi

from components.kit import KitContext, Peer, custom_resource, pod_monitor, recommended
from components.kit.network import PROMETHEUS_PODS, Flow, FlowRule, flow_policy, tcp
from components.mesh.identity import IdentityOutputs
from components.mesh.istio import charts
from components.mesh.istio.authorization import MeshScope, authorize
from components.mesh.istio.egress import egress_policies, service_entries
from components.mesh.istio.scraper import scraper_in_mesh
from components.mesh.istio.traffic import traffic_policies
from components.settings import IstioSettings

API_SERVER_PORTS = (443, 6443)


@dataclass(frozen=True)
class IstioPlacement:
    """Where the mesh runs and what it needs from Core: namespaces by name, the API server's network,
    the monitoring CRDs and the namespace Prometheus runs in."""

    istio_namespace: str
    node_namespace: str
    namespace_of: dict[str, str]
    """``<phase>.<purpose>`` -> namespace name, for every namespace of the stack."""
    api_server_cidr: str
    scraper_namespace: str


@dataclass(frozen=True)
class PublicEntry:
    """Pods that take connections from outside the mesh (the edge's listeners from the internet): on
    ``ports`` the mesh accepts plaintext (PERMISSIVE), on every other port of theirs STRICT still holds.
    Their own TLS (the Gateway's certificate) protects what arrives there."""

    namespace: str
    pods: dict[str, str]
    ports: tuple[int, ...]
    why: str


class Istio(pulumi.ComponentResource):
    """``somaagenthub:mesh:Istio``: everything of Istio; :meth:`authorize` adds the AuthorizationPolicies last."""

    def __init__(self, settings: IstioSettings, ctx: KitContext, where: IstioPlacement, identity: IdentityOutputs,
                 opts: pulumi.ResourceOptions, gateway_api_crds: Sequence[pulumi.Resource] = ()):
        super().__init__("somaagenthub:mesh:Istio", "istio", None, opts)
        self.settings, self.where = settings, where
        child = pulumi.ResourceOptions(parent=self)
        self.crds, self.releases = charts.install(settings, ctx, where.istio_namespace, where.node_namespace, identity, child)
        # Istio's custom resources wait for Istio's CRDs only (not for the releases), which keeps the graph shallow
        self.after_crds = pulumi.ResourceOptions(parent=self, depends_on=list(self.crds.values()))
        members = tuple(sorted(ctx.mesh.members))
        self.scope = MeshScope(members=members, waypoints=tuple(sorted(ctx.mesh.waypoints)), trust_domain=identity.trust_domain,
                               all_namespaces=tuple(sorted(set(where.namespace_of.values()))))
        self.peer_authentication = custom_resource(
            "security.istio.io/v1", "PeerAuthentication", "default", where.istio_namespace, opts=self.after_crds,
            spec={"mtls": {"mode": "STRICT"}}, labels=recommended("default", "peer-authentication"),
            annotations={"somaagenthub.io/why": "mesh-wide mutual TLS: in the root namespace, it applies to every in-mesh workload"})
        self.network_policies = self._control_flows(ctx, child)
        self.scraper = scraper_in_mesh(ctx, where.scraper_namespace, child, self.after_crds)
        self.monitors = self._monitors(ctx, child)
        # waypoints are Gateway API Gateways: they wait for those CRDs when the lead wires them in
        gateway_opts = pulumi.ResourceOptions(parent=self, depends_on=[*self.crds.values(), *gateway_api_crds])
        self.traffic = traffic_policies(settings, where.namespace_of, ctx, self.after_crds, gateway_opts)
        # declared egress: the ServiceEntries now; each using namespace's NetworkPolicy in authorize, after its namespace
        self.egress = service_entries(settings.egress, where.namespace_of, where.istio_namespace, self.after_crds)
        self.egress_policies: list[pulumi.Resource] = []
        self.authorization: list[pulumi.Resource] = []
        self.register_outputs({"istioNamespace": where.istio_namespace, "members": list(members)})

    def authorize(self, ctx: KitContext, namespaces: dict[str, pulumi.Resource]) -> list[pulumi.Resource]:
        """The declared egress NetworkPolicies of every using namespace (each waiting for its namespace, which a
        later phase may make: components/mesh/istio/egress.py); then for every in-mesh namespace a namespace-wide
        STRICT PeerAuthentication (besides the mesh-wide one, so each namespace states its own mode) and
        AuthorizationPolicies for every flow declared so far: call once, after the last phase. Each mesh object
        waits for Istio's CRDs and for its namespace."""
        self.egress_policies = egress_policies(self.settings.egress, self.where.namespace_of, ctx.flows, namespaces, self)
        made: list[pulumi.Resource] = []
        for namespace in self.scope.members:
            opts = pulumi.ResourceOptions(parent=self, depends_on=[*self.crds.values(), *([namespaces[namespace]] if namespace in namespaces else [])])
            made.append(custom_resource("security.istio.io/v1", "PeerAuthentication", "strict-mtls", namespace, opts=opts,
                                        spec={"mtls": {"mode": "STRICT"}}, labels=recommended("strict-mtls", "peer-authentication")))
            made += authorize(ctx, self.scope, opts, only=namespace)
        self.authorization = made
        return made

    def admit_public(self, entry: PublicEntry) -> pulumi.Resource:
        """A workload PeerAuthentication: STRICT for ``entry.pods`` except ``entry.ports``, which take callers
        without a mesh identity. ztunnel enforces port-level modes of selector policies (Istio 1.30
        pilot/pkg/serviceregistry/ambient/authorization.go, convertPeerAuthentication)."""
        name = "public-entry"
        return custom_resource("security.istio.io/v1", "PeerAuthentication", name, entry.namespace, opts=self.after_crds,
                               spec={"selector": {"matchLabels": dict(entry.pods)}, "mtls": {"mode": "STRICT"},
                                     "portLevelMtls": {str(p): {"mode": "PERMISSIVE"} for p in entry.ports}},
                               labels=recommended(name, "peer-authentication"), annotations={"somaagenthub.io/why": entry.why})

    def _control_flows(self, ctx: KitContext, opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
        """The mesh's own traffic, port by port from the charts (components/mesh/istio/charts.py)."""
        w = self.where
        api = ({"ipBlock": {"cidr": w.api_server_cidr}},)
        prometheus = Peer(namespace=w.scraper_namespace, pods=PROMETHEUS_PODS).as_rule()
        ztunnel = Peer(namespace=w.node_namespace, pods=charts.ZTUNNEL_LABELS).as_rule()
        istiod = Peer(namespace=w.istio_namespace, pods=charts.ISTIOD_LABELS).as_rule()
        waypoint_namespaces = sorted(ctx.mesh.waypoints)
        waypoints = tuple(Peer(namespace=ns, pods=charts.WAYPOINT_LABELS).as_rule() for ns in waypoint_namespaces)
        istio_flows = [
            Flow("istiod-xds-from-mesh", "Ingress", {"matchLabels": charts.ISTIOD_LABELS},
                 (FlowRule((ztunnel, *waypoints), tcp(charts.XDS_PORT)),),
                 "ztunnel and the waypoints take configuration (xDS) and certificates from istiod"),
            Flow("istiod-webhook-from-api-server", "Ingress", {"matchLabels": charts.ISTIOD_LABELS},
                 (FlowRule(api, tcp(charts.WEBHOOK_PORT)),), "the API server calls istiod's validation webhook"),
            Flow("istiod-metrics-scrape", "Ingress", {"matchLabels": charts.ISTIOD_LABELS},
                 (FlowRule((prometheus,), tcp(charts.ISTIOD_METRICS_PORT)),), "Prometheus scrapes istiod"),
            Flow("istiod-to-api-server", "Egress", {"matchLabels": charts.ISTIOD_LABELS},
                 (FlowRule(api, tcp(*API_SERVER_PORTS)),), "istiod watches Services, Pods and Istio's resources"),
        ]
        node_flows = [
            Flow("ztunnel-to-istiod", "Egress", {"matchLabels": charts.ZTUNNEL_LABELS},
                 (FlowRule((istiod,), tcp(charts.XDS_PORT)),), "ztunnel takes workloads (xDS) and certificates from istiod"),
            Flow("ztunnel-metrics-scrape", "Ingress", {"matchLabels": charts.ZTUNNEL_LABELS},
                 (FlowRule((prometheus,), tcp(charts.ZTUNNEL_METRICS_PORT)),), "Prometheus scrapes ztunnel"),
            Flow("istio-cni-to-api-server", "Egress", {"matchLabels": charts.CNI_LABELS},
                 (FlowRule(api, tcp(*API_SERVER_PORTS)),),
                 "istio-cni watches pods and namespaces to enrol them (it is on the host network; this policy states the flow)"),
        ]
        scrape_targets = [FlowRule((istiod,), tcp(charts.ISTIOD_METRICS_PORT)), FlowRule((ztunnel,), tcp(charts.ZTUNNEL_METRICS_PORT))]
        if waypoints:
            scrape_targets.append(FlowRule(waypoints, tcp(charts.WAYPOINT_ENVOY_STATS_PORT)))
        scrape = Flow("prometheus-scrape-mesh", "Egress", {"matchLabels": PROMETHEUS_PODS}, tuple(scrape_targets),
                      "Prometheus scrapes istiod, ztunnel and the waypoints on their metrics ports")
        made = [flow_policy(w.istio_namespace, f, opts, ctx.flows) for f in istio_flows]
        made += [flow_policy(w.node_namespace, f, opts, ctx.flows) for f in node_flows]
        made.append(flow_policy(w.scraper_namespace, scrape, opts, ctx.flows))
        for namespace in waypoint_namespaces:
            made.append(flow_policy(namespace, Flow("waypoint-metrics-scrape", "Ingress", {"matchLabels": dict(charts.WAYPOINT_LABELS)},
                                                    (FlowRule((prometheus,), tcp(charts.WAYPOINT_ENVOY_STATS_PORT)),),
                                                    "Prometheus scrapes the waypoint"), opts, ctx.flows))
        return made

    def _monitors(self, ctx: KitContext, opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
        """PodMonitors: istiod (15014 /metrics), ztunnel (15020 /stats/prometheus), each namespace's waypoint (Envoy, 15090)."""
        w = self.where
        made = [
            pod_monitor("istiod", w.istio_namespace, dict(charts.ISTIOD_LABELS),
                        [{"port": "http-monitoring", "path": "/metrics"}], ctx, opts),
            pod_monitor("ztunnel", w.node_namespace, dict(charts.ZTUNNEL_LABELS),
                        [{"port": "ztunnel-stats", "path": "/stats/prometheus"}], ctx, opts),
        ]
        made += [pod_monitor("waypoint", ns, dict(charts.WAYPOINT_LABELS), [{"port": "http-envoy-prom", "path": "/stats/prometheus"}], ctx, opts)
                 for ns in sorted(ctx.mesh.waypoints)]
        return made
