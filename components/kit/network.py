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


def flow_policy(namespace: str, flow: Flow, opts: pulumi.ResourceOptions) -> k8s.networking.v1.NetworkPolicy:
    """The NetworkPolicy that opens ``flow`` and nothing else; named after it, so the list reads as flows."""
    metadata: dict = {"name": flow.name, "namespace": namespace, "labels": recommended(flow.name, "network-policy")}
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
) -> k8s.networking.v1.NetworkPolicy:
    """One flow in one direction: the selected pods and ``peers`` on TCP ``ports``, nothing else."""
    rule = FlowRule(tuple(p.as_rule() for p in peers), tcp(*ports))
    return flow_policy(namespace, Flow(name, direction, {"matchLabels": dict(pods)}, (rule,)), opts)


def allow_ingress(
    name: str,
    namespace: str,
    pods: dict[str, str],
    sources: Sequence[Peer],
    ports: Sequence[int],
    opts: pulumi.ResourceOptions,
) -> k8s.networking.v1.NetworkPolicy:
    """Open ``ports`` on the selected pods to ``sources`` only."""
    return _allow("Ingress", name, namespace, pods, sources, ports, opts)


def allow_egress(
    name: str,
    namespace: str,
    pods: dict[str, str],
    destinations: Sequence[Peer],
    ports: Sequence[int],
    opts: pulumi.ResourceOptions,
) -> k8s.networking.v1.NetworkPolicy:
    """Let the selected pods reach ``destinations`` on ``ports`` only."""
    return _allow("Egress", name, namespace, pods, destinations, ports, opts)
