"""Core data stores: each exists with the stack's sizing, wired to Vault/ESO and to each other."""
from __future__ import annotations

import json

import pytest

from components import settings
from components.core.audit.sql_templates import AuditSqlSettings, render_named_statements
from components.core.cost import schema_statements as cost_schema_statements
from components.core.data.minio import bucket_policy, setup_script
from components.kit import JobArgs, WorkloadArgs
from components.settings import Resources
from tests.helpers import by_type, objects
from tools.render import stack_config

STACKS = ("dev", "staging", "prod")
CHART = "kubernetes:helm.sh/v4:Chart"


def loaded(stack: str) -> settings.PlatformSettings:
    return settings.parse(stack_config(stack), stack)


def one(plan: dict, kind: str, name: str) -> dict:
    (found,) = [o for o in objects(plan, kind) if o["metadata"]["name"] == name]
    return found


def chart_values(plan: dict, name: str) -> dict:
    return next(r["inputs"]["values"] for r in by_type(plan, CHART) if r["name"] == name)


@pytest.mark.parametrize("stack", STACKS)
def test_postgres_cluster_follows_the_settings(plans, stack):
    s = loaded(stack).core.postgres
    spec = one(plans[stack], "Cluster", "app-db")["spec"]
    assert spec["instances"] == s.instances
    assert spec["storage"]["size"] == s.storage and spec["walStorage"]["size"] == s.wal_storage
    assert "backup" not in spec, "the in-tree Barman object store is deprecated; the plugin archives"
    store = one(plans[stack], "ObjectStore", "app-db-backups")["spec"]
    assert store["retentionPolicy"] == f"{s.backup_retention_days}d"
    offsite = loaded(stack).core.backups.offsite
    expected = f"s3://{offsite.bucket}/postgres-backups/" if offsite else "s3://postgres-backups/"
    assert store["configuration"]["destinationPath"] == expected
    assert "@sha256:" in spec["imageName"]
    scheduled = one(plans[stack], "ScheduledBackup", "app-db-daily")["spec"]
    assert scheduled["schedule"] == s.backup_schedule
    assert (scheduled["method"], scheduled["pluginConfiguration"]) == ("plugin", {"name": "barman-cloud.cloudnative-pg.io"})
    assert {o["spec"]["name"] for o in objects(plans[stack], "Database")} == {"openfga", "identity", "orchestrator", "memory", "grafana"}
    if s.instances > 1:
        assert spec["postgresql"]["synchronous"] == {"method": "any", "number": 1, "dataDurability": "required"}
        assert spec["affinity"]["podAntiAffinityType"] == "required"
    else:
        assert "postgresql" not in spec


def test_dev_is_small_and_prod_is_highly_available(plans):
    assert one(plans["dev"], "Cluster", "app-db")["spec"]["instances"] == 1
    assert one(plans["prod"], "Cluster", "app-db")["spec"]["instances"] == 3
    dev_pools = {o["metadata"]["name"]: o["spec"] for o in objects(plans["dev"], "KafkaNodePool")}
    prod_pools = {o["metadata"]["name"]: o["spec"] for o in objects(plans["prod"], "KafkaNodePool")}
    assert dev_pools.keys() == {"dual"} and dev_pools["dual"]["replicas"] == 1
    assert prod_pools["controllers"]["replicas"] == 3 and prod_pools["controllers"]["roles"] == ["controller"]
    assert prod_pools["brokers"]["replicas"] == 3 and prod_pools["brokers"]["roles"] == ["broker"]
    assert not objects(plans["dev"], "ClickHouseKeeperInstallation") and objects(plans["prod"], "ClickHouseKeeperInstallation")


@pytest.mark.parametrize("stack", STACKS)
def test_kafka_is_tls_only_with_users_acls_and_the_audit_topic(plans, stack):
    s = loaded(stack).core.kafka
    kafka = one(plans[stack], "Kafka", "platform")["spec"]["kafka"]
    assert [(listener["port"], listener["tls"]) for listener in kafka["listeners"]] == [(9093, True)]
    assert kafka["listeners"][0]["authentication"] == {"type": "scram-sha-512"}
    assert kafka["version"] == "4.3.1" and "@sha256:" in kafka["image"]
    sizes = {o["metadata"]["name"]: o["spec"]["storage"]["volumes"][0]["size"] for o in objects(plans[stack], "KafkaNodePool")}
    expected = {"controllers": s.controller_storage, "brokers": s.storage} if "controllers" in sizes else {"dual": s.storage}
    assert sizes == expected
    topic = one(plans[stack], "KafkaTopic", "platform-audit-v1")["spec"]
    assert topic["topicName"] == "platform.audit.v1"
    assert topic["partitions"] == s.audit_partitions
    assert topic["config"]["retention.ms"] == s.audit_retention_hours * 3_600_000
    users = {o["metadata"]["name"]: o["spec"] for o in objects(plans[stack], "KafkaUser")}
    consumer = users["clickhouse-audit"]
    assert consumer["authentication"]["password"]["valueFrom"]["secretKeyRef"]["name"] == "kafka-users-clickhouse-audit"
    acl_targets = {(a["resource"]["type"], a["resource"]["name"], tuple(a["operations"])) for a in consumer["authorization"]["acls"]}
    assert acl_targets == {("topic", "platform.audit.v1", ("Read", "Describe")), ("group", "clickhouse-audit", ("Read",))}
    producer = users["audit-producer"]["authorization"]["acls"]
    assert [a["operations"] for a in producer] == [["Write", "Describe"]]


@pytest.mark.parametrize("stack", STACKS)
def test_clickhouse_gets_the_rendered_audit_sql_and_its_sizing(plans, stack):
    s = loaded(stack).core.clickhouse
    chi = one(plans[stack], "ClickHouseInstallation", "audit")["spec"]
    layout = chi["configuration"]["clusters"][0]["layout"]
    assert (layout["shardsCount"], layout["replicasCount"]) == (s.shards, s.replicas)
    claim = chi["templates"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
    assert claim == s.storage
    replicated = s.replicas > 1
    expected = render_named_statements(AuditSqlSettings(
        brokers="platform-kafka-bootstrap.soma-data.svc:9093", topic="platform.audit.v1", consumer_group="clickhouse-audit",
        retention_days=s.audit_retention_days, replicated=replicated, cluster="audit" if replicated else "",
    ))
    config = one(plans[stack], "ConfigMap", "clickhouse-audit-schema")["data"]
    settings = AuditSqlSettings(brokers="platform-kafka-bootstrap.soma-data.svc:9093", topic="platform.audit.v1",
                                consumer_group="clickhouse-audit", retention_days=s.audit_retention_days,
                                replicated=replicated, cluster="audit" if replicated else "")
    assert {k: v for k, v in config.items() if k.endswith(".sql")} == dict(expected) | dict(cost_schema_statements(settings))
    for user, value in chi["configuration"]["users"].items():
        if user.endswith("/password"):
            assert set(value) == {"valueFrom"}, user
    pod = chi["templates"]["podTemplates"][0]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["containers"][0]["securityContext"]["runAsUser"] == 101
    job = one(plans[stack], "Job", "clickhouse-audit-schema")
    assert job["spec"]["template"]["spec"]["containers"][0]["env"][-1]["valueFrom"]["secretKeyRef"]["name"] == "clickhouse-users"


@pytest.mark.parametrize("stack", STACKS)
def test_operator_charts_disable_what_could_not_be_pinned(plans, stack):
    altinity = chart_values(plans[stack], "clickhouse-operator")
    assert altinity["metrics"]["enabled"] is False and altinity["crdHook"]["enabled"] is False
    assert altinity["secret"]["create"] is False
    strimzi = chart_values(plans[stack], "strimzi")
    assert strimzi["image"]["digest"].startswith("sha256:")


@pytest.mark.parametrize("stack", STACKS)
def test_qdrant_is_unprivileged_sized_and_keyed_from_vault(plans, stack):
    s = loaded(stack).core.qdrant
    values = chart_values(plans[stack], "qdrant")
    assert values["replicaCount"] == s.replicas and values["persistence"]["size"] == s.storage
    assert values["apiKey"] is False and values["updateVolumeFsOwnership"] is False
    (env,) = values["env"]
    assert env["valueFrom"]["secretKeyRef"]["name"] == "qdrant-api-key"
    assert values["containerSecurityContext"]["readOnlyRootFilesystem"] is True
    assert values["podDisruptionBudget"]["enabled"] is (s.replicas > 1)


@pytest.mark.parametrize("stack", STACKS)
def test_minio_runs_hardened_with_one_volume_per_drive(plans, stack):
    s = loaded(stack).core.minio
    sts = one(plans[stack], "StatefulSet", "minio")["spec"]
    assert sts["replicas"] == s.servers
    assert len(sts["volumeClaimTemplates"]) == s.volumes_per_server
    assert all(c["spec"]["resources"]["requests"]["storage"] == s.volume_size for c in sts["volumeClaimTemplates"])
    assert sts["podManagementPolicy"] == "Parallel" and sts["serviceName"] == "minio-headless"
    container = sts["template"]["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    env = {e["name"]: e for e in container["env"]}
    assert "valueFrom" in env["MINIO_ROOT_PASSWORD"] and "value" not in env["MINIO_ROOT_PASSWORD"]


@pytest.mark.parametrize("stack", STACKS)
def test_buckets_have_their_own_users_versioning_and_retention(plans, stack):
    days = loaded(stack).core.minio.backup_retention_days
    data = one(plans[stack], "ConfigMap", "minio-setup")["data"]
    if loaded(stack).core.backups.offsite:
        assert not [key for key in data if "backups" in key or "snapshots" in key], "backups go off the cluster, not to MinIO"
        return
    for bucket in ("postgres-backups", "clickhouse-backups", "qdrant-snapshots", "vault-snapshots"):
        rules = json.loads(data[f"lifecycle-{bucket}.json"])["Rules"]
        assert rules[0]["NoncurrentVersionExpiration"] == {"NoncurrentDays": days}
        assert f"mc version enable platform/{bucket}" in data["setup.sh"]
    assert "Expiration" not in json.loads(data["lifecycle-postgres-backups.json"])["Rules"][0]
    for bucket in ("postgres-backups", "clickhouse-backups", "loki", "tempo"):
        policy = json.loads(data[f"policy-{bucket}.json"])
        resources = {r for statement in policy["Statement"] for r in statement["Resource"]}
        assert resources == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"}


def test_a_bucket_user_may_touch_its_own_bucket_only():
    policy = bucket_policy("loki")
    resources = {r for statement in policy["Statement"] for r in statement["Resource"]}
    assert resources == {"arn:aws:s3:::loki", "arn:aws:s3:::loki/*"}
    assert all(statement["Effect"] == "Allow" for statement in policy["Statement"])
    actions = {a for statement in policy["Statement"] for a in statement["Action"]}
    assert not any(a.startswith("admin:") or a == "s3:*" or a.endswith("BucketPolicy") for a in actions)


def test_the_setup_script_stops_at_the_first_failure():
    commands = [line.strip() for line in setup_script({}).splitlines() if line.strip() and not line.startswith("#")]
    assert commands[0] == "set -eu", "a failed mc command must fail the Job, not be skipped"


@pytest.mark.parametrize("stack", STACKS)
def test_each_bucket_consumer_gets_its_keys_through_external_secrets(plans, stack):
    keys = {
        (o["metadata"]["namespace"], o["metadata"]["name"]): sorted(d["secretKey"] for d in o["spec"]["data"])
        for o in objects(plans[stack], "ExternalSecret")
    }
    in_cluster = {("soma-data", "app-db-backups"), ("soma-data", "clickhouse-backups"), ("soma-data", "qdrant-backup-backups")}
    offsite = {("soma-data", "offsite-backups-credentials")}
    if loaded(stack).core.vault.mode == "raft":  # the Raft snapshot job writes from the secrets namespace
        in_cluster |= {("soma-secrets", "vault-snapshot-backups")}
        offsite |= {("soma-secrets", "offsite-backups-credentials")}
    expected = {("soma-observability", "loki-bucket"), ("soma-observability", "tempo-bucket")}
    expected |= offsite if loaded(stack).core.backups.offsite else in_cluster
    assert not (in_cluster | offsite) - expected & set(keys), "backup keys of the other target were delivered too"
    assert expected <= set(keys)
    assert all(keys[consumer] == ["access-key-id", "secret-access-key"] for consumer in expected)


def test_kit_job_is_hardened_and_reruns_when_its_inputs_change(plans):
    job = one(plans["dev"], "Job", "minio-setup")
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["automountServiceAccountToken"] is False and pod["restartPolicy"] == "Never"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True and container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    from components.kit.job import Job
    base = JobArgs(name="x", namespace="n", component="c", image="minio", command=("true",), resources=Resources("1m", "1Mi", "1m", "1Mi"))
    from components.kit.job import ScriptFiles
    changed = JobArgs(**{**base.__dict__, "files": ScriptFiles("/config", {"setup.sh": "new script"})})
    assert Job.checksum(base, "img") != Job.checksum(changed, "img")
    with pytest.raises(ValueError):
        JobArgs(name="x", namespace="n", component="c", image="minio", command=(), resources=base.resources)


def test_kit_workload_refuses_several_volumes_without_a_statefulset():
    r = Resources("1m", "1Mi", "1m", "1Mi")
    with pytest.raises(ValueError):
        WorkloadArgs(name="x", namespace="n", component="c", image="minio", port=1, resources=r, volumes_per_replica=2)
    with pytest.raises(ValueError):
        WorkloadArgs(name="x", namespace="n", component="c", image="minio", port=9000, metrics_port=9000, resources=r, metrics_on_service_port=True)


def test_minio_metrics_are_scraped_through_the_uniform_metrics_port(plans):
    sts = one(plans["dev"], "StatefulSet", "minio")["spec"]["template"]["spec"]["containers"][0]
    assert {p["name"]: p["containerPort"] for p in sts["ports"]} == {"http": 9000, "metrics": 9000}
    (monitor,) = [m for m in objects(plans["dev"], "ServiceMonitor") if m["metadata"]["name"] == "minio"]
    assert monitor["spec"]["endpoints"][0]["path"] == "/minio/v2/metrics/cluster" and monitor["spec"]["endpoints"][0]["port"] == "metrics"


# --- store clients: the label AND the namespaces that hold the store's credentials -----------------

CLIENT_POLICIES = {
    "postgres": ("postgres-from-clients", lambda s: {s.governance.namespaces["governance"].name, s.agents.namespaces["agents"].name,
                                                     s.core.namespaces.observability.name}),
    "clickhouse": ("clickhouse-from-clients", lambda s: {s.core.namespaces.observability.name}),
    "qdrant": ("qdrant-from-clients", lambda s: {s.agents.namespaces["agents"].name}),
    # Loki and Tempo always; the backup writers (data: PostgreSQL, ClickHouse, Qdrant; secrets: Vault
    # snapshots) only where backups stay in the cluster.
    "minio": ("minio-callers", lambda s: {s.core.namespaces.observability.name} | (
        {s.core.namespaces.data.name, s.core.namespaces.secrets.name} if s.core.backups.offsite is None else set())),
}


def client_peers(policy: dict, store: str) -> list[dict]:
    """The peers of ``policy`` that admit by the store's client label."""
    from components.kit.labels import client_label

    return [
        peer for rule in policy["spec"]["ingress"] for peer in rule["from"]
        if client_label(store).items() <= peer.get("podSelector", {}).get("matchLabels", {}).items()
    ]


def admits(peer: dict, namespace: str, labels: dict[str, str]) -> bool:
    """Whether a NetworkPolicy peer selects a pod with ``labels`` in ``namespace`` (the selector forms the kit writes)."""
    if not peer["podSelector"].get("matchLabels", {}).items() <= labels.items():
        return False
    selector = peer.get("namespaceSelector")
    if selector is None:
        return False  # the policy's own namespace is handled by callers that need it
    if selector == {}:
        return True
    by_name = {"kubernetes.io/metadata.name": namespace}
    if not selector.get("matchLabels", {}).items() <= by_name.items():
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In" and expression["key"] == "kubernetes.io/metadata.name", expression
        if namespace not in expression["values"]:
            return False
    return True


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("store", sorted(CLIENT_POLICIES))
def test_store_clients_need_the_label_and_a_namespace_holding_the_credentials(plans, stack, store):
    from components.kit.labels import client_label

    name, namespaces_of = CLIENT_POLICIES[store]
    expected = namespaces_of(loaded(stack))
    policy = one(plans[stack], "NetworkPolicy", name)
    (peer,) = client_peers(policy, store)
    assert peer == {
        "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": sorted(expected)}]},
        "podSelector": {"matchLabels": client_label(store)},
    }
    label = client_label(store)
    every_namespace = set(loaded(stack).all_namespaces()) | {"default", "kube-system", "intruder"}
    admitted = {ns for ns in every_namespace if any(admits(p, ns, label) for r in policy["spec"]["ingress"] for p in r["from"])}
    assert admitted == expected
    assert not any(admits(p, "intruder", {**label, "app.kubernetes.io/name": "x"}) for r in policy["spec"]["ingress"] for p in r["from"])
    assert not any(admits(p, ns, {"app.kubernetes.io/name": "unlabelled"}) for ns in expected for r in policy["spec"]["ingress"] for p in r["from"])


def test_the_admission_check_notices_a_label_only_peer(plans):
    from components.kit.labels import client_label

    label_only = {"namespaceSelector": {}, "podSelector": {"matchLabels": client_label("postgres")}}
    assert admits(label_only, "intruder", client_label("postgres"))


def test_database_owners_decide_the_postgres_client_namespaces():
    from components.core.data.common import ClientNamespaces
    from components.core.data.postgres import DATABASE_OWNERS, DATABASES

    assert set(DATABASES) == set(DATABASE_OWNERS) == {"openfga", "identity", "orchestrator", "memory", "grafana"}
    clients = ClientNamespaces.of(loaded("prod"))
    assert (clients.governance, clients.agents) == ("soma-governance", "soma-agents")
    assert clients.workloads == tuple(sorted(loaded("prod").workload_namespaces())) and "soma-agents" in clients.workloads
    assert loaded("prod").core.namespaces.node_logs.name not in clients.workloads, "the node log agent sends nothing to the collector"


@pytest.mark.parametrize("stack", STACKS)
def test_clickhouse_users_accept_the_pod_network_only(plans, stack):
    """Not ::/0: a leaked password is useless from outside the cluster's pod network."""
    pod_cidr = settings.parse(stack_config(stack), stack).core.pod_cidr
    (chi,) = objects(plans[stack], "ClickHouseInstallation")
    users = chi["spec"]["configuration"]["users"]
    networks = {key: value for key, value in users.items() if key.endswith("/networks/ip")}
    assert networks and all(value == [pod_cidr] for value in networks.values()), networks


@pytest.mark.parametrize("stack", STACKS)
def test_the_kafka_listener_admits_only_labelled_clients_of_the_named_namespaces(plans, stack):
    parsed = settings.parse(stack_config(stack), stack)
    expected = sorted({parsed.core.namespaces.data.name, parsed.governance.namespaces["governance"].name,
                       parsed.agents.namespaces["agents"].name})
    (kafka,) = objects(plans[stack], "Kafka")
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    (peer,) = listener["networkPolicyPeers"]
    assert peer["podSelector"] == {"matchLabels": {"somaagenthub.io/kafka-client": "true"}}
    (expression,) = peer["namespaceSelector"]["matchExpressions"]
    assert (expression["key"], expression["operator"], expression["values"]) == ("kubernetes.io/metadata.name", "In", expected)


def test_no_kafka_credential_leaves_the_data_namespace_without_a_deployed_producer(plans):
    """Core grants Kafka producer access only to a service that asks (CoreOutputs.kafka_producer; the Agents tests
    render one per auditing service), and the stack files deploy none: no producer grant, no CA copy or reader, no
    flow to the brokers from a later phase (docs/architecture/compliance.md: a credential with no consumer is only
    exposure)."""
    from components.core.data import ClientNamespaces

    kinds = ("ExternalSecret", "SecretStore", "ServiceAccount", "Role", "RoleBinding", "NetworkPolicy")
    for stack, plan in plans.items():
        later = {ns for names in ClientNamespaces.of(loaded(stack)).phases.values() for ns in names}
        leaked = [f"{o['kind']} {o['metadata']['namespace']}/{o['metadata']['name']}" for o in objects(plan)
                  if o["kind"] in kinds and o["metadata"].get("namespace") in later and "kafka" in json.dumps(o)]
        leaked += [f"{o['kind']} {o['metadata']['name']}" for o in objects(plan) if o["kind"] in kinds
                   and o["metadata"]["name"].startswith(("kafka-from-", "kafka-cluster-ca-reader"))]
        leaked += [r["inputs"]["name"] for r in plan["resources"] if r["type"] == "vault:kv/secretV2:SecretV2"
                   and not r["inputs"]["name"].startswith("soma-data/") and r["inputs"]["name"].endswith("/kafka")]
        assert leaked == [], (stack, leaked)
