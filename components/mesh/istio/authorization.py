"""AuthorizationPolicies from the same declared flows that make the NetworkPolicies.

Every Ingress flow into an in-mesh namespace (recorded in the kit context's :class:`FlowLedger` where
the flow is declared) becomes one ALLOW AuthorizationPolicy named after the flow: the same pods
(``selector``), the same sources, the same TCP ports. Each in-mesh namespace also gets an
``allow-nothing`` policy (ALLOW with no rule), so whatever no flow names is denied: Istio evaluates
ALLOW policies as "allowed if any matches, denied if there is an ALLOW policy and none matches".

Sources. Istio identifies a peer by its mTLS identity, not its labels: a NetworkPolicy peer
``namespaceSelector`` becomes ``source.namespaces`` (the namespaces it selects, evaluated by name),
a same-namespace peer becomes the policy's own namespace, an ``ipBlock`` becomes ``ipBlocks``. The
pod selector of a peer has no mTLS equivalent, so the AuthorizationPolicy is as narrow as the
namespace and the NetworkPolicy keeps the pod-level narrowing. UDP ports have no AuthorizationPolicy
equivalent (ztunnel carries TCP only) and stay with the NetworkPolicy.

Waypoints. For traffic a waypoint serves, ztunnel sees the waypoint's identity, not the caller's
(istio.io/latest/docs/ambient/usage/l4-policy: "policies ... enforced at the ztunnel ... will see the
waypoint's identity"; istio.io/latest/docs/ambient/usage/l7-features: attach policies to the waypoint
with ``targetRefs``). So in a waypoint namespace every flow gives two policies: at the waypoint
(``targetRefs`` to the ``waypoint`` Gateway) the flow's own sources and ports, and at ztunnel the flow's
sources plus the waypoint's principal on the same ports. A caller that is not allowed is refused by the
waypoint; one that skips the waypoint (dialling a pod address) is refused by ztunnel unless it is
allowed anyway. The waypoint also gets its own ``allow-nothing``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import pulumi

from components.kit import KitContext, custom_resource, recommended
from components.kit.network import NAMESPACE_NAME_LABEL, Flow

API_VERSION = "security.istio.io/v1"
WAYPOINT = "waypoint"
"""The name of each namespace's waypoint Gateway, and of the ServiceAccount istiod gives its pods."""
FLOW_LABEL = "somaagenthub.io/flow-layer"
"""On every AuthorizationPolicy made from a flow: ``workload`` (at ztunnel) or ``waypoint``."""


@dataclass(frozen=True)
class MeshScope:
    """The namespaces in the mesh (all of them, by name), those with a waypoint, and the trust domain."""

    members: tuple[str, ...]
    waypoints: tuple[str, ...]
    trust_domain: str
    all_namespaces: tuple[str, ...]

    def principal(self, namespace: str, service_account: str) -> str:
        return f"{self.trust_domain}/ns/{namespace}/sa/{service_account}"


def selected_namespaces(selector: Mapping[str, Any], own: str, all_namespaces: Sequence[str]) -> tuple[str, ...] | None:
    """The namespaces a NetworkPolicy ``namespaceSelector`` selects, by the name label; None: every namespace."""
    if not selector:
        return None
    names: set[str] = set(all_namespaces)
    for key, value in (selector.get("matchLabels") or {}).items():
        if key != NAMESPACE_NAME_LABEL:
            raise ValueError(f"namespaceSelector on {key!r}: only the namespace name label can be translated to the mesh")
        names &= {value}
    for expression in selector.get("matchExpressions") or []:
        if expression.get("key") != NAMESPACE_NAME_LABEL or expression.get("operator") != "In":
            raise ValueError(f"namespaceSelector expression {expression}: only 'name In (...)' can be translated to the mesh")
        names &= set(expression.get("values") or [])
    return tuple(sorted(names))


def source(peer: Mapping[str, Any], namespace: str, scope: MeshScope) -> dict[str, Any]:
    """One NetworkPolicy peer as an AuthorizationPolicy ``source``."""
    if "ipBlock" in peer:
        return {"ipBlocks": [peer["ipBlock"]["cidr"]]}
    if "namespaceSelector" not in peer:
        return {"namespaces": [namespace]}
    names = selected_namespaces(peer["namespaceSelector"], namespace, scope.all_namespaces)
    return {"namespaces": ["*"]} if names is None else {"namespaces": list(names)}


def rules(flow: Flow, namespace: str, scope: MeshScope, extra_principals: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The flow's ``from``/``to`` clauses as AuthorizationPolicy rules (TCP ports only)."""
    made = []
    for rule in flow.rules:
        ports = sorted({str(port) for port, protocol in rule.ports if protocol == "TCP"}, key=int)
        if rule.ports and not ports:
            continue  # UDP only: nothing for the mesh to allow
        sources = [{"source": source(peer, namespace, scope)} for peer in rule.peers]
        sources += [{"source": {"principals": [p]}} for p in extra_principals]
        clause: dict[str, Any] = {"from": sources}
        if ports:
            clause["to"] = [{"operation": {"ports": ports}}]
        made.append(clause)
    return made


def _policy(name: str, namespace: str, spec: dict[str, Any], layer: str, why: str, opts: pulumi.ResourceOptions) -> pulumi.Resource:
    return custom_resource(API_VERSION, "AuthorizationPolicy", name, namespace, spec=spec, opts=opts,
                           labels={**recommended(name, "authorization-policy"), FLOW_LABEL: layer},
                           annotations={"somaagenthub.io/flow": why} if why else None)


def policies(flows: Sequence[tuple[str, Flow]], scope: MeshScope, opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
    """``allow-nothing`` per in-mesh namespace (and per waypoint), one ALLOW per flow (two behind a waypoint)."""
    made: list[pulumi.Resource] = []
    for namespace in scope.members:
        made.append(_policy("allow-nothing", namespace, {}, "default", "deny by default: only declared flows are allowed", opts))
        if namespace in scope.waypoints:
            made.append(_policy(f"{WAYPOINT}-allow-nothing", namespace,
                                {"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": WAYPOINT}]},
                                "default", "deny by default at the waypoint", opts))
    for namespace, flow in flows:
        if namespace not in scope.members:
            continue
        behind_waypoint = namespace in scope.waypoints
        waypoint_principal = [scope.principal(namespace, WAYPOINT)] if behind_waypoint else []
        spec: dict[str, Any] = {"action": "ALLOW", "rules": rules(flow, namespace, scope, waypoint_principal)}
        labels = (flow.pods or {}).get("matchLabels") or {}
        if labels:
            spec["selector"] = {"matchLabels": dict(labels)}
        made.append(_policy(flow.name, namespace, spec, "workload", flow.why, opts))
        if behind_waypoint:
            at_waypoint = {"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": WAYPOINT}],
                           "action": "ALLOW", "rules": rules(flow, namespace, scope)}
            made.append(_policy(f"{flow.name}-at-waypoint", namespace, at_waypoint, "waypoint", flow.why, opts))
    return made


def authorize(ctx: KitContext, scope: MeshScope, opts: pulumi.ResourceOptions, only: str) -> list[pulumi.Resource]:
    """Every flow declared so far (call after the last phase) into the in-mesh namespace ``only``, as AuthorizationPolicies."""
    one = MeshScope(members=(only,), waypoints=tuple(w for w in scope.waypoints if w == only),
                    trust_domain=scope.trust_domain, all_namespaces=scope.all_namespaces)
    return policies(ctx.flows.ingress([only]), one, opts)
