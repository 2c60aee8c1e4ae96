"""Registry-only egress: every destination outside the cluster is declared once, in ``mesh.istio.egress``.

Ambient mode has no ``outboundTrafficPolicy: REGISTRY_ONLY`` at ztunnel (it applies to sidecars and
waypoints only), so refusing undeclared destinations stays with the default-deny NetworkPolicies of
every namespace. Each declared destination produces both layers from the one entry: a ServiceEntry
(``MESH_EXTERNAL``, its hosts, ports and protocol, exported to the namespaces that may use it), which
makes the host known to the mesh (and to a waypoint's routing), and one egress NetworkPolicy per using
namespace, opening exactly its CIDRs and ports. Nothing else leaves the cluster from those namespaces.

When each is made. The ServiceEntries live in the mesh's root namespace and are made with the Mesh
phase (:func:`service_entries`). The NetworkPolicies live in the using namespaces, and a destination
may be used by a later phase's namespace (Argo CD's ``governance.gitops``): they are made after the
last phase (:func:`egress_policies`, from ``Istio.authorize``), each waiting for its namespace, so a
first ``pulumi up`` on an empty cluster never creates one before its namespace exists.
"""
from __future__ import annotations

from typing import Mapping

import pulumi

from components.kit import custom_resource, recommended
from components.kit.network import Flow, FlowLedger, FlowRule, flow_policy, tcp
from components.settings import EgressDestination

PROTOCOL_PORT_NAMES = {"TLS": "tls", "HTTPS": "https", "TCP": "tcp"}


def service_entry_spec(destination: EgressDestination, namespaces: list[str]) -> dict:
    return {
        "hosts": list(destination.hosts),
        "location": "MESH_EXTERNAL",
        "resolution": "DNS",
        "exportTo": sorted(set(namespaces)),
        "ports": [{"number": port, "name": f"{PROTOCOL_PORT_NAMES[destination.protocol]}-{port}", "protocol": destination.protocol}
                  for port in destination.ports],
    }


def pod_selector(destination: EgressDestination) -> dict:
    """``pods`` as matchLabels; ``podsIn`` (label -> allowed values) as ``In`` expressions, for a destination
    several kinds of pod use (Argo CD's controller and API server reach the other clusters)."""
    selector: dict = {"matchLabels": dict(destination.pods)}
    if destination.pods_in:
        selector["matchExpressions"] = [{"key": k, "operator": "In", "values": list(v)} for k, v in sorted(destination.pods_in.items())]
    return selector


def egress_flow(name: str, destination: EgressDestination) -> Flow:
    return Flow(f"egress-{name}", "Egress", pod_selector(destination),
                (FlowRule(tuple({"ipBlock": {"cidr": c}} for c in destination.cidrs), tcp(*destination.ports)),),
                f"declared egress {name} ({', '.join(destination.hosts)}): {destination.reason}")


def service_entries(egress: Mapping[str, EgressDestination], namespace_of: Mapping[str, str], root_namespace: str,
                    entry_opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
    """One ServiceEntry per destination, in the mesh's root namespace, exported to the namespaces that use it."""
    return [custom_resource("networking.istio.io/v1", "ServiceEntry", f"egress-{name}", root_namespace,
                            spec=service_entry_spec(destination, [namespace_of[k] for k in destination.namespaces]), opts=entry_opts,
                            labels=recommended(f"egress-{name}", "service-entry"))
            for name, destination in sorted(egress.items())]


def egress_policies(egress: Mapping[str, EgressDestination], namespace_of: Mapping[str, str], ledger: FlowLedger,
                    namespaces: Mapping[str, pulumi.Resource], parent: pulumi.Resource) -> list[pulumi.Resource]:
    """One egress NetworkPolicy per destination and using namespace, each waiting for its Namespace; recorded
    in the flow ledger like every flow. A namespace no enabled phase made (``namespaces`` lacks it) gets none:
    nothing runs there to reach out."""
    made: list[pulumi.Resource] = []
    for name, destination in sorted(egress.items()):
        for namespace in sorted({namespace_of[k] for k in destination.namespaces}):
            if namespace not in namespaces:
                continue
            opts = pulumi.ResourceOptions(parent=parent, depends_on=[namespaces[namespace]])
            made.append(flow_policy(namespace, egress_flow(name, destination), opts, ledger))
    return made
