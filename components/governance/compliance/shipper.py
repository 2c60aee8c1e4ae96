"""The audit shipper (apps/audit-shipper) in the governance namespace: OPA-Envoy's decision logs and the Events
Gatekeeper and Argo CD record, delivered to Core's audit topic (docs/architecture/compliance.md, "The shipper").

A kit Workload like the Agents phase's services (pinned image, UID 10001, read-only root, probes, OTLP), plus
what only the shipper needs:

* the Kubernetes API: a projected token of its own ServiceAccount for the API server's audience
  (``apiAudience``) at :data:`API_TOKEN_DIR`, the cluster CA from the ``kube-root-ca.crt`` ConfigMap every
  namespace holds, a ClusterRole that may ``get``/``list``/``watch`` ``events`` and nothing else, and its egress
  to the API server;
* Kafka as ``audit-producer`` through ``CoreOutputs.kafka_producer`` (files, never environment values);
* the gate's rules (``SOMA_CONSTRAINT_RULES``) from the admission policies, so Gatekeeper's constraints are named
  by the rule the dashboards count;
* OPA-Envoy's pods as its only callers (``POST /logs``); OPA's side of that flow is in mesh/edge/opa.py.
"""
from __future__ import annotations

import json

import pulumi
import pulumi_kubernetes as k8s

from components.core import CoreOutputs
from components.core.certificates import API_SERVER_PORTS
from components.core.secrets.certificate_copy import KUBE_ROOT_CA
from components.governance.compliance.events import constraint_rules
from components.kit import Egress, KitContext, Peer, ServiceAccountToken, Workload, WorkloadArgs, recommended
from components.mesh.edge.opa import NAME as OPA_NAME, SHIPPER_PORT, shipper_url
from components.settings import SHIPPER_APP, AuditShipperSettings

NAME = SHIPPER_APP
API_TOKEN_DIR = "/var/run/secrets/kubernetes-api"
CA_DIR = "/var/run/secrets/kubernetes-ca"
OPA_PODS = {"app.kubernetes.io/name": OPA_NAME}
"""OPA-Envoy's pods, selected by the name the kit labels them with."""
EVENT_RULES = [{"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]}]


class AuditShipper(pulumi.ComponentResource):
    def __init__(self, settings: AuditShipperSettings, namespace: str, ctx: KitContext, core: CoreOutputs,
                 opa_namespace: str | None, after: list[pulumi.Resource], opts: pulumi.ResourceOptions | None = None):
        super().__init__("somaagenthub:governance:AuditShipper", NAME, None, opts)
        if core.secrets is None:
            raise ValueError("the audit shipper needs Core's Vault (core.vault.configure true) for its Kafka credentials")
        # the first-party services' conventions (imported here: components.agents imports this phase's package)
        from components.agents.services import SHUTDOWN_GRACE_SECONDS, UID, audit_wiring, common_env

        child = pulumi.ResourceOptions(parent=self, depends_on=after)
        env = common_env(NAME, ctx.catalog.app_image(NAME).tag, ctx)
        env.update({
            "SOMA_HTTP_PORT": str(SHIPPER_PORT),
            "SOMA_CONSTRAINT_RULES": json.dumps(constraint_rules(), sort_keys=True),
            "SOMA_KUBERNETES_TOKEN_FILE": f"{API_TOKEN_DIR}/token",
            "SOMA_KUBERNETES_CA_FILE": f"{CA_DIR}/ca.crt",
        })
        audit = audit_wiring(core, NAME, namespace, after, self)
        env.update(audit.env)
        callers = (Peer(namespace=opa_namespace, pods=OPA_PODS),) if opa_namespace else ()
        self.workload = Workload(WorkloadArgs(
            name=NAME, namespace=namespace, component="audit-shipper", image=NAME, app_image=True, port=SHIPPER_PORT,
            resources=settings.resources, replicas=1, run_as_user=UID, env=env, secret_files=audit.files,
            token=ServiceAccountToken(audience=settings.api_audience, path=API_TOKEN_DIR),
            config_maps=((KUBE_ROOT_CA, CA_DIR),), callers=callers,
            egress=(Egress(to=Peer(cidr=core.api_server_cidr), ports=API_SERVER_PORTS), *audit.egress), pod_labels=audit.labels,
            termination_grace_seconds=SHUTDOWN_GRACE_SECONDS + 10,
            metrics="otlp",  # soma_service pushes its metrics to the collector, as the agents services (services.METRICS)
        ), ctx, child)
        role = f"soma-{NAME}-events"
        self.cluster_role = k8s.rbac.v1.ClusterRole(
            role, metadata={"name": role, "labels": recommended(NAME, "audit-shipper")}, rules=EVENT_RULES, opts=child)
        self.binding = k8s.rbac.v1.ClusterRoleBinding(
            role, metadata={"name": role, "labels": recommended(NAME, "audit-shipper")},
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            subjects=[{"kind": "ServiceAccount", "name": NAME, "namespace": namespace}],
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[self.cluster_role])))
        self.url = shipper_url(namespace)
        self.register_outputs({"url": self.url})
