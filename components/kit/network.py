"""NetworkPolicy building blocks: every namespace starts closed, flows are opened by name.

Each allow rule is its own NetworkPolicy named after the flow it opens, so the plan (and
``kubectl get netpol``) reads as a list of permitted flows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.kit.labels import recommended

DNS_PORTS = ({"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53})
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Peer:
    """The other end of a flow: pods (by labels) in a namespace (by name); empty means all."""

    namespace: str | None = None
    pods: dict[str, str] = field(default_factory=dict)
    cidr: str | None = None

    def as_rule(self) -> dict:
        if self.cidr:
            return {"ipBlock": {"cidr": self.cidr}}
        rule: dict = {}
        if self.namespace:
            rule["namespaceSelector"] = {"matchLabels": {NAMESPACE_NAME_LABEL: self.namespace}}
        rule["podSelector"] = {"matchLabels": dict(self.pods)}
        return rule


def _ports(ports: Sequence[int]) -> list[dict]:
    return [{"protocol": "TCP", "port": p} for p in ports]


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


def allow_ingress(
    name: str,
    namespace: str,
    pods: dict[str, str],
    sources: Sequence[Peer],
    ports: Sequence[int],
    opts: pulumi.ResourceOptions,
) -> k8s.networking.v1.NetworkPolicy:
    """Open ``ports`` on the selected pods to ``sources`` only."""
    return k8s.networking.v1.NetworkPolicy(
        f"{namespace}-{name}",
        metadata={"name": name, "namespace": namespace, "labels": recommended(name, "network-policy")},
        spec={
            "podSelector": {"matchLabels": dict(pods)},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [s.as_rule() for s in sources], "ports": _ports(ports)}],
        },
        opts=opts,
    )


def allow_egress(
    name: str,
    namespace: str,
    pods: dict[str, str],
    destinations: Sequence[Peer],
    ports: Sequence[int],
    opts: pulumi.ResourceOptions,
) -> k8s.networking.v1.NetworkPolicy:
    """Let the selected pods reach ``destinations`` on ``ports`` only."""
    return k8s.networking.v1.NetworkPolicy(
        f"{namespace}-{name}",
        metadata={"name": name, "namespace": namespace, "labels": recommended(name, "network-policy")},
        spec={
            "podSelector": {"matchLabels": dict(pods)},
            "policyTypes": ["Egress"],
            "egress": [{"to": [d.as_rule() for d in destinations], "ports": _ports(ports)}],
        },
        opts=opts,
    )
