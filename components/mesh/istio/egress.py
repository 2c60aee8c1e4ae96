"""Registry-only egress: every destination outside the cluster is declared once, in ``mesh.istio.egress``.

Ambient mode has no ``outboundTrafficPolicy: REGISTRY_ONLY`` at ztunnel (it applies to sidecars and
waypoints only), so refusing undeclared destinations stays with the default-deny NetworkPolicies of
every namespace. Each declared destination produces both layers from the one entry: a ServiceEntry
(``MESH_EXTERNAL``, its hosts, ports and protocol, exported to the namespaces that may use it), which
makes the host known to the mesh (and to a waypoint's routing), and one egress NetworkPolicy per using
namespace, opening exactly its CIDRs and ports. Nothing else leaves the cluster from those namespaces.
"""
from __future__ import annotations

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


def egress_flow(name: str, destination: EgressDestination) -> Flow:
    return Flow(f"egress-{name}", "Egress", {"matchLabels": dict(destination.pods)},
                (FlowRule(tuple({"ipBlock": {"cidr": c}} for c in destination.cidrs), tcp(*destination.ports)),),
                f"declared egress {name} ({', '.join(destination.hosts)}): {destination.reason}")


def declared_egress(egress: dict[str, EgressDestination], namespace_of: dict[str, str], root_namespace: str,
                    ledger: FlowLedger, opts: pulumi.ResourceOptions, entry_opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
    """One ServiceEntry (in the mesh's root namespace) and one egress NetworkPolicy per using namespace, per destination."""
    made: list[pulumi.Resource] = []
    for name, destination in sorted(egress.items()):
        namespaces = [namespace_of[k] for k in destination.namespaces]
        made.append(custom_resource("networking.istio.io/v1", "ServiceEntry", f"egress-{name}", root_namespace,
                                    spec=service_entry_spec(destination, namespaces), opts=entry_opts,
                                    labels=recommended(f"egress-{name}", "service-entry")))
        made += [flow_policy(namespace, egress_flow(name, destination), opts, ledger) for namespace in namespaces]
    return made
