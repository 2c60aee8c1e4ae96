"""Loki: single binary in dev, SimpleScalable (read / write / backend) in prod, chunks in MinIO.

Switched off because their images are not in the catalog (and the platform needs none of them):
the nginx gateway (clients call the read and write Services directly), the memcached chunk and
result caches, the canary DaemonSet, the Helm test pod, the bundled MinIO subchart (Core's MinIO
is used) and the rules sidecar (alert rules live in Prometheus). The chart's own dashboards and
rules are off too: the platform ships its own (provisioning.py).

Keys were read from grafana-community/helm-charts charts/loki: templates/validate.yaml
(deploymentMode values, replica rules), templates/monolithic/statefulset.yaml (singleBinary.*:
extraArgs, extraEnv, persistence, resources; loki.containerSecurityContext, loki.image) and
templates/monitoring/servicemonitor.yaml (monitoring.serviceMonitor), plus ci/default-values.yaml
(loki.storage.type, bucketNames, s3.*). Key names of loki.image: lock file comment. Logs arrive
over OTLP (grafana.com/docs/loki/latest/send-data/otel/: the /otlp endpoint, structured metadata,
``limits_config.otlp_config`` to index the ``namespace``/``pod``/``container`` resource attributes
the collector sets).
"""
from __future__ import annotations

from typing import Any

from components.core.observability import topology as t
from components.kit.security import container_security_context, pod_security_context, resource_requirements
from components.core.observability.images import registry_repository_tag_digest
from components.core.observability.stores import ACCESS_KEY_ENV, SECRET_KEY_ENV, Bucket
from components.kit import KitContext
from components.kit.labels import client_label
from components.settings import LogTraceStoreSettings

LOKI_UID = 10001
SCHEMA_START = "2025-01-01"
SCALABLE_TARGETS = ("read", "write", "backend")
DISABLED_PARTS = ("gateway", "chunksCache", "resultsCache", "lokiCanary", "test", "minio")


PERSISTENCE_SWITCH = {"singleBinary": "enabled", "write": "volumeClaimsEnabled", "backend": "enabled"}
"""Which key turns a target's volume claims on: chart 18.11.0 names it differently per target."""


def _target(settings: LogTraceStoreSettings, ctx: KitContext, bucket: Bucket, replicas: int, switch: str | None) -> dict[str, Any]:
    part: dict[str, Any] = {
        "replicas": replicas,
        "resources": resource_requirements(settings.resources),
        "extraArgs": ["-config.expand-env=true"],
        "extraEnv": bucket.env,
    }
    if switch:
        # The claims outlive the StatefulSet (the chart's backend default deletes them with it).
        part["persistence"] = {switch: True, "size": settings.storage, "storageClass": ctx.storage_class,
                               "enableStatefulSetAutoDeletePVC": True, "whenDeleted": "Retain", "whenScaled": "Retain"}
    return part


def values(settings: LogTraceStoreSettings, ctx: KitContext, bucket: Bucket) -> dict[str, Any]:
    scalable = settings.mode == "scalable"
    address = bucket.address
    loki: dict[str, Any] = {
        "image": registry_repository_tag_digest(ctx.catalog.image("loki")),
        "auth_enabled": False,
        "podLabels": client_label("minio"),
        "commonConfig": {"replication_factor": min(settings.replicas, 3)},
        "podSecurityContext": pod_security_context(LOKI_UID),
        "containerSecurityContext": container_security_context(uid=LOKI_UID),
        "storage": {
            "type": "s3",
            "bucketNames": {"chunks": bucket.access.bucket, "ruler": bucket.access.bucket, "admin": bucket.access.bucket},
            "s3": {
                "endpoint": address.host_port,
                "region": bucket.access.region,
                "accessKeyId": f"${{{ACCESS_KEY_ENV}}}",
                "secretAccessKey": f"${{{SECRET_KEY_ENV}}}",
                "s3ForcePathStyle": True,
                "insecure": not address.secure,
            },
        },
        "schemaConfig": {
            "configs": [
                {
                    "from": SCHEMA_START,
                    "store": "tsdb",
                    "object_store": "s3",
                    "schema": "v13",
                    "index": {"prefix": "index_", "period": "24h"},
                }
            ]
        },
        "limits_config": {
            "retention_period": settings.retention,
            "allow_structured_metadata": True,
            "otlp_config": {
                "resource_attributes": {
                    "attributes_config": [{"action": "index_label", "attributes": sorted(t.LOG_LABEL_ATTRIBUTES)}]
                }
            },
        },
        "compactor": {"retention_enabled": True, "delete_request_store": "s3"},
        "analytics": {"reporting_enabled": False},
    }
    single = _target(settings, ctx, bucket, 0 if scalable else settings.replicas, PERSISTENCE_SWITCH["singleBinary"])
    scaled = {
        name: _target(settings, ctx, bucket, settings.replicas if scalable else 0, PERSISTENCE_SWITCH.get(name))
        for name in SCALABLE_TARGETS
    }
    return {
        "deploymentMode": "SimpleScalable" if scalable else "Monolithic",
        "fullnameOverride": t.LOKI_FULLNAME,
        "loki": loki,
        "singleBinary": single,
        **scaled,
        "serviceAccount": {"create": True, "automountServiceAccountToken": False},
        **{part: {"enabled": False} for part in DISABLED_PARTS},
        "sidecar": {"rules": {"enabled": False}},
        "monitoring": {
            "serviceMonitor": {"enabled": True},
            "dashboards": {"enabled": False},
            "rules": {"enabled": False},
        },
    }
