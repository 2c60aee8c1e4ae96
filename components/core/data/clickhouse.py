"""ClickHouse through the Altinity operator, with the audit pipeline's schema delivered to it.

* The operator chart runs with its metrics exporter and its CRD hook Job disabled (neither
  image could be pinned, see platform.lock.yaml); ClickHouse's own Prometheus endpoint
  (port 9363) replaces the exporter. The chart's literal default operator password is replaced
  by a generated one from Vault (``secret.create: false``).
* One ClickHouseInstallation ``audit`` (shards/replicas from settings), non-root pod template,
  and in prod a ClickHouseKeeperInstallation for replication.
* The audit DDL (components/core/audit/sql, rendered by sql_templates for this stack) goes
  into a ConfigMap that a kit Job replays with clickhouse-client, in order; the statements are
  idempotent, and a change to any of them replaces the Job so it runs again.
* Clients come from the observability namespace only, and only pods there labelled
  ``somaagenthub.io/clickhouse-client``: Grafana's ClickHouse data source, as the read-only ``grafana`` user
  (SELECT on ``audit.*`` and ``cost.*``; created when the stack sets ``governance.compliance``,
  docs/architecture/compliance.md).
* ClickHouse consumes ``platform.audit.v1`` as the Kafka user ``clickhouse-audit`` (group
  ``clickhouse-audit``) over TLS + SCRAM; the password comes from the environment
  (``from_env``), filled from the ESO-managed Secret.
* Backups: a kit CronJob (``core.clickhouse.backupSchedule``) runs ClickHouse's own
  ``BACKUP DATABASE audit TO S3(...)`` (components/core/audit/backup/backup.sql) as
  ``audit_backup``, a user granted BACKUP on ``audit.*`` only. The server writes to the backup
  target (``clickhouse-to-backup-target``); the job only talks to the server. The S3 URL and keys
  are filled in at run time from the job's environment, quoted as SQL strings by ``render.awk``.
  kube-state-metrics' last successful run of the CronJob is the stream's age
  (:func:`components.core.backup_watch.cronjob_watch`).
"""
from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.core.audit.sql_templates import AuditSqlSettings, render_backup, render_named_statements
from components.core.cost import schema_statements as cost_schema_statements
from components.core.backup_watch import cronjob_watch
from components.core.data.common import API_SERVER_PORTS, StoreContext, client_peer
from components.kit.security import container_security_context, pod_security_context, resource_requirements
from components.core.data.kafka import AUDIT_TOPIC, CLICKHOUSE_GROUP, CLICKHOUSE_USER, KAFKA_LABELS, KafkaStore
from components.core.interfaces import BucketAccess, ObjectStorage
from components.kit import (
    CronJob, CronJobArgs, Egress, Job, JobArgs, chart_crds, Peer, ScriptFiles, SecretEnv, allow_egress, allow_ingress, custom_resource, helm_chart, pod_monitor, recommended, selector,
)
from components.settings import Resources

API = "clickhouse.altinity.com/v1"
KEEPER_API = "clickhouse-keeper.altinity.com/v1"
NAME = "audit"
CLUSTER = "audit"
SERVICE_ACCOUNT = "clickhouse"
OPERATOR = "clickhouse-operator"
SCHEMA = "clickhouse-audit-schema"
BACKUP = "clickhouse-audit-backup"
BACKUP_USER = "audit_backup"
COST_INGEST_USER = "cost_ingest"
"""Writes Kubecost's allocations into ``cost.*`` (the Governance phase's ingest CronJob); reads nothing else."""
COST_INGEST_PASSWORD_KEY = "cost-ingest-password"
DRILL_DATABASE = "audit_drill"
"""Where a restore drill restores next to the live data (docs/runbooks/core-data.md); audit_admin may use it."""
BACKUP_DEADLINE_SECONDS = 3 * 3600
CH_UID = 101
HTTP_PORT, NATIVE_PORT, INTERSERVER_PORT, METRICS_PORT = 8123, 9000, 9009, 9363
METRICS_PORT_NAME = "metrics"
MONITOR = "clickhouse"
"""The PodMonitor of the ClickHouse pods: its job is ``<namespace>/clickhouse``."""
KEEPER_PORT, KEEPER_RAFT_PORT = 2181, 9444
CHI_LABELS = {"clickhouse.altinity.com/chi": NAME}
KEEPER_LABELS = {"clickhouse-keeper.altinity.com/chk": NAME}
KAFKA_CA_MOUNT = "/etc/clickhouse-server/kafka-ca"
SCHEMA_RESOURCES = Resources(cpu_request="50m", memory_request="128Mi", cpu_limit="500m", memory_limit="512Mi")


GRAFANA_USER = "grafana"
GRAFANA_PASSWORD = "clickhouse-grafana"
"""The generated password's name: ClickHouse's users Secret and Grafana's data source both receive it from Vault."""
GRAFANA_PASSWORD_KEY = "grafana-password"
GRAFANA_DATABASES = ("audit", "cost")
"""What Grafana's ClickHouse data source may read (docs/architecture/compliance.md): the audit events and the
Kubecost part's ``cost.allocations``; nothing else, and nothing but SELECT."""
GRAFANA_PROFILE = {
    # readonly 2: reads only, yet the query settings the plugin sends (max_execution_time) are accepted, which
    # readonly 1 refuses (ClickHouse docs, "Grafana plugin": a read-only user that may set max_execution_time)
    f"{GRAFANA_USER}/readonly": "2",
    f"{GRAFANA_USER}/max_execution_time": "60",
    f"{GRAFANA_USER}/max_result_rows": "100000",
}


@dataclass(frozen=True)
class GrafanaReader:
    """How Grafana's ClickHouse data source reaches ClickHouse: the HTTP endpoint, the pods behind it (for the
    flow), the ``grafana`` user and the name of its generated password (granted again to Grafana)."""

    host: str
    port: int
    namespace: str
    pods: dict
    user: str = GRAFANA_USER
    database: str = "audit"
    password_name: str = GRAFANA_PASSWORD


def grafana_user(password: dict, pod_cidr: str) -> dict:
    """The ``grafana`` user: SELECT on ``audit.*`` and ``cost.*`` only, from the pod network, profile ``grafana``."""
    return {
        f"{GRAFANA_USER}/password": password,
        f"{GRAFANA_USER}/networks/ip": [pod_cidr],
        f"{GRAFANA_USER}/profile": GRAFANA_USER,
        f"{GRAFANA_USER}/grants/query": [f"GRANT SELECT ON {db}.*" for db in GRAFANA_DATABASES],
    }


def audit_sql_settings(stores: StoreContext, kafka: KafkaStore) -> AuditSqlSettings:
    replicated = stores.settings.clickhouse.replicas > 1
    return AuditSqlSettings(
        brokers=kafka.bootstrap,
        topic=AUDIT_TOPIC,
        consumer_group=CLICKHOUSE_GROUP,
        retention_days=stores.settings.clickhouse.audit_retention_days,
        replicated=replicated,
        cluster=CLUSTER if replicated else "",
    )


def kafka_config(username: str) -> str:
    return (
        "<clickhouse>\n  <kafka>\n"
        "    <security_protocol>SASL_SSL</security_protocol>\n"
        "    <sasl_mechanism>SCRAM-SHA-512</sasl_mechanism>\n"
        f"    <sasl_username>{username}</sasl_username>\n"
        '    <sasl_password from_env="KAFKA_SASL_PASSWORD"/>\n'
        f"    <ssl_ca_location>{KAFKA_CA_MOUNT}/ca.crt</ssl_ca_location>\n"
        "  </kafka>\n</clickhouse>\n"
    )


PROMETHEUS_CONFIG = (
    "<clickhouse>\n  <prometheus>\n    <endpoint>/metrics</endpoint>\n"
    f"    <port>{METRICS_PORT}</port>\n    <metrics>true</metrics>\n    <events>true</events>\n"
    "    <asynchronous_metrics>true</asynchronous_metrics>\n  </prometheus>\n</clickhouse>\n"
)


def operator_values(stores: StoreContext, credentials_secret: str) -> dict:
    """Keys read from Altinity/clickhouse-operator deploy/helm/clickhouse-operator/values.yaml (see platform.lock.yaml)."""
    image = stores.ctx.catalog.image("clickhouse-operator")
    return {
        "fullnameOverride": OPERATOR,
        "operator": {
            "image": {"repository": image.name, "tag": image.tag_at_digest, "pullPolicy": "IfNotPresent"},
            "resources": resource_requirements(stores.settings.operator_resources),
            "containerSecurityContext": container_security_context(uid=65532),
        },
        "podSecurityContext": pod_security_context(65532),
        "metrics": {"enabled": False},
        "crdHook": {"enabled": False},
        "serviceMonitor": {"enabled": False},
        "secret": {"create": False},
        "configs": {"files": {"config.yaml": {"clickhouse": {"access": {"secret": {"namespace": "", "name": credentials_secret}}}}}},
    }


RENDER_AWK = r"""# Generated by components/core/data/clickhouse.py: fill the S3 markers of backup.sql with SQL
# string literals (backslash and single quote escaped with a backslash) of environment values.
function literal(s,    out, i, c) {
    out = ""
    for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        if (c == "\\" || c == "'") out = out "\\"
        out = out c
    }
    return "'" out "'"
}
function fill(line, marker, value,    i, out) {
    out = ""
    while ((i = index(line, marker)) > 0) {
        out = out substr(line, 1, i - 1) value
        line = substr(line, i + length(marker))
    }
    return out line
}
BEGIN {
    if (ENVIRON["BACKUP_URL"] == "" || ENVIRON["S3_ACCESS_KEY_ID"] == "" || ENVIRON["S3_SECRET_ACCESS_KEY"] == "") {
        print "render.awk: BACKUP_URL, S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set" > "/dev/stderr"
        exit 1
    }
}
{
    line = fill($0, "@DESTINATION@", literal(ENVIRON["BACKUP_URL"]))
    line = fill(line, "@ACCESS_KEY_ID@", literal(ENVIRON["S3_ACCESS_KEY_ID"]))
    print fill(line, "@SECRET_ACCESS_KEY@", literal(ENVIRON["S3_SECRET_ACCESS_KEY"]))
}
"""

BACKUP_SCRIPT = f"""#!/bin/sh
# Generated by components/core/data/clickhouse.py: BACKUP DATABASE audit to the backup target, one
# folder per run. The URL base, keys and password come from the environment, never from this file.
set -eu
BACKUP_URL="${{BACKUP_BASE_URL}}$(date -u +%Y%m%dT%H%M%SZ)"
export BACKUP_URL
statement=/tmp/backup.sql
trap 'rm -f "$statement"' EXIT
awk -f /backup/render.awk /backup/backup.sql > "$statement"
echo "backing up the audit database to $BACKUP_URL"
clickhouse-client --host "$CLICKHOUSE_HOST" --user {BACKUP_USER} --password "$CLICKHOUSE_PASSWORD" \\
    --receive_timeout {BACKUP_DEADLINE_SECONDS} --multiquery < "$statement"
echo "backup complete: $BACKUP_URL"
"""


def backup_base_url(backups: BucketAccess) -> str:
    """``<endpoint>/<bucket>/<prefix>audit/`` (path style); the job appends the run's UTC timestamp."""
    return f"{backups.endpoint.rstrip('/')}/{backups.bucket}/{backups.prefix}audit/"


def backup_files(settings: AuditSqlSettings) -> dict[str, str]:
    """The backup CronJob's ConfigMap: the statement with S3 markers, the awk that fills them, the script."""
    return {"backup.sql": render_backup(settings) + "\n", "render.awk": RENDER_AWK, "backup.sh": BACKUP_SCRIPT}


class ClickHouseStore:
    def __init__(self, stores: StoreContext, kafka: KafkaStore, storage: ObjectStorage, opts: pulumi.ResourceOptions):
        s = stores.settings.clickhouse
        ctx = stores.ctx
        ns, ops = stores.data_ns, stores.operators_ns
        secrets = stores.secrets
        replicated = s.replicas > 1
        operator_creds = secrets.grant(OPERATOR, ops, OPERATOR, "credentials",
                                       {"username": "clickhouse_operator", "password": secrets.password("clickhouse-operator")})
        values = operator_values(stores, operator_creds.name)
        crds = chart_crds(OPERATOR, "altinity-clickhouse-operator", values, ctx, ctx.keep(opts))
        self.operator = helm_chart(OPERATOR, "altinity-clickhouse-operator", ops, values, ctx, ctx.keep(opts), crds=crds)
        self.grafana_user = stores.clients.compliance is not None
        grafana_password = {GRAFANA_PASSWORD_KEY: secrets.password(GRAFANA_PASSWORD)} if self.grafana_user else {}
        self.users = secrets.grant(
            SERVICE_ACCOUNT, ns, SERVICE_ACCOUNT, "users",
            {"audit-admin-password": secrets.password("clickhouse-audit-admin"), "audit-reader-password": secrets.password("clickhouse-audit-reader"),
             "audit-backup-password": secrets.password("clickhouse-audit-backup"),
             COST_INGEST_PASSWORD_KEY: secrets.password("clickhouse-cost-ingest"), **grafana_password},
            create_service_account=True,
        )
        self.backups = storage.access("clickhouse-backups")
        kafka_secret = kafka.user_secrets[CLICKHOUSE_USER]
        # The installations need their CRDs to be applied, not the operator's release: the operator
        # reconciles them once it runs (one wave fewer on a first deploy).
        after = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[
            crds["clickhouseinstallations.clickhouse.altinity.com"], crds["clickhousekeeperinstallations.clickhouse-keeper.altinity.com"]]))
        self.keeper = self._keeper(stores, after) if replicated else None
        configuration: dict = {
            "clusters": [{"name": CLUSTER, "layout": {"shardsCount": s.shards, "replicasCount": s.replicas}}],
            "users": self._users(stores.settings.pod_cidr, replicated),
            **({"profiles": GRAFANA_PROFILE} if self.grafana_user else {}),
            "files": {"config.d/kafka.xml": kafka_config(CLICKHOUSE_USER), "config.d/prometheus.xml": PROMETHEUS_CONFIG},
        }
        if replicated:
            configuration["zookeeper"] = {"nodes": [{"host": f"keeper-{NAME}.{ns}.svc.cluster.local", "port": KEEPER_PORT}]}
        image = ctx.catalog.image("clickhouse-server")
        pod_spec = {
            "serviceAccountName": SERVICE_ACCOUNT,
            "automountServiceAccountToken": False,
            "securityContext": pod_security_context(CH_UID),
            "containers": [
                {
                    "name": "clickhouse",
                    "image": image.reference,
                    "resources": resource_requirements(s.resources),
                    "securityContext": container_security_context(uid=CH_UID),
                    # The endpoint config.d/prometheus.xml opens; named so the PodMonitor can find it.
                    "ports": [{"name": METRICS_PORT_NAME, "containerPort": METRICS_PORT, "protocol": "TCP"}],
                    "env": [{"name": "KAFKA_SASL_PASSWORD", "valueFrom": {"secretKeyRef": {"name": kafka_secret.name, "key": "password"}}}],
                    "volumeMounts": [
                        {"name": "kafka-ca", "mountPath": KAFKA_CA_MOUNT, "readOnly": True},
                        {"name": "tmp", "mountPath": "/tmp"},
                        {"name": "logs", "mountPath": "/var/log/clickhouse-server"},
                    ],
                }
            ],
            "volumes": [
                {"name": "kafka-ca", "secret": {"secretName": kafka.ca_secret, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
                {"name": "logs", "emptyDir": {"sizeLimit": "1Gi"}},
            ],
        }
        pod_template: dict = {
            "name": "clickhouse",
            "metadata": {"labels": {"somaagenthub.io/kafka-client": "true", **recommended("clickhouse", "analytics-store", image.tag)}},
            "spec": pod_spec,
        }
        if replicated:
            pod_template["podDistribution"] = [{"type": "ClickHouseAntiAffinity", "scope": "ClickHouseInstallation"}]
        self.installation = custom_resource(
            API, "ClickHouseInstallation", NAME, ns,
            {
                "defaults": {"templates": {"podTemplate": "clickhouse", "dataVolumeClaimTemplate": "data"}},
                "configuration": configuration,
                "templates": {
                    "podTemplates": [pod_template],
                    "volumeClaimTemplates": [
                        # Retain: the operator's default deletes the claims with the installation (CRD: reclaimPolicy)
                        {"name": "data", "reclaimPolicy": "Retain",
                         "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": ctx.storage_class, "resources": {"requests": {"storage": s.storage}}}}
                    ],
                },
            },
            ctx.keep(pulumi.ResourceOptions.merge(after, pulumi.ResourceOptions(depends_on=[self.keeper] if self.keeper else []))),
            ctx=ctx,
        )
        self.monitor = pod_monitor(MONITOR, ns, CHI_LABELS, [{"port": METRICS_PORT_NAME, "path": "/metrics", "interval": "30s"}], ctx, opts)
        self.sql_settings = audit_sql_settings(stores, kafka)
        self.schema = self._schema_job(stores, opts)
        self.backup_job = self._backup_job(stores, opts)
        self.backup_watch = cronjob_watch("clickhouse", "ClickHouse backup of the audit database", ns, BACKUP)
        self.network_policies = self._network(stores, replicated, self.backups, opts)
        self.grafana_reader = self._grafana_reader(stores)

    def _grafana_reader(self, stores: StoreContext) -> GrafanaReader | None:
        """Grafana's way in, when the stack has the compliance part (None otherwise: no such user exists)."""
        if not self.grafana_user:
            return None
        ns = stores.data_ns
        return GrafanaReader(host=f"clickhouse-{NAME}.{ns}.svc.cluster.local", port=HTTP_PORT, namespace=ns, pods=dict(CHI_LABELS))

    def _users(self, pod_cidr: str, replicated: bool) -> dict:
        """Passwords come from the ESO Secret through the operator's ``valueFrom`` (env + from_env), never
        inline; every user accepts connections from the cluster's pod network only (``core.podCidr``).

        ``audit_admin`` also owns the restore drill's scratch database; ``audit_backup`` may only
        back up ``audit`` (and, on a replicated cluster, run that ON CLUSTER, which needs CLUSTER)."""
        def password(key: str) -> dict:
            return {"valueFrom": {"secretKeyRef": {"name": self.users.name, "key": key}}}

        return {
            "audit_admin/password": password("audit-admin-password"),
            "audit_admin/networks/ip": [pod_cidr],
            "audit_admin/profile": "default",
            "audit_admin/grants/query": ["GRANT ALL ON audit.*", f"GRANT ALL ON {DRILL_DATABASE}.*", "GRANT ALL ON cost.*", "GRANT CLUSTER ON *.*",
                                         "GRANT READ, WRITE ON KAFKA"],
            "audit_reader/password": password("audit-reader-password"),
            "audit_reader/networks/ip": [pod_cidr],
            "audit_reader/profile": "readonly",
            "audit_reader/grants/query": ["GRANT SELECT ON audit.*"],
            f"{BACKUP_USER}/password": password("audit-backup-password"),
            f"{BACKUP_USER}/networks/ip": [pod_cidr],
            f"{BACKUP_USER}/profile": "default",
            f"{BACKUP_USER}/grants/query": ["GRANT BACKUP ON audit.*", *(["GRANT CLUSTER ON *.*"] if replicated else [])],
            f"{COST_INGEST_USER}/password": password(COST_INGEST_PASSWORD_KEY),
            f"{COST_INGEST_USER}/networks/ip": [pod_cidr],
            f"{COST_INGEST_USER}/profile": "default",
            f"{COST_INGEST_USER}/grants/query": ["GRANT INSERT, SELECT ON cost.*"],
            **(grafana_user(password(GRAFANA_PASSWORD_KEY), pod_cidr) if self.grafana_user else {}),
        }

    @staticmethod
    def _keeper(stores: StoreContext, opts: pulumi.ResourceOptions) -> pulumi.Resource:
        image = stores.ctx.catalog.image("clickhouse-keeper")
        return custom_resource(
            KEEPER_API, "ClickHouseKeeperInstallation", NAME, stores.data_ns,
            {
                "defaults": {"templates": {"podTemplate": "keeper", "dataVolumeClaimTemplate": "data"}},
                "configuration": {"clusters": [{"name": NAME, "layout": {"replicasCount": 3}}]},
                "templates": {
                    "podTemplates": [{
                        "name": "keeper",
                        "podDistribution": [{"type": "ClickHouseAntiAffinity", "scope": "Cluster"}],
                        "spec": {
                            "securityContext": pod_security_context(CH_UID),
                            "automountServiceAccountToken": False,
                            "containers": [{
                                "name": "clickhouse-keeper",
                                "image": image.reference,
                                "resources": resource_requirements(Resources(cpu_request="100m", memory_request="256Mi", cpu_limit="1", memory_limit="1Gi")),
                                "securityContext": container_security_context(uid=CH_UID),
                            }],
                        },
                    }],
                    "volumeClaimTemplates": [{"name": "data", "reclaimPolicy": "Retain",
                                              "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": stores.ctx.storage_class,
                                                                      "resources": {"requests": {"storage": "10Gi"}}}}],
                },
            },
            stores.ctx.keep(opts),
        )

    def _schema_job(self, stores: StoreContext, opts: pulumi.ResourceOptions) -> Job:
        ns = stores.data_ns
        # the audit DDL, then the cost DDL (components/core/cost/sql): cost_* sorts after 00N_* in the glob
        statements = render_named_statements(self.sql_settings) + cost_schema_statements(self.sql_settings)
        script = (
            "#!/bin/sh\n# Generated by components/core/data/clickhouse.py: apply the audit and cost DDL in file order.\nset -eu\n"
            'run() { clickhouse-client --host "$CLICKHOUSE_HOST" --user audit_admin --password "$CLICKHOUSE_PASSWORD" "$@"; }\n'
            'until run --query "SELECT 1" >/dev/null; do echo "waiting for ClickHouse"; sleep 5; done\n'
            'for f in /schema/*.sql; do echo "applying $f"; run --multiquery < "$f"; done\n'
        )
        data = {name: statement for name, statement in statements}
        data["apply.sh"] = script
        return Job(
            JobArgs(
                name=SCHEMA,
                namespace=ns,
                component="audit-schema",
                image="clickhouse-server",
                command=("/bin/sh", "/schema/apply.sh"),
                resources=SCHEMA_RESOURCES,
                env={"CLICKHOUSE_HOST": f"clickhouse-{NAME}.{ns}.svc.cluster.local", "HOME": "/tmp"},
                secret_env=(SecretEnv("CLICKHOUSE_PASSWORD", self.users.name, "audit-admin-password"),),
                files=ScriptFiles("/schema", data),
                egress=(Egress(to=Peer(namespace=ns, pods=CHI_LABELS), ports=(NATIVE_PORT,)),),
                run_as_user=CH_UID,
                backoff_limit=10,
            ),
            stores.ctx,
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[self.installation])),
        )

    def _backup_job(self, stores: StoreContext, opts: pulumi.ResourceOptions) -> CronJob:
        ns = stores.data_ns
        return CronJob(
            CronJobArgs(
                job=JobArgs(
                    name=BACKUP,
                    namespace=ns,
                    component="audit-backup",
                    image="clickhouse-server",
                    command=("/bin/sh", "/backup/backup.sh"),
                    resources=SCHEMA_RESOURCES,
                    env={"CLICKHOUSE_HOST": f"clickhouse-{NAME}.{ns}.svc.cluster.local", "HOME": "/tmp",
                         "BACKUP_BASE_URL": backup_base_url(self.backups)},
                    secret_env=(
                        SecretEnv("CLICKHOUSE_PASSWORD", self.users.name, "audit-backup-password"),
                        *self.backups.key_env(),
                    ),
                    files=ScriptFiles("/backup", backup_files(self.sql_settings)),
                    egress=(Egress(to=Peer(namespace=ns, pods=CHI_LABELS), ports=(NATIVE_PORT,)),),
                    run_as_user=CH_UID,
                    backoff_limit=2,
                    active_deadline_seconds=BACKUP_DEADLINE_SECONDS,
                ),
                schedule=stores.settings.clickhouse.backup_schedule,
            ),
            stores.ctx,
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[self.installation])),
        )

    @staticmethod
    def _network(stores: StoreContext, replicated: bool, backups: BucketAccess, opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
        ns, ops = stores.data_ns, stores.operators_ns
        operator = Peer(namespace=ops, pods={"app.kubernetes.io/name": "altinity-clickhouse-operator"})
        replicas = Peer(namespace=ns, pods=CHI_LABELS)
        schema_job = Peer(namespace=ns, pods=selector(SCHEMA))
        backup_job = Peer(namespace=ns, pods=selector(BACKUP))
        policies = [
            allow_ingress("clickhouse-from-operator", ns, CHI_LABELS, [operator], [HTTP_PORT, NATIVE_PORT], opts),
            allow_ingress("clickhouse-from-schema-job", ns, CHI_LABELS, [schema_job], [NATIVE_PORT], opts),
            allow_ingress("clickhouse-from-backup-job", ns, CHI_LABELS, [backup_job], [NATIVE_PORT], opts),
            allow_ingress("clickhouse-from-clients", ns, CHI_LABELS, [client_peer("clickhouse", [stores.observability_ns])], [HTTP_PORT], opts),
            allow_ingress("clickhouse-metrics-scrape", ns, CHI_LABELS, [stores.prometheus], [METRICS_PORT], opts),
            allow_egress("clickhouse-to-kafka", ns, CHI_LABELS, [Peer(namespace=ns, pods=KAFKA_LABELS)], [9093], opts),
            allow_egress("clickhouse-to-backup-target", ns, CHI_LABELS, [backups.peer], [backups.port], opts),
            allow_egress("clickhouse-operator-to-api-server", ops, {"app.kubernetes.io/name": "altinity-clickhouse-operator"},
                         [stores.api_server], API_SERVER_PORTS, opts),
            allow_egress("clickhouse-operator-to-clickhouse", ops, {"app.kubernetes.io/name": "altinity-clickhouse-operator"},
                         [replicas], [HTTP_PORT, NATIVE_PORT], opts),
        ]
        if replicated:
            keeper = Peer(namespace=ns, pods=KEEPER_LABELS)
            policies += [
                allow_ingress("clickhouse-from-replicas", ns, CHI_LABELS, [replicas], [NATIVE_PORT, INTERSERVER_PORT], opts),
                allow_egress("clickhouse-to-replicas", ns, CHI_LABELS, [replicas], [NATIVE_PORT, INTERSERVER_PORT], opts),
                allow_egress("clickhouse-to-keeper", ns, CHI_LABELS, [keeper], [KEEPER_PORT], opts),
                allow_ingress("keeper-from-clickhouse", ns, KEEPER_LABELS, [replicas, operator], [KEEPER_PORT], opts),
                allow_ingress("keeper-from-peers", ns, KEEPER_LABELS, [keeper], [KEEPER_RAFT_PORT], opts),
                allow_egress("keeper-to-peers", ns, KEEPER_LABELS, [keeper], [KEEPER_RAFT_PORT], opts),
            ]
        return policies
