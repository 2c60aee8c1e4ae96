"""Qdrant from its official chart: unprivileged, persistent, API key from Vault.

The API key reaches the pod as ``QDRANT__SERVICE__API_KEY`` from the ESO-managed Secret
(the chart's ``env`` list passes ``valueFrom``), not through the chart's ``apiKey`` value,
which would copy the key into a chart-rendered Secret. Values keys read from qdrant/qdrant-helm
charts/qdrant/values.yaml and templates/statefulset.yaml.
"""
from __future__ import annotations

import pulumi

from components.core.data.common import StoreContext, client_peer
from components.kit.security import anti_affinity, container_security_context, resource_requirements
from components.kit import Peer, allow_egress, allow_ingress, helm_chart, pod_monitor

NAME = "qdrant"
HTTP_PORT, GRPC_PORT, P2P_PORT = 6333, 6334, 6335
CLIENT_PHASES = ("agents",)
"""The memory gateway (agents) is Qdrant's one client; its namespace is the only one admitted."""
POD_LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/instance": NAME}
UID, GID, FS_GROUP = 1000, 2000, 3000


def chart_values(stores: StoreContext, api_key_secret: str) -> dict:
    s = stores.settings.qdrant
    image = stores.ctx.catalog.image("qdrant")
    replicas = s.replicas
    return {
        "replicaCount": replicas,
        "image": {"repository": image.name, "tag": image.tag_at_digest, "pullPolicy": "IfNotPresent", "useUnprivilegedImage": False},
        "env": [{"name": "QDRANT__SERVICE__API_KEY", "valueFrom": {"secretKeyRef": {"name": api_key_secret, "key": "api-key"}}}],
        "apiKey": False,
        "resources": resource_requirements(s.resources),
        "persistence": {"accessModes": ["ReadWriteOnce"], "size": s.storage, "storageClassName": stores.ctx.storage_class},
        "podSecurityContext": {"runAsNonRoot": True, "fsGroup": FS_GROUP, "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"}},
        "containerSecurityContext": {**container_security_context(uid=UID), "runAsGroup": GID},
        "updateVolumeFsOwnership": False,
        # Probes on the gRPC port: the chart's HTTP readiness probe picks its path with
        # semverCompare over image.tag, which fails on our "<tag>@sha256:<digest>" reference.
        "service": {"ports": [
            {"name": "http", "port": HTTP_PORT, "targetPort": HTTP_PORT, "protocol": "TCP", "checksEnabled": False},
            {"name": "grpc", "port": GRPC_PORT, "targetPort": GRPC_PORT, "protocol": "TCP", "checksEnabled": True},
            {"name": "p2p", "port": P2P_PORT, "targetPort": P2P_PORT, "protocol": "TCP", "checksEnabled": False},
        ]},
        "config": {"cluster": {"enabled": replicas > 1, "p2p": {"port": P2P_PORT}}},
        "podDisruptionBudget": {"enabled": replicas > 1, "maxUnavailable": 1},
        "affinity": anti_affinity(POD_LABELS, stores.ctx.high_availability) if replicas > 1 else {},
        # Off on purpose: the chart's ServiceMonitor authenticates only when the chart itself holds
        # the API key (templates/servicemonitor.yaml), and /metrics needs it (qdrant/qdrant#1980).
        # The PodMonitor in QdrantStore sends the key from the ESO-managed Secret instead.
        "metrics": {"serviceMonitor": {"enabled": False}},
    }


class QdrantStore:
    def __init__(self, stores: StoreContext, opts: pulumi.ResourceOptions):
        ns = stores.data_ns
        secrets = stores.secrets
        self.api_key = secrets.grant(NAME, ns, NAME, "api-key", {"api-key": secrets.password("qdrant-api-key", 48)})
        self.chart = helm_chart(NAME, "qdrant", ns, chart_values(stores, self.api_key.name), stores.ctx, stores.ctx.keep(opts))
        self.address = f"http://{NAME}.{ns}.svc.cluster.local:{HTTP_PORT}"
        # Container port "http" comes from the chart's service.ports (templates/statefulset.yaml).
        self.monitor = pod_monitor(
            NAME, ns, POD_LABELS,
            [{"port": "http", "path": "/metrics", "interval": "30s",
              "authorization": {"type": "Bearer", "credentials": {"name": self.api_key.name, "key": "api-key"}}}],
            stores.ctx, opts,
        )
        peers = Peer(namespace=ns, pods=POD_LABELS)
        self.network_policies = [
            allow_ingress("qdrant-from-clients", ns, POD_LABELS,
                          [client_peer("qdrant", [getattr(stores.clients, p) for p in CLIENT_PHASES])], [HTTP_PORT, GRPC_PORT], opts),
            allow_ingress("qdrant-metrics-scrape", ns, POD_LABELS, [stores.prometheus], [HTTP_PORT], opts),
            allow_ingress("qdrant-from-peers", ns, POD_LABELS, [peers], [P2P_PORT, HTTP_PORT], opts),
            allow_egress("qdrant-to-peers", ns, POD_LABELS, [peers], [P2P_PORT, HTTP_PORT], opts),
        ]
