"""NetworkPolicy building blocks: every namespace starts closed, flows are opened by name.

Each allow rule is its own NetworkPolicy named after the flow it opens, so the plan (and
``kubectl get netpol``) reads as a list of permitted flows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.kit.labels import recommended

DNS_PORTS = ({"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53})
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Peer:
    """The other end of a flow: pods (by labels) in a namespace (by name); empty means all.

    Without a namespace the peer is in the policy's own namespace; ``namespaces`` names several
    (the labelled clients of a store, in the namespaces whose services hold its credentials: a
    pod label alone is self-asserted, the namespace list is what the platform decides);
    ``any_namespace`` widens it to the labelled pods of every namespace.
    """

    namespace: str | None = None
    pods: dict[str, str] = field(default_factory=dict)
    cidr: str | None = None
    any_namespace: bool = False
    namespaces: tuple[str, ...] = ()

    def as_rule(self) -> dict:
        if self.cidr:
            return {"ipBlock": {"cidr": self.cidr}}
        rule: dict = {}
        if self.any_namespace:
            rule["namespaceSelector"] = {}
        elif self.namespaces:
            rule["namespaceSelector"] = in_namespaces(self.namespaces)
        elif self.namespace:
            rule["namespaceSelector"] = {"matchLabels": {NAMESPACE_NAME_LABEL: self.namespace}}
        rule["podSelector"] = {"matchLabels": dict(self.pods)}
        return rule


def in_namespaces(names: Sequence[str]) -> dict:
    """A namespaceSelector for exactly ``names`` (by the name label Kubernetes sets on every namespace)."""
    if not names:
        raise ValueError("a namespace list needs at least one namespace")
    return {"matchExpressions": [{"key": NAMESPACE_NAME_LABEL, "operator": "In", "values": sorted(set(names))}]}


Port = tuple[int, str]
FLOW_ANNOTATION = "somaagenthub.io/flow"


def tcp(*ports: int) -> tuple[Port, ...]:
    return tuple((p, "TCP") for p in ports)


@dataclass(frozen=True)
class FlowRule:
    """One ``from``/``to`` clause: peers (NetworkPolicy peer dicts) and ports (none: any port)."""

    peers: tuple[dict, ...]
    ports: tuple[Port, ...] = ()

    def as_spec(self, direction: str) -> dict:
        clause: dict = {"from" if direction == "Ingress" else "to": list(self.peers)}
        if self.ports:
            clause["ports"] = [{"protocol": proto, "port": port} for port, proto in self.ports]
        return clause


@dataclass(frozen=True)
class Flow:
    """A named, permitted flow in one direction for the pods ``pods`` selects; ``why`` is annotated."""

    name: str
    direction: Literal["Ingress", "Egress"]
    pods: dict
    rules: tuple[FlowRule, ...]
    why: str = ""


@dataclass
class FlowLedger:
    """Every flow the platform declares, with its namespace: the one list of who talks to whom.

    The NetworkPolicy of a flow is made where the flow is declared; the mesh reads the same list to
    write its AuthorizationPolicies (components/mesh/istio/authorization.py), so both layers come
    from one declaration. Shared by every copy of a :class:`KitContext` (like its delivered Secrets).
    """

    entries: list[tuple[str, Flow]] = field(default_factory=list)

    def record(self, namespace: str, flow: Flow) -> None:
        self.entries.append((namespace, flow))

    def ingress(self, namespaces: Sequence[str]) -> list[tuple[str, Flow]]:
        """The Ingress flows into ``namespaces``, in declaration order."""
        wanted = set(namespaces)
        return [(ns, f) for ns, f in self.entries if ns in wanted and f.direction == "Ingress"]


def flow_policy(namespace: str, flow: Flow, opts: pulumi.ResourceOptions, ledger: FlowLedger | None = None,
                labels: dict[str, str] | None = None) -> k8s.networking.v1.NetworkPolicy:
    """The NetworkPolicy that opens ``flow`` and nothing else; named after it, so the list reads as flows.

    With a ``ledger`` the flow is also recorded there, for the layers that enforce it besides the
    NetworkPolicy (the mesh's AuthorizationPolicies).
    """
    if ledger is not None:
        ledger.record(namespace, flow)
    metadata: dict = {"name": flow.name, "namespace": namespace, "labels": {**recommended(flow.name, "network-policy"), **(labels or {})}}
    if flow.why:
        metadata["annotations"] = {FLOW_ANNOTATION: flow.why}
    return k8s.networking.v1.NetworkPolicy(
        f"{namespace}-{flow.name}",
        metadata=metadata,
        spec={
            "podSelector": flow.pods,
            "policyTypes": [flow.direction],
            flow.direction.lower(): [rule.as_spec(flow.direction) for rule in flow.rules],
        },
        opts=opts,
    )


def default_deny(namespace: str, opts: pulumi.ResourceOptions) -> k8s.networking.v1.NetworkPolicy:
    """Deny all ingress and egress for every pod of ``namespace``."""
    return k8s.networking.v1.NetworkPolicy(
        f"{namespace}-default-deny",
        metadata={"name": "default-deny", "namespace": namespace, "labels": recommended("default-deny", "network-policy")},
        spec={"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        opts=opts,
    )


def allow_dns(namespace: str, opts: pulumi.ResourceOptions) -> k8s.networking.v1.NetworkPolicy:
    """Let every pod resolve names through the cluster DNS in kube-system, nothing more."""
    dns = Peer(namespace="kube-system", pods={"k8s-app": "kube-dns"})
    return k8s.networking.v1.NetworkPolicy(
        f"{namespace}-allow-dns",
        metadata={"name": "allow-dns-egress", "namespace": namespace, "labels": recommended("allow-dns-egress", "network-policy")},
        spec={"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [dns.as_rule()], "ports": list(DNS_PORTS)}]},
        opts=opts,
    )


def _allow(
    direction: Literal["Ingress", "Egress"],
    name: str,
    namespace: str,
    pods: dict[str, str],
    peers: Sequence[Peer],
    ports: Sequence[int],
    opts: pulumi.ResourceOptions,
    ledger: FlowLedger | None = None,
) -> k8s.networking.v1.NetworkPolicy:
    """One flow in one direction: the selected pods and ``peers`` on TCP ``ports``, nothing else."""
    rule = FlowRule(tuple(p.as_rule() for p in peers), tcp(*ports))
    return flow_policy(namespace, Flow(name, direction, {"matchLabels": dict(pods)}, (rule,)), opts, ledger)


def allow_ingress(
    name: str,
    namespace: str,
    pods: dict[str, str],
    sources: Sequence[Peer],
    ports: Sequence[int],
    opts: pulumi.ResourceOptions,
    ledger: FlowLedger | None = None,
) -> k8s.networking.v1.NetworkPolicy:
    """Open ``ports`` on the selected pods to ``sources`` only (recorded in ``ledger``, the kit context's ``flows``)."""
    return _allow("Ingress", name, namespace, pods, sources, ports, opts, ledger)


def allow_egress(
    name: str,
    namespace: str,
    pods: dict[str, str],
    destinations: Sequence[Peer],
    ports: Sequence[int],
    opts: pulumi.ResourceOptions,
    ledger: FlowLedger | None = None,
) -> k8s.networking.v1.NetworkPolicy:
    """Let the selected pods reach ``destinations`` on ``ports`` only."""
    return _allow("Egress", name, namespace, pods, destinations, ports, opts, ledger)


HBONE_PORT = 15008
"""ztunnel and waypoints carry mesh traffic to a pod on this port (HBONE), whatever the service port."""
PROBE_SNAT = "169.254.7.127/32"
"""In ambient pods istio-cni rewrites the kubelet's probes to come from this address (Istio's ambient
"probe SNAT"), so that ztunnel lets them through; a NetworkPolicy must admit it too."""
PROMETHEUS_PODS = {"app.kubernetes.io/name": "prometheus"}
"""The Prometheus server pods (kube-prometheus-stack's Prometheus CR; the operator labels its pods so)."""
WAYPOINT_PODS = {"gateway.istio.io/managed": "istio.io-mesh-controller"}
"""The label istiod gives the waypoint pods it creates (istiod chart files/waypoint.yaml)."""
ISTIOD_PODS = {"app": "istiod"}
ISTIOD_XDS_PORT = 15012
MESH_TRANSPORT_LABEL = "somaagenthub.io/mesh-transport"
"""On the NetworkPolicies that carry the mesh itself (HBONE, probes, waypoint to istiod): not flows between
services, so they have no AuthorizationPolicy of their own; the AuthorizationPolicies decide what HBONE carries."""


def mesh_transport(namespace: str, mesh, opts: pulumi.ResourceOptions) -> list[k8s.networking.v1.NetworkPolicy]:
    """What an in-mesh namespace needs open for the mesh to carry its flows.

    HBONE arrives at and leaves a pod on 15008 (ztunnel's socket lives in the pod's network namespace),
    so a NetworkPolicy on the service port never sees mesh traffic: 15008 is opened to and from the
    mesh's namespaces, and the AuthorizationPolicies made from the same flows decide which source may
    reach which port. The kubelet's probes arrive from the probe SNAT address. Waypoints fetch their
    configuration and certificates from istiod.
    """
    members = {"matchExpressions": [{"key": NAMESPACE_NAME_LABEL, "operator": "In", "values": sorted(mesh.members)}]}
    hbone = FlowRule(({"namespaceSelector": members, "podSelector": {}},), tcp(HBONE_PORT))
    enrolled = tuple(Peer(namespace=ns, pods=dict(labels)).as_rule() for ns, labels in mesh.enrolled_pods)
    hbone_in = FlowRule((*hbone.peers, *enrolled), hbone.ports)
    flows = [
        Flow("mesh-hbone-in", "Ingress", {}, (hbone_in,),
             "mesh traffic (HBONE) from the pods and waypoints of the mesh's namespaces"
             + (" and from the pods enrolled one by one (Prometheus)" if enrolled else "")),
        Flow("mesh-hbone-out", "Egress", {}, (hbone,), "mesh traffic (HBONE) to the pods and waypoints of the mesh's namespaces"),
        Flow("mesh-probes", "Ingress", {}, (FlowRule(({"ipBlock": {"cidr": PROBE_SNAT}},)),),
             "the kubelet's probes, which istio-cni rewrites to come from the probe SNAT address"),
    ]
    if namespace in mesh.waypoints:
        istiod = Peer(namespace=mesh.istio_namespace, pods=ISTIOD_PODS)
        flows.append(Flow("waypoint-to-istiod", "Egress", {"matchLabels": dict(WAYPOINT_PODS)},
                          (FlowRule((istiod.as_rule(),), tcp(ISTIOD_XDS_PORT)),),
                          "the waypoint proxy takes its configuration (xDS) and certificate from istiod"))
    return [flow_policy(namespace, flow, opts, labels={MESH_TRANSPORT_LABEL: "true"}) for flow in flows]
