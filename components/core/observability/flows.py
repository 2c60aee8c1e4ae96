"""The observability namespace's NetworkPolicies: exactly the telemetry flows, nothing else.

The namespace starts from default-deny (kit namespace). Each policy below opens one named flow
and says why in its ``somaagenthub.io/flow`` annotation, so ``kubectl get netpol`` reads as the
list of permitted flows:

* workloads of every namespace -> collector (OTLP gRPC/HTTP);
* collector -> Prometheus (OTLP receiver), Loki (OTLP), Tempo (OTLP gRPC);
* the node log agent (its own namespace, node_logs.py) -> Loki (OTLP);
* Grafana -> Prometheus, Loki, Tempo (queries), and its database on the platform's PostgreSQL;
* Prometheus -> its scrape targets on their metrics ports only (Core's targets by namespace, pods
  and port as scrape_targets.py lists them, every namespace on the kit workloads' metrics port),
  the kubelets, and Alertmanager;
* Alertmanager -> each alert receiver's address range, on its port (stack settings);
* the backends' own clustering (Loki memberlist/gRPC, Alertmanager gossip) and their object store
  (the object store's pods by their kit selector: ClickHouse shares MinIO's port 9000);
* the few pods that watch the Kubernetes API (operator, kube-state-metrics, Prometheus service
  discovery, Grafana's dashboard sidecar) -> the API server.

The API server and the kubelets run on the host network, so no pod or namespace selector can
name them; they are reached by port on the stack's ``core.apiServerCidr`` and ``core.nodeCidr``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.core.interfaces import DatabaseAccess
from components.core.observability import topology as t
from components.core.observability.scrape_targets import KIT_METRICS_PORT, OBSERVABILITY_PORTS, Scraped
from components.core.observability.topology import ObjectStoreAddress
from components.kit.labels import selector
from components.kit.network import NAMESPACE_NAME_LABEL, Flow, FlowLedger, FlowRule, Peer, flow_policy, in_namespaces, tcp
from components.settings import ReceiverSettings

EXTERNAL = "0.0.0.0/0"
API_WATCHERS = ("operator", "kube-state-metrics", "prometheus", "grafana")


@dataclass(frozen=True)
class HostNetworks:
    """Where the host-network peers live: the API server and the kubelets (stack settings)."""

    api_server_cidr: str
    node_cidr: str


def component(name: str) -> dict:
    """Pods of one component in the observability namespace itself."""
    return {"podSelector": {"matchLabels": t.pods(name)}}


def every_namespace() -> dict:
    return {"namespaceSelector": {}}


def cidr(block: str) -> dict:
    return {"ipBlock": {"cidr": block}}


def in_namespace(name: str | None, pods: dict[str, str]) -> dict:
    """The pods ``pods`` selects (all, when empty) in the namespace ``name`` (None: the policy's own)."""
    peer: dict = {"podSelector": {"matchLabels": dict(pods)} if pods else {}}
    if name is not None:
        peer["namespaceSelector"] = {"matchLabels": {NAMESPACE_NAME_LABEL: name}}
    return peer


def object_store(address: ObjectStoreAddress) -> dict:
    """The bucket's endpoint: the object store's own pods when in-cluster; an external endpoint has no known address.

    In-cluster, the store is a kit workload whose Service carries its name (``minio``), so its pods
    wear the kit selector of that name; any pod of the namespace would include ClickHouse, whose
    native protocol listens on the same port 9000.
    """
    if address.namespace is None:
        return cidr(EXTERNAL)
    service = address.host.split(".")[0]
    return in_namespace(address.namespace, selector(service))


def selects(name: str) -> dict:
    return {"matchLabels": t.pods(name)}


def scrape_rules(scraped: Sequence[Scraped]) -> tuple[FlowRule, ...]:
    """One rule per scrape target (its pods, its metrics ports), and every namespace on the kit's metrics port."""
    return (
        *(FlowRule((in_namespace(target.namespace, target.pods),), tcp(*target.ports)) for target in scraped),
        FlowRule((every_namespace(),), tcp(KIT_METRICS_PORT)),
    )


def telemetry_flows(
    loki_store: ObjectStoreAddress, tempo_store: ObjectStoreAddress, hosts: HostNetworks, scraped: Sequence[Scraped],
    workload_namespaces: Sequence[str], grafana_database: DatabaseAccess, receivers: Mapping[str, ReceiverSettings],
    node_log_agent: Peer | None = None,
) -> list[Flow]:
    """``scraped``: Core's scrape targets for this stack (scrape_targets.core_targets);
    ``workload_namespaces``: the namespaces where workloads run, the only senders of telemetry;
    ``grafana_database``: the PostgreSQL instances Grafana keeps its state in; ``receivers``: the
    alert receivers Alertmanager notifies, each on its own address range and port;
    ``node_log_agent``: the node log agent's pods in their namespace, when the stack runs it."""
    watchers = {"matchExpressions": [{"key": t.NAME_LABEL, "operator": "In", "values": [t.POD_NAMES[c] for c in API_WATCHERS]}]}
    from_agent = [] if node_log_agent is None else [
        Flow("loki-from-node-log-agent", "Ingress", selects("loki"),
             (FlowRule((node_log_agent.as_rule(),), tcp(t.LOKI_HTTP)),),
             "OTLP logs pushed by the node log agent: what every container prints on every node"),
    ]
    return [
        *from_agent,
        Flow("collector-from-workloads", "Ingress", selects("collector"),
             (FlowRule(({"namespaceSelector": in_namespaces(workload_namespaces), "podSelector": {}},),
                       tcp(t.OTLP_GRPC, t.OTLP_HTTP)),),
             "every workload of the platform's namespaces sends traces, metrics and logs over OTLP to the collector"),
        Flow("collector-to-backends", "Egress", selects("collector"),
             (FlowRule((component("prometheus"),), tcp(t.PROMETHEUS_WEB)),
              FlowRule((component("loki"),), tcp(t.LOKI_HTTP)),
              FlowRule((component("tempo"),), tcp(t.OTLP_GRPC))),
             "the collector exports metrics to Prometheus, logs to Loki, traces to Tempo"),
        Flow("prometheus-from-collector", "Ingress", selects("prometheus"),
             (FlowRule((component("collector"),), tcp(t.PROMETHEUS_WEB)),),
             "OTLP metrics pushed by the collector"),
        Flow("loki-from-collector", "Ingress", selects("loki"),
             (FlowRule((component("collector"),), tcp(t.LOKI_HTTP)),),
             "OTLP logs pushed by the collector"),
        Flow("tempo-from-collector", "Ingress", selects("tempo"),
             (FlowRule((component("collector"),), tcp(t.OTLP_GRPC)),),
             "OTLP traces pushed by the collector"),
        Flow("grafana-to-backends", "Egress", selects("grafana"),
             (FlowRule((component("prometheus"),), tcp(t.PROMETHEUS_WEB)),
              FlowRule((component("loki"),), tcp(t.LOKI_HTTP)),
              FlowRule((component("tempo"),), tcp(t.TEMPO_HTTP))),
             "Grafana queries its three data sources"),
        Flow("grafana-to-postgres", "Egress", selects("grafana"),
             (FlowRule((in_namespace(grafana_database.namespace, grafana_database.pods),), tcp(grafana_database.port)),),
             "Grafana keeps users, sessions and preferences in its database on the platform's PostgreSQL"),
        Flow("prometheus-from-grafana", "Ingress", selects("prometheus"),
             (FlowRule((component("grafana"),), tcp(t.PROMETHEUS_WEB)),),
             "PromQL queries from Grafana"),
        Flow("loki-from-grafana", "Ingress", selects("loki"),
             (FlowRule((component("grafana"),), tcp(t.LOKI_HTTP)),),
             "LogQL queries from Grafana"),
        Flow("tempo-from-grafana", "Ingress", selects("tempo"),
             (FlowRule((component("grafana"),), tcp(t.TEMPO_HTTP)),),
             "TraceQL queries from Grafana"),
        Flow("prometheus-scrape", "Egress", selects("prometheus"),
             (*scrape_rules(scraped),
              FlowRule((cidr(hosts.node_cidr),), tcp(t.KUBELET))),
             "Prometheus scrapes its targets on their metrics ports only (Core's by namespace, pods and port, kit "
             "workloads' in every namespace) and the kubelets, and sends alerts to Alertmanager"),
        Flow("metrics-from-prometheus", "Ingress", {},
             (FlowRule((component("prometheus"),), tcp(*OBSERVABILITY_PORTS)),),
             "Prometheus scrapes the observability components' own metrics ports and delivers alerts to Alertmanager"),
        Flow("alertmanager-cluster", "Ingress", selects("alertmanager"),
             (FlowRule((component("alertmanager"),), ((t.ALERTMANAGER_CLUSTER, "TCP"), (t.ALERTMANAGER_CLUSTER, "UDP"))),),
             "Alertmanager replicas gossip to deduplicate notifications"),
        Flow("alertmanager-cluster-peers", "Egress", selects("alertmanager"),
             (FlowRule((component("alertmanager"),), ((t.ALERTMANAGER_CLUSTER, "TCP"), (t.ALERTMANAGER_CLUSTER, "UDP"))),),
             "Alertmanager replicas gossip to deduplicate notifications"),
        Flow("loki-cluster", "Ingress", selects("loki"),
             (FlowRule((component("loki"),), tcp(t.LOKI_HTTP, t.STORE_GRPC, t.MEMBERLIST)),),
             "Loki targets share a memberlist ring and call each other over gRPC"),
        Flow("loki-cluster-and-store", "Egress", selects("loki"),
             (FlowRule((component("loki"),), tcp(t.LOKI_HTTP, t.STORE_GRPC, t.MEMBERLIST)),
              FlowRule((object_store(loki_store),), tcp(loki_store.port))),
             "Loki targets call each other and keep chunks and index in the loki bucket"),
        Flow("tempo-store", "Egress", selects("tempo"),
             (FlowRule((object_store(tempo_store),), tcp(tempo_store.port)),),
             "Tempo keeps trace blocks in the tempo bucket"),
        *(Flow(f"alertmanager-to-{name}", "Egress", selects("alertmanager"),
               (FlowRule((cidr(receiver.egress_cidr),), tcp(receiver.egress_port)),),
               f"Alertmanager notifies the {receiver.type} receiver {name}")
          for name, receiver in sorted(receivers.items())),
        Flow("kubernetes-api", "Egress", watchers,
             (FlowRule((cidr(hosts.api_server_cidr),), tcp(*t.KUBERNETES_API)),),
             "the operator, kube-state-metrics, Prometheus service discovery and Grafana's dashboard sidecar watch the API"),
    ]


def network_policies(namespace: str, flows: list[Flow], opts: pulumi.ResourceOptions,
                     ledger: FlowLedger | None = None) -> list[k8s.networking.v1.NetworkPolicy]:
    return [flow_policy(namespace, flow, opts, ledger) for flow in flows]


def clickhouse_flows(clickhouse, plugin_source) -> list[Flow]:
    """Grafana's ClickHouse data source (the compliance part, docs/architecture/compliance.md): its queries to
    ClickHouse (whose ``clickhouse-from-clients`` admits Grafana by the client label), the pinned plugin's one
    download (the init container shares the pod's policy: ``pluginSource.cidr`` on its port, nowhere else), and
    Grafana-managed alerts delivered to the platform Alertmanager."""
    return [
        Flow("grafana-to-clickhouse", "Egress", selects("grafana"),
             (FlowRule((in_namespace(clickhouse.namespace, clickhouse.pods),), tcp(clickhouse.port)),),
             "Grafana's ClickHouse data source queries the audit events (and cost allocations) as the read-only grafana user"),
        Flow("grafana-to-plugin-source", "Egress", selects("grafana"),
             (FlowRule((cidr(plugin_source.cidr),), tcp(plugin_source.port)),),
             f"Grafana's init container fetches the pinned ClickHouse plugin zip (sha256 checked before unpacking): "
             f"{plugin_source.why}".strip()),
        Flow("grafana-to-alertmanager", "Egress", selects("grafana"),
             (FlowRule((component("alertmanager"),), tcp(t.ALERTMANAGER_WEB)),),
             "Grafana-managed alerts (compliance, cost) are sent to the platform Alertmanager"),
        Flow("alertmanager-from-grafana", "Ingress", selects("alertmanager"),
             (FlowRule((component("grafana"),), tcp(t.ALERTMANAGER_WEB)),),
             "Grafana-managed alerts (compliance, cost) delivered by Grafana"),
    ]
