"""Tempo: traces from the collector over OTLP, blocks in a MinIO bucket.

One single-binary Tempo (the monolithic ``tempo`` chart): its replicas would not coordinate (no
shared ring: each compacts the bucket on its own and keeps its recent traces to itself), so the
settings refuse ``mode: scalable`` and any replica count but 1, and a highly available stack says
why one is acceptable (``tempo.singleReplicaReason``). A coordinated cluster needs the
tempo-distributed chart vendored and pinned; docs/runbooks/observability.md, "Tempo in prod", says
what one replica means and what moving on takes. The tempo-query (Jaeger UI) container is off:
its image is not in the catalog and Grafana is the UI.

Keys read from grafana-community/helm-charts charts/tempo/values.yaml at d1e8f028: replicas,
tempo.{registry,repository,tag} (no digest key, so the digest rides in the tag), tempo.retention
(rendered into backend_scheduler compaction block_retention, a Go duration), tempo.storage.trace,
tempo.receivers, tempo.extraEnv, tempo.securityContext, securityContext, serviceAccount,
persistence, serviceMonitor, tempoQuery.enabled. The S3 backend reads AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY from the environment when no static keys are configured.
"""
from __future__ import annotations

from typing import Any

from components.core.observability import topology as t
from components.kit.security import container_security_context, pod_security_context, resource_requirements
from components.core.observability.images import registry_repository_tag_at_digest
from components.core.observability.stores import Bucket
from components.kit import KitContext
from components.kit.labels import client_label
from components.settings import TempoSettings

TEMPO_UID = 10001


def values(settings: TempoSettings, ctx: KitContext, bucket: Bucket) -> dict[str, Any]:
    address = bucket.address
    container = container_security_context(uid=TEMPO_UID)
    return {
        "fullnameOverride": t.TEMPO_FULLNAME,
        "replicas": settings.replicas,
        "tempo": {
            **registry_repository_tag_at_digest(ctx.catalog.image("tempo")),
            "resources": resource_requirements(settings.resources),
            "reportingEnabled": False,
            "retention": t.go_duration(settings.retention),
            "storage": {
                "trace": {
                    "backend": "s3",
                    "s3": {
                        "bucket": bucket.access.bucket,
                        "endpoint": address.host_port,
                        "region": bucket.access.region,
                        "insecure": not address.secure,
                        "forcepathstyle": True,
                    },
                    "wal": {"path": "/var/tempo/wal"},
                }
            },
            "receivers": {
                "otlp": {"protocols": {"grpc": {"endpoint": f"0.0.0.0:{t.OTLP_GRPC}"}}},
                # The chart's Service template reads every Jaeger endpoint, so the receiver cannot be
                # removed; bound to loopback, nothing outside the pod reaches it.
                "jaeger": {"protocols": {
                    "grpc": {"endpoint": "127.0.0.1:14250"},
                    "thrift_binary": {"endpoint": "127.0.0.1:6832"},
                    "thrift_compact": {"endpoint": "127.0.0.1:6831"},
                    "thrift_http": {"endpoint": "127.0.0.1:14268"},
                }},
            },
            "securityContext": container,
            "extraEnv": bucket.env,
        },
        "securityContext": pod_security_context(TEMPO_UID),
        "podLabels": client_label("minio"),
        "serviceAccount": {"create": True, "automountServiceAccountToken": False},
        "persistence": {"enabled": True, "size": settings.storage, "storageClassName": ctx.storage_class},
        "serviceMonitor": {"enabled": True},
        "tempoQuery": {"enabled": False},
    }
