"""OPA with the Envoy ext-authz plugin: the authorization service every public request is checked by.

The official ``openpolicyagent/opa:<version>-envoy`` image (opa-envoy-plugin; its Dockerfile sets
``USER 1000:1000``), run with the kit workload: non-root, read-only root, limits, probes, scraped.
It loads the Rego policy of ``rego/authz.rego`` and the route table (``data.soma.edge.routes``)
generated from the same settings as the HTTPRoutes, both from ConfigMaps. Decision logs go to the
console (stdout), which the node log agent ships to Loki (components/core/observability/node_logs.py);
each entry carries its ``decision_id``. With the audit shipper on (governance.compliance.shipper), OPA also
uploads them to it (``decision_logs.service``), which maps them to audit events.

Ports: 9191 the ext-authz gRPC server (the ``opa-ext-authz`` Service, for the Envoy proxies only),
8282 the diagnostic address (/health, /metrics), the REST API on loopback only (nothing outside the
pod can query or change policy).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import pulumi
import pulumi_kubernetes as k8s

from components.kit import Egress, KitContext, Peer, Workload, WorkloadArgs, allow_ingress, recommended, selector
from components.mesh.edge.routes import route_table
from components.settings import SHIPPER_APP, EdgeSettings, PlatformSettings

NAME = "opa-ext-authz"
IMAGE = "opa-envoy"
UID = 1000
GRPC_PORT = 9191
DIAGNOSTIC_PORT = 8282
REGO = Path(__file__).with_name("rego") / "authz.rego"
DECISION = "soma/edge/authz/result"
PROXY_LABELS = {"app.kubernetes.io/name": "envoy", "app.kubernetes.io/component": "proxy",
                "app.kubernetes.io/managed-by": "envoy-gateway"}


@dataclass(frozen=True)
class DecisionLogService:
    """Where OPA uploads its decision logs besides the console: the audit shipper's Service and pods."""

    name: str
    url: str
    namespace: str
    pods: Mapping[str, str]
    port: int


SHIPPER_PORT = 8080
"""The audit shipper's HTTP port (the service base's, as every app's: components/agents/services.py PORT)."""


def shipper_url(namespace: str) -> str:
    return f"http://{SHIPPER_APP}.{namespace}.svc.cluster.local:{SHIPPER_PORT}"


def decision_log_service(platform: PlatformSettings) -> DecisionLogService | None:
    """OPA-Envoy's upload target when the stack runs the audit shipper (governance.compliance.shipper). The Mesh
    phase is built before Governance, so it is derived from the settings (the shipper's fixed Service name in the
    governance namespace), not from a Governance output."""
    compliance = platform.governance.compliance
    shipper = compliance.shipper if compliance else None
    if not (platform.phases.governance and shipper and shipper.enabled and "governance" in platform.governance.namespaces):
        return None
    namespace = platform.governance.namespaces["governance"].name
    return DecisionLogService(SHIPPER_APP, shipper_url(namespace), namespace, selector(SHIPPER_APP), SHIPPER_PORT)


UPLOAD_DELAY_SECONDS = (5, 10)
"""OPA uploads every 300-600 s by default; the compliance alerts look at 15-minute windows."""


def opa_config(decision_logs: DecisionLogService | None = None) -> dict:
    """OPA's configuration (opa-envoy-plugin README, "Configuration"): the gRPC server, the decision
    path, console decision logs, and with ``decision_logs`` an upload to that service (OPA's configuration
    reference: ``services``, ``decision_logs.service``, ``decision_logs.reporting``)."""
    config = {
        "plugins": {"envoy_ext_authz_grpc": {"addr": f":{GRPC_PORT}", "path": DECISION, "dry-run": False,
                                             "enable-reflection": False}},
        "decision_logs": {"console": True},
    }
    if decision_logs is not None:
        low, high = UPLOAD_DELAY_SECONDS
        config["services"] = {decision_logs.name: {"url": decision_logs.url}}
        config["decision_logs"] = {"console": True, "service": decision_logs.name,
                                   "reporting": {"min_delay_seconds": low, "max_delay_seconds": high}}
    return config


class OpaExtAuthz(pulumi.ComponentResource):
    def __init__(self, settings: EdgeSettings, domain: str, namespace: str, gateway_ns: str, ctx: KitContext,
                 opts: pulumi.ResourceOptions | None = None, decision_logs: DecisionLogService | None = None):
        super().__init__("somaagenthub:mesh:OpaExtAuthz", NAME, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.route_table = route_table(settings, domain)
        self.config_map = k8s.core.v1.ConfigMap(
            f"{namespace}-{NAME}-policy",
            metadata={"name": f"{NAME}-policy", "namespace": namespace, "labels": recommended(NAME, "policy")},
            data={"authz.rego": REGO.read_text(), "routes.json": json.dumps(self.route_table, indent=2, sort_keys=True),
                  "config.yaml": json.dumps(opa_config(decision_logs), indent=2, sort_keys=True)},
            opts=child,
        )
        self.workload = Workload(WorkloadArgs(
            name=NAME, namespace=namespace, component="authorization", image=IMAGE,
            port=DIAGNOSTIC_PORT, metrics_port=9464, metrics_on_service_port=True,
            health_path="/health", ready_path="/health?plugins",
            resources=settings.opa_resources, replicas=settings.opa_replicas, run_as_user=UID,
            args=("run", "--server", "--addr=localhost:8181", f"--diagnostic-addr=0.0.0.0:{DIAGNOSTIC_PORT}",
                  "--config-file=/config/config.yaml", "--log-format=json",
                  "/config/authz.rego", "soma.edge:/config/routes.json"),
            config_maps=((f"{NAME}-policy", "/config"),),
            egress=((Egress(to=Peer(namespace=decision_logs.namespace, pods=dict(decision_logs.pods)), ports=(decision_logs.port,)),)
                    if decision_logs else ()),
        ), ctx, pulumi.ResourceOptions(parent=self, depends_on=[self.config_map]))
        self.service = k8s.core.v1.Service(
            f"{namespace}-{NAME}-grpc",
            metadata={"name": NAME + "-grpc", "namespace": namespace, "labels": recommended(NAME, "authorization")},
            spec={"type": "ClusterIP", "selector": {"app.kubernetes.io/name": NAME},
                  "ports": [{"name": "grpc", "port": GRPC_PORT, "targetPort": GRPC_PORT, "protocol": "TCP",
                             "appProtocol": "kubernetes.io/h2c"}]},
            opts=child,
        )
        self.service_name = NAME + "-grpc"
        self.port = GRPC_PORT
        self.from_proxies = allow_ingress(f"{NAME}-from-envoy-proxies", namespace, {"app.kubernetes.io/name": NAME},
                                          [Peer(namespace=gateway_ns, pods=PROXY_LABELS)], [GRPC_PORT], child, ledger=ctx.flows)
        self.register_outputs({"service": self.service_name})
