"""Prometheus in the mesh, pod by pod, so it can scrape in-mesh pods under STRICT mTLS.

Prometheus (Core's observability namespace, outside the mesh) scrapes pods directly. An in-mesh pod's
ztunnel refuses plaintext under STRICT, so without this every in-mesh workload (OPA, Envoy Gateway,
the first-party services) would be unscrapeable. The Prometheus pods alone are enrolled in ambient:
Core's kube-prometheus-stack values put ``istio.io/dataplane-mode: ambient`` in
``prometheus.prometheusSpec.podMetadata.labels`` when the mesh is on (components/core/observability/
prometheus.py); the chart copies ``podMetadata`` into the Prometheus CR (templates/prometheus/
prometheus.yaml) and the operator copies its labels onto the pods (prometheus-operator v0.93.0
pkg/prometheus/promcfg.go ``BuildPodMetadata``, used by pkg/prometheus/server/statefulset.go). A pod
label enrols a single pod in ambient (istio.io/latest/docs/ambient/usage/add-workloads).

Then, with the scraper's own identity (``<trust domain>/ns/<observability>/sa/<prometheus sa>``):

* to an in-mesh pod, ztunnel carries the scrape over HBONE to the pod's 15008; the pod's ztunnel
  checks the AuthorizationPolicy made from its ``*-metrics-scrape`` flow, whose source is the
  observability namespace. NetworkPolicies: this module opens Prometheus' egress to 15008 of the
  members' pods; each member's ``mesh-hbone-in`` admits 15008 from the Prometheus pods
  (components/kit/network.py ``mesh_transport``, from ``MeshMembership.enrolled_pods``).
* to a pod outside the mesh, ztunnel sends plain TCP to the pod's own address and port
  (istio/ztunnel 1.30.2 src/proxy/outbound.rs ``build_request``: a destination workload whose
  protocol is TCP, i.e. not captured, gets ``OutboundProtocol::TCP`` to its socket address; an
  address ztunnel does not know is sent "as passthrough"), so the existing scrape NetworkPolicies
  still apply and scraping out-of-mesh pods keeps working.

Inbound: Grafana, the collector and Alertmanager (outside the mesh) call Prometheus in plaintext; a
namespace PeerAuthentication PERMISSIVE in the observability namespace lets ztunnel accept them,
overriding the mesh-wide STRICT for that namespace only (Istio's policy precedence: namespace over
the root namespace). The kubelet's probes of an ambient pod arrive from the probe SNAT address.
"""
from __future__ import annotations

import pulumi

from components.kit import KitContext, Peer, custom_resource, recommended
from components.kit.network import (HBONE_PORT, MESH_TRANSPORT_LABEL, NAMESPACE_NAME_LABEL, PROBE_SNAT, PROMETHEUS_PODS, Flow,
                                    FlowRule, flow_policy, tcp)

AMBIENT_LABEL = {"istio.io/dataplane-mode": "ambient"}


def enrolled_scraper(ctx: KitContext, scraper_namespace: str) -> bool:
    """Whether Prometheus is in the mesh pod by pod (its namespace is not a member)."""
    return any(namespace == scraper_namespace for namespace, _ in ctx.mesh.enrolled_pods)


def scraper_in_mesh(ctx: KitContext, scraper_namespace: str, opts: pulumi.ResourceOptions,
                    after_crds: pulumi.ResourceOptions) -> list[pulumi.Resource]:
    """PERMISSIVE for the observability namespace, Prometheus' HBONE egress and its probes."""
    if not enrolled_scraper(ctx, scraper_namespace):
        return []
    members = {"matchExpressions": [{"key": NAMESPACE_NAME_LABEL, "operator": "In", "values": sorted(ctx.mesh.members)}]}
    transport = {MESH_TRANSPORT_LABEL: "true"}
    return [
        custom_resource("security.istio.io/v1", "PeerAuthentication", "permissive-mtls", scraper_namespace, opts=after_crds,
                        spec={"mtls": {"mode": "PERMISSIVE"}}, labels=recommended("permissive-mtls", "peer-authentication"),
                        annotations={"somaagenthub.io/why": "only Prometheus is in the mesh here; Grafana, the collector and "
                                                            "Alertmanager call it in plaintext from outside the mesh"}),
        flow_policy(scraper_namespace, Flow("prometheus-hbone-out", "Egress", {"matchLabels": dict(PROMETHEUS_PODS)},
                                            (FlowRule(({"namespaceSelector": members, "podSelector": {}},), tcp(HBONE_PORT)),),
                                            "Prometheus scrapes in-mesh pods through ztunnel, over HBONE to their 15008"),
                    opts, labels=transport),
        flow_policy(scraper_namespace, Flow("prometheus-mesh-probes", "Ingress", {"matchLabels": dict(PROMETHEUS_PODS)},
                                            (FlowRule((Peer(cidr=PROBE_SNAT).as_rule(),)),),
                                            "the kubelet's probes of the ambient Prometheus pods, rewritten to the probe SNAT address"),
                    opts, labels=transport),
    ]
