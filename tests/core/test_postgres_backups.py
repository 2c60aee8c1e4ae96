"""PostgreSQL backs up through the Barman Cloud plugin: the plugin next to the operator, an ObjectStore
on the backup target, the Cluster's WAL archiver and the ScheduledBackup pointing at it, the flows
between operator and plugin, and the plugin's own newest-backup metric watched for age."""
from __future__ import annotations

import pytest

from components.catalog import load
from components.core.data import postgres
from tests.helpers import objects

STACKS = ("dev", "staging", "prod")


def one(plan: dict, kind: str, name: str) -> dict:
    (found,) = [o for o in objects(plan, kind) if o["metadata"]["name"] == name]
    return found


def policy(plan: dict, name: str) -> dict:
    return one(plan, "NetworkPolicy", name)["spec"]


@pytest.mark.parametrize("stack", STACKS)
def test_the_cluster_archives_through_the_plugin_and_its_object_store(plans, stack):
    cluster = one(plans[stack], "Cluster", "app-db")
    (plugin,) = cluster["spec"]["plugins"]
    assert plugin["name"] == "barman-cloud.cloudnative-pg.io" and plugin["isWALArchiver"] is True
    store = one(plans[stack], "ObjectStore", plugin["parameters"]["barmanObjectName"])
    assert store["metadata"]["namespace"] == cluster["metadata"]["namespace"]
    assert plugin["parameters"]["serverName"] == "app-db", "the folder the in-tree archiver used, so old backups stay restorable"
    assert "backup" not in cluster["spec"]
    scheduled = one(plans[stack], "ScheduledBackup", "app-db-daily")["spec"]
    assert scheduled["pluginConfiguration"]["name"] == plugin["name"] and scheduled["method"] == "plugin"


@pytest.mark.parametrize("stack", STACKS)
def test_the_plugin_runs_beside_the_operator_with_catalogued_images(plans, stack):
    plan = plans[stack]
    operator = one(plan, "Deployment", "cloudnative-pg")
    deployment = one(plan, "Deployment", "plugin-barman-cloud")
    assert deployment["metadata"]["namespace"] == operator["metadata"]["namespace"], "CNPG finds plugins in its own namespace"
    from tests.core.test_core_data import loaded
    expected = load(registry=loaded(stack).registry)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == expected.image("plugin-barman-cloud").reference
    config = one(plan, "ConfigMap", "plugin-barman-cloud-config")["data"]
    assert config["SIDECAR_IMAGE"] == expected.image("plugin-barman-cloud-sidecar").reference
    assert {c["metadata"]["name"] for c in objects(plan, "Certificate")} >= {"barman-cloud-client", "barman-cloud-server"}


@pytest.mark.parametrize("stack", STACKS)
def test_the_operator_reaches_the_plugin_grpc_and_nothing_else_is_opened_to_it(plans, stack):
    plan = plans[stack]
    service = one(plan, "Service", "barman-cloud")
    (port,) = service["spec"]["ports"]
    assert service["metadata"]["labels"]["cnpg.io/pluginName"] == postgres.PLUGIN
    selector = service["spec"]["selector"]
    ingress = policy(plan, "barman-cloud-from-operator")
    assert ingress["podSelector"]["matchLabels"] == selector
    assert ingress["ingress"][0]["ports"] == [{"port": port["targetPort"], "protocol": "TCP"}]
    assert ingress["ingress"][0]["from"][0]["podSelector"]["matchLabels"] == postgres.OPERATOR_LABELS
    egress = policy(plan, "cloudnative-pg-to-barman-cloud")
    assert egress["egress"][0]["to"][0]["podSelector"]["matchLabels"] == selector
    flows_into_plugin = [
        o["metadata"]["name"] for o in objects(plan, "NetworkPolicy")
        if "Ingress" in o["spec"]["policyTypes"] and o["spec"]["podSelector"].get("matchLabels") == selector
    ]
    assert flows_into_plugin == ["barman-cloud-from-operator"]


def test_the_newest_backup_metric_is_the_one_the_plugin_derives_from_its_name():
    # plugin-barman-cloud v0.13.0 internal/cnpgi/instance/metrics.go: "." and "-" become "_".
    domain = postgres.PLUGIN.replace(".", "_").replace("-", "_")
    assert postgres.NEWEST_BACKUP_METRIC == f"{domain}_last_available_backup_timestamp"


@pytest.mark.parametrize("stack", STACKS)
def test_backup_age_watches_the_plugin_metric_not_the_retired_in_tree_one(plans, stack):
    (rule,) = [o for o in objects(plans[stack], "PrometheusRule") if o["metadata"]["name"] == "soma-backup-age"]
    exprs = [r["expr"] for r in rule["spec"]["groups"][0]["rules"] if r["labels"]["stream"] == "postgres"]
    assert exprs and all(postgres.NEWEST_BACKUP_METRIC in e for e in exprs)
    assert not any("cnpg_collector_last_available_backup_timestamp" in e for e in exprs)


@pytest.mark.parametrize("stack", STACKS)
def test_the_object_store_keeps_backups_for_the_configured_days_and_sizes_the_sidecar(plans, stack):
    from tests.core.test_core_data import loaded
    store = one(plans[stack], "ObjectStore", "app-db-backups")["spec"]
    assert store["retentionPolicy"] == f"{loaded(stack).core.postgres.backup_retention_days}d"
    resources = store["instanceSidecarConfiguration"]["resources"]
    assert set(resources) == {"requests", "limits"} and set(resources["limits"]) == {"cpu", "memory"}
