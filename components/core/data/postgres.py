"""PostgreSQL through CloudNativePG: operator chart, one Cluster, its databases, WAL archiving and base backups.

Owners' passwords are generated, stored in Vault, and reach the Cluster as ESO-managed
``kubernetes.io/basic-auth`` Secrets labelled ``cnpg.io/reload`` (so a rotated password is
applied without a restart). The services that use a database (later phases) get their own
copy with ``secrets.grant(..., values={"password": secrets.password(access.password)})``, where
``access = PostgresStore.access(<db>)`` (Grafana's is the first: components/core/observability).

Backups go through the Barman Cloud Plugin (CNPG-I), the path CloudNativePG supports since it
deprecated its in-tree Barman object store in 1.26: the plugin chart runs next to the operator
(same namespace, gRPC over mTLS with certificates from cert-manager, which Core installs first),
an ``ObjectStore`` names the backup target and the retention, the Cluster's ``spec.plugins``
makes the plugin its WAL archiver, and the ScheduledBackup uses ``method: plugin``. The plugin
injects a sidecar carrying barman-cloud into every instance pod; it shares the pod's labels,
so the instances' egress to the backup target covers it. Field names were read from the CRDs
the vendored charts ship and from the plugin's docs at v0.13.0 (usage.md, parameters.md).
"""
from __future__ import annotations

import pulumi

from components.core.backup_watch import BackupWatch
from components.core.data.common import API_SERVER_PORTS, StoreContext, client_peer
from components.kit.security import container_security_context, pod_security_context, resource_requirements
from components.core.interfaces import BucketAccess, DatabaseAccess, ObjectStorage
from components.kit.labels import client_label
from components.kit import Peer, allow_egress, allow_ingress, custom_resource, helm_chart, pod_monitor
from components.settings import Resources

API = "postgresql.cnpg.io/v1"
BARMAN_API = "barmancloud.cnpg.io/v1"
PLUGIN = "barman-cloud.cloudnative-pg.io"
"""The plugin's name (plugin-barman-cloud internal/cnpgi/metadata/constants.go, PluginName)."""
PLUGIN_RELEASE = "plugin-barman-cloud"
PLUGIN_LABELS = {"app.kubernetes.io/name": "plugin-barman-cloud", "app.kubernetes.io/instance": PLUGIN_RELEASE}
"""The plugin pod's selector labels (chart templates/_helpers.tpl, selectorLabels)."""
PLUGIN_PORT = 9090
"""The plugin's gRPC port (chart templates/deployment.yaml, --server-address=:9090)."""
PLUGIN_UID = 10001
CLUSTER = "app-db"
OBJECT_STORE = "app-db-backups"
POSTGRES_UID = 26
"""The postgres user of the CloudNativePG images (the Cluster's postgresUID default)."""
SERVICE_ACCOUNT = "app-db-secrets"
PORT = 5432
STATUS_PORT = 8000
METRICS_PORT = 9187
METRICS_PORT_NAME = "metrics"
WEBHOOK_PORT = 9443
OPERATOR_LABELS = {"app.kubernetes.io/name": "cloudnative-pg"}
INSTANCE_LABELS = {"cnpg.io/cluster": CLUSTER}
DATABASE_OWNERS = {"openfga": "governance", "identity": "agents", "orchestrator": "agents", "memory": "agents",
                   "grafana": "observability"}
"""Each database and where the service that owns it runs: OpenFGA (the governance namespace), identity
(users, service accounts, refresh tokens), the orchestrator and the memory gateway (agents), Grafana (Core's observability namespace: its replicas
share users, sessions and preferences through it). The owners' namespaces are the ones admitted as
clients."""
DATABASES = tuple(DATABASE_OWNERS)
SIDECAR_RESOURCES = Resources(cpu_request="50m", memory_request="128Mi", cpu_limit="1", memory_limit="512Mi")
"""The barman-cloud sidecar in each instance pod (ObjectStore instanceSidecarConfiguration): it
compresses WAL and streams base backups, so it gets a CPU core when it needs one."""
NEWEST_BACKUP_METRIC = "barman_cloud_cloudnative_pg_io_last_available_backup_timestamp"
"""Exported by each instance's metrics endpoint for the plugin (plugin-barman-cloud v0.13.0
internal/cnpgi/instance/metrics.go; docs observability.md); 0 while the store knows no backup."""


def owner_namespace(stores: StoreContext, db: str) -> str:
    where = DATABASE_OWNERS[db]
    return stores.observability_ns if where == "observability" else getattr(stores.clients, where)


def client_namespaces(stores: StoreContext) -> tuple[str, ...]:
    """The namespaces of the databases' owners, the only ones whose labelled pods may connect."""
    return tuple(sorted({owner_namespace(stores, db) for db in DATABASES}))


def operator_values(stores: StoreContext) -> dict:
    """Keys read from cloudnative-pg/charts values.yaml (see platform.lock.yaml); no digest key, so tag@digest."""
    image = stores.ctx.catalog.image("cloudnative-pg")
    return {
        "image": {"repository": image.name, "tag": image.tag_at_digest, "pullPolicy": "IfNotPresent"},
        "crds": {"create": True},
        "replicaCount": 1,
        "resources": resource_requirements(stores.settings.operator_resources),
        "podSecurityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containerSecurityContext": container_security_context(uid=10001),
        "monitoring": {"podMonitorEnabled": False},
    }


def plugin_values(stores: StoreContext) -> dict:
    """Keys read from cloudnative-pg/charts plugin-barman-cloud values.yaml (see platform.lock.yaml); tag@digest."""
    catalog = stores.ctx.catalog
    plugin, sidecar = catalog.image("plugin-barman-cloud"), catalog.image("plugin-barman-cloud-sidecar")
    return {
        "image": {"registry": plugin.registry, "repository": plugin.repository, "tag": plugin.tag_at_digest, "pullPolicy": "IfNotPresent"},
        "sidecarImage": {"registry": sidecar.registry, "repository": sidecar.repository, "tag": sidecar.tag_at_digest},
        "crds": {"create": True},
        "resources": resource_requirements(stores.settings.operator_resources),
        "podSecurityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containerSecurityContext": {**container_security_context(uid=PLUGIN_UID), "runAsGroup": PLUGIN_UID},
    }


def object_store_spec(backups: BucketAccess, retention_days: int) -> dict:
    """The ``ObjectStore``: where WAL and base backups go (the backup target) and how long they stay.

    ``configuration`` has the in-tree ``barmanObjectStore`` shape; ``serverName`` stays out of it
    (plugin docs: it must be left empty there; the Cluster's plugin parameters name it). The
    sidecar gets the target's region through boto3's ``AWS_DEFAULT_REGION``.
    """
    return {
        "configuration": {
            "destinationPath": backups.url,
            "endpointURL": backups.endpoint,
            "s3Credentials": {
                "accessKeyId": {"name": backups.credentials.name, "key": backups.access_key_field},
                "secretAccessKey": {"name": backups.credentials.name, "key": backups.secret_key_field},
            },
            "wal": {"compression": "gzip", "maxParallel": 2},
            "data": {"compression": "gzip"},
        },
        "retentionPolicy": f"{retention_days}d",
        "instanceSidecarConfiguration": {
            "env": [{"name": "AWS_DEFAULT_REGION", "value": backups.region}],
            "resources": resource_requirements(SIDECAR_RESOURCES),
        },
    }


def plugin_parameters() -> dict[str, str]:
    """What the Cluster tells the plugin: the ObjectStore, and the folder (server name) inside it."""
    return {"barmanObjectName": OBJECT_STORE, "serverName": CLUSTER}


def owner_password(db: str) -> str:
    """The name of the generated credential of ``db``'s owner role (``SecretGrants.password``)."""
    return f"postgres-{db}-owner"


class PostgresStore:
    def __init__(self, stores: StoreContext, storage: ObjectStorage, opts: pulumi.ResourceOptions):
        s = stores.settings.postgres
        ns = stores.data_ns
        ctx = stores.ctx
        secrets = stores.secrets
        self.operator = helm_chart("cloudnative-pg", "cloudnative-pg", stores.operators_ns, operator_values(stores), ctx, ctx.keep(opts))
        # The plugin lives in the operator's namespace (plugin docs: installation.mdx) and installs
        # the ObjectStore CRD, so it is kept like every chart that installs CRDs. It needs nothing of
        # the operator's to start (the operator finds it later through its Service); it waits for
        # cert-manager, which issues the certificates of its gRPC mTLS.
        after_cert_manager = pulumi.ResourceOptions(depends_on=[stores.cert_manager] if stores.cert_manager else [])
        self.backup_plugin = helm_chart(PLUGIN_RELEASE, "plugin-barman-cloud", stores.operators_ns, plugin_values(stores), ctx,
                                        ctx.keep(pulumi.ResourceOptions.merge(opts, after_cert_manager)))
        self.owners = {
            db: secrets.grant(
                CLUSTER, ns, SERVICE_ACCOUNT, f"owner-{db}",
                {"username": db, "password": secrets.password(owner_password(db))},
                create_service_account=True, secret_type="kubernetes.io/basic-auth", secret_labels={"cnpg.io/reload": "true"},
            )
            for db in DATABASES
        }
        backups = storage.access("postgres-backups")
        self.object_store = custom_resource(BARMAN_API, "ObjectStore", OBJECT_STORE, ns, object_store_spec(backups, s.backup_retention_days),
                                            pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[self.backup_plugin])))
        ha = s.instances > 1
        spec: dict = {
            "instances": s.instances,
            "imageName": ctx.catalog.image("cnpg-postgresql").reference,
            "enableSuperuserAccess": False,
            "enablePDB": True,
            "storage": {"size": s.storage, "storageClass": ctx.storage_class},
            "walStorage": {"size": s.wal_storage, "storageClass": ctx.storage_class},
            "resources": resource_requirements(s.resources),
            # CloudNativePG hardens its pods by default; set explicitly so the gate can see it.
            "postgresUID": POSTGRES_UID,
            "postgresGID": POSTGRES_UID,
            "podSecurityContext": pod_security_context(POSTGRES_UID),
            "securityContext": container_security_context(uid=POSTGRES_UID),
            "affinity": {
                "enablePodAntiAffinity": True,
                "topologyKey": "kubernetes.io/hostname",
                "podAntiAffinityType": "required" if ctx.high_availability else "preferred",
            },
            "bootstrap": {"initdb": {"database": DATABASES[0], "owner": DATABASES[0], "secret": {"name": self.owners[DATABASES[0]].name}}},
            "managed": {
                "roles": [
                    {"name": db, "ensure": "present", "login": True, "inherit": True, "passwordSecret": {"name": self.owners[db].name}}
                    for db in DATABASES
                ]
            },
            "plugins": [{"name": PLUGIN, "enabled": True, "isWALArchiver": True, "parameters": plugin_parameters()}],
            # The Cluster's own PodMonitor switch is deprecated (CRD schema: "create a PodMonitor
            # manually"), so the PodMonitor below is ours.
            "monitoring": {"enablePodMonitor": False},
        }
        if ha:
            spec["postgresql"] = {"synchronous": {"method": "any", "number": 1, "dataDurability": "required"}}
        # Not after the ObjectStore: the Cluster names it, and the plugin reads it when it first archives
        # (a WAL segment waits and is retried until then); waiting would add a step to every first deploy.
        self.cluster = custom_resource(API, "Cluster", CLUSTER, ns, spec, ctx.keep(pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(depends_on=[self.operator]))))
        after_cluster = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[self.cluster]))
        self.databases = [
            custom_resource(
                API, "Database", f"{CLUSTER}-{db}", ns,
                {"name": db, "owner": db, "cluster": {"name": CLUSTER}, "ensure": "present", "databaseReclaimPolicy": "retain"},
                after_cluster,
            )
            for db in DATABASES
        ]
        self.scheduled_backup = custom_resource(
            API, "ScheduledBackup", f"{CLUSTER}-daily", ns,
            {"schedule": s.backup_schedule, "cluster": {"name": CLUSTER}, "backupOwnerReference": "self", "immediate": True,
             "method": "plugin", "pluginConfiguration": {"name": PLUGIN}},
            after_cluster,
        )
        # The newest base backup in the ObjectStore, as the plugin reports it through every instance's
        # metrics endpoint (the in-tree cnpg_collector_last_available_backup_timestamp stops with the plugin).
        self.backup_watch = BackupWatch("postgres", f"PostgreSQL base backup of {CLUSTER}",
                                        f'max({NEWEST_BACKUP_METRIC}{{namespace="{ns}", pod=~"{CLUSTER}-[0-9]+"}})')
        self.host = f"{CLUSTER}-rw.{ns}.svc.cluster.local"
        """The read-write Service CloudNativePG creates for the Cluster (always the primary)."""
        self.address = f"{self.host}:{PORT}"
        self.namespace = ns
        # Each instance exports cnpg_* on container port "metrics" (9187); instance pods carry
        # cnpg.io/cluster=<cluster> (cloudnative-pg docs/src/monitoring.md, "Monitoring Instances").
        self.monitor = pod_monitor(CLUSTER, ns, INSTANCE_LABELS, [{"port": METRICS_PORT_NAME, "path": "/metrics", "interval": "30s"}], ctx, opts)
        self.network_policies = self._network(stores, backups, opts)

    def access(self, db: str) -> DatabaseAccess:
        """How ``db``'s owner reaches its database: the primary's Service, the role, its credential's name."""
        if db not in DATABASES:
            raise ValueError(f"database {db!r}: the Cluster {CLUSTER} has {', '.join(DATABASES)}")
        return DatabaseAccess(host=self.host, port=PORT, name=db, user=db, password=owner_password(db),
                              namespace=self.namespace, pods=dict(INSTANCE_LABELS), client_labels=client_label("postgres"))

    @staticmethod
    def _network(stores: StoreContext, backups: BucketAccess, opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
        ns, ops = stores.data_ns, stores.operators_ns
        operator = Peer(namespace=ops, pods=OPERATOR_LABELS)
        plugin = Peer(namespace=ops, pods=PLUGIN_LABELS)
        peers = Peer(namespace=ns, pods=INSTANCE_LABELS)
        return [
            allow_ingress("postgres-from-clients", ns, INSTANCE_LABELS, [client_peer("postgres", client_namespaces(stores)), peers], [PORT], opts),
            allow_ingress("postgres-from-operator", ns, INSTANCE_LABELS, [operator], [STATUS_PORT, PORT], opts),
            allow_ingress("postgres-metrics-scrape", ns, INSTANCE_LABELS, [stores.prometheus], [METRICS_PORT], opts),
            allow_egress("postgres-to-peers", ns, INSTANCE_LABELS, [peers], [PORT, STATUS_PORT], opts),
            allow_egress("postgres-to-backup-target", ns, INSTANCE_LABELS, [backups.peer], [backups.port], opts),
            allow_egress("postgres-to-api-server", ns, INSTANCE_LABELS, [stores.api_server], API_SERVER_PORTS, opts),
            allow_egress("cloudnative-pg-to-api-server", ops, OPERATOR_LABELS, [stores.api_server], API_SERVER_PORTS, opts),
            allow_egress("cloudnative-pg-to-instances", ops, OPERATOR_LABELS, [peers], [STATUS_PORT, PORT], opts),
            allow_ingress("cloudnative-pg-webhook-from-api-server", ops, OPERATOR_LABELS, [stores.api_server], [WEBHOOK_PORT], opts),
            # CNPG-I: the operator calls the plugin's gRPC Service (mTLS); the instances talk to their
            # sidecar over a socket inside the pod, and the sidecar's uploads leave through
            # postgres-to-backup-target above (it carries the instance labels).
            allow_egress("cloudnative-pg-to-barman-cloud", ops, OPERATOR_LABELS, [plugin], [PLUGIN_PORT], opts),
            allow_ingress("barman-cloud-from-operator", ops, PLUGIN_LABELS, [operator], [PLUGIN_PORT], opts),
            allow_egress("barman-cloud-to-api-server", ops, PLUGIN_LABELS, [stores.api_server], API_SERVER_PORTS, opts),
        ]


__all__ = ["CLUSTER", "DATABASES", "DATABASE_OWNERS", "OBJECT_STORE", "PLUGIN", "PostgresStore", "client_namespaces", "object_store_spec"]
