"""default-deny-network-policy: every namespace that runs workloads starts from deny-all.

A stack rule, because the question is about the set of resources: is there, next to the
workloads of a namespace, a NetworkPolicy that selects every pod and allows nothing (and,
once the service mesh is on, a namespace-wide STRICT mTLS PeerAuthentication)?
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from ..model import (
    Finding,
    ResourceView,
    Unresolved,
    Violation,
    contains_unknown,
    dig,
    is_unknown,
)
from ..podspec import carries_pod_template
from ..rule import Rule, RuleConfig, Severity

NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
NAMESPACE = "kubernetes:core/v1:Namespace"
CHART_TYPES = frozenset({"kubernetes:helm.sh/v4:Chart", "kubernetes:helm.sh/v3:Release"})
PEER_AUTHENTICATION_TYPES = frozenset(
    {
        "kubernetes:security.istio.io/v1:PeerAuthentication",
        "kubernetes:security.istio.io/v1beta1:PeerAuthentication",
    }
)
NAMESPACED_GUARDS = frozenset({NETWORK_POLICY, *PEER_AUTHENTICATION_TYPES})
MESH_CONTROL_PLANE_CHART = "istiod"
DIRECTIONS = ("Ingress", "Egress")


@dataclass
class NamespaceState:
    """What the stack holds for one namespace."""

    workloads: list[ResourceView] = field(default_factory=list)
    denied: set[str] = field(default_factory=set)
    strict_mtls: bool = False
    namespace_object: ResourceView | None = None


def denied_directions(policy: ResourceView) -> set[str]:
    """Directions a NetworkPolicy denies for every pod: empty podSelector, type listed, no rules."""
    spec = policy.props.get("spec")
    if not isinstance(spec, dict):
        return set()
    selector = spec.get("podSelector")
    if not isinstance(selector, dict) or selector.get("matchLabels") or selector.get("matchExpressions"):
        return set()
    types = spec.get("policyTypes")
    types = types if isinstance(types, list) else ["Ingress"]
    return {d for d in DIRECTIONS if d in types and not spec.get(d.lower())}


def is_strict_namespace_mtls(peer_authentication: ResourceView) -> bool:
    spec = peer_authentication.props.get("spec")
    return isinstance(spec, dict) and not spec.get("selector") and dig(spec, "mtls", "mode") == "STRICT"


def _workload_namespace(resource: ResourceView) -> str | Unresolved | None:
    if carries_pod_template(resource.type):
        namespace = dig(resource.props, "metadata", "namespace")
    elif resource.type in CHART_TYPES:
        namespace = resource.props.get("namespace")
    else:
        return None
    if is_unknown(namespace):
        return Unresolved("metadata.namespace", namespace.sentinel, resource)
    return namespace if isinstance(namespace, str) and namespace else "default"


def _installs_mesh_control_plane(resource: ResourceView) -> bool:
    """The mesh is on once the plan installs Istio's control plane, which enforces PeerAuthentication.

    The Mesh phase component alone is not enough: before istiod is installed, the
    PeerAuthentication kind does not exist in the cluster and could not be applied.
    """
    if resource.type not in CHART_TYPES:
        return False
    chart = resource.props.get("chart")
    return isinstance(chart, str) and chart.rstrip("/").rsplit("/", 1)[-1] == MESH_CONTROL_PLANE_CHART


def _first_sentinel(value: object) -> str:
    if is_unknown(value):
        return value.sentinel  # type: ignore[union-attr]
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return next(_first_sentinel(child) for child in children if contains_unknown(child))


def _collect(resources: Sequence[ResourceView]) -> tuple[dict[str, NamespaceState], list[Finding], bool]:
    namespaces: dict[str, NamespaceState] = {}
    unresolved: list[Finding] = []
    mesh_on = False
    for resource in resources:
        mesh_on = mesh_on or _installs_mesh_control_plane(resource)
        workload_ns = _workload_namespace(resource)
        if isinstance(workload_ns, Unresolved):
            unresolved.append(workload_ns)
        elif resource.type in NAMESPACED_GUARDS and contains_unknown(resource.props.get("spec")):
            unresolved.append(Unresolved("spec", _first_sentinel(resource.props.get("spec")), resource))
        elif workload_ns is not None:
            namespaces.setdefault(workload_ns, NamespaceState()).workloads.append(resource)
        elif resource.type == NETWORK_POLICY:
            namespaces.setdefault(str(resource.namespace), NamespaceState()).denied |= denied_directions(resource)
        elif resource.type in PEER_AUTHENTICATION_TYPES and is_strict_namespace_mtls(resource):
            namespaces.setdefault(str(resource.namespace), NamespaceState()).strict_mtls = True
        elif resource.type == NAMESPACE:
            namespaces.setdefault(resource.object_name, NamespaceState()).namespace_object = resource
    return namespaces, unresolved, mesh_on


def check(resources: Sequence[ResourceView], config: RuleConfig) -> Iterator[Finding]:
    namespaces, unresolved, mesh_on = _collect(resources)
    yield from unresolved
    mesh_on = mesh_on or config.get("meshEnabled") is True
    for name, state in sorted(namespaces.items()):
        if not state.workloads:
            continue
        subject = state.namespace_object or state.workloads[0]
        missing = [d for d in DIRECTIONS if d not in state.denied]
        if missing:
            yield Violation(
                f"namespace '{name}' runs workloads but has no default-deny NetworkPolicy for {' and '.join(missing)}",
                subject,
            )
        if mesh_on and not state.strict_mtls:
            yield Violation(
                f"namespace '{name}' runs workloads but has no namespace-wide STRICT PeerAuthentication",
                subject,
            )


RULE = Rule(
    name="default-deny-network-policy",
    description=(
        "Every namespace that runs workloads (pods or Helm charts) has a NetworkPolicy that "
        "selects all pods and denies all ingress and egress; once the plan installs istiod, "
        "it also has a namespace-wide STRICT mTLS PeerAuthentication."
    ),
    severity=Severity.HIGH,
    remediation=(
        "Create the namespace with kit.namespace(...), which adds a default-deny NetworkPolicy "
        "(podSelector: {}, policyTypes: [Ingress, Egress], no rules) and, when the mesh is on, "
        "a STRICT PeerAuthentication; then allow each needed flow with an explicit kit network "
        "policy. A namespace that cannot be meshed needs a waiver on its Namespace object."
    ),
    check_stack=check,
    config_schema={
        "meshEnabled": {
            "type": "boolean",
            "default": False,
            "description": "Require STRICT PeerAuthentication even if the plan installs no istiod chart.",
        },
    },
)
