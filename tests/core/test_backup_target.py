"""Backups leave the cluster in prod: every stream writes to the off-cluster bucket named by the
stack, with keys an administrator keeps in Vault, through egress opened to that target only;
dev may keep them in the in-cluster MinIO, and a mandatory stack may only with a stated reason."""
from __future__ import annotations

import json

import pytest

from components import settings as platform_settings
from tools.render import stack_config

SHARED_PATH = "backups/offsite"


def prod_with_backups(change) -> dict:
    """The prod stack's configuration with ``core.backups`` passed through ``change``."""
    config = stack_config("prod")
    core = json.loads(config["somaagenthub:core"])
    core["backups"] = change(dict(core["backups"]))
    return {**config, "somaagenthub:core": json.dumps(core)}


def kinds(plan: dict, kind: str) -> list[dict]:
    return [r for r in plan["resources"] if r["inputs"].get("kind") == kind]


def named(plan: dict, kind: str, name: str) -> dict:
    (found,) = [r for r in kinds(plan, kind) if r["inputs"]["metadata"]["name"] == name]
    return found


def test_prod_without_an_offsite_target_is_refused_naming_the_key():
    config = prod_with_backups(lambda b: {k: v for k, v in b.items() if k != "offsite"})
    with pytest.raises(platform_settings.SettingsError, match=r"core\.backups\.offsite: policyEnforcement is mandatory"):
        platform_settings.parse(config, "prod")


def test_a_stated_reason_lets_a_mandatory_stack_keep_backups_in_the_cluster():
    config = prod_with_backups(lambda b: {"maxAgeHours": 26, "inClusterReason": "an air-gapped site; tapes leave weekly"})
    parsed = platform_settings.parse(config, "prod")
    assert parsed.core.backups.offsite is None


@pytest.mark.parametrize(("key", "value", "message"), [
    ("endpoint", "http://backup.example.com", "https URL"),
    ("egressCidr", "0.0.0.0/0", "too broad"),
    ("bucket", "Soma_Backups", "an S3 bucket name"),
    ("credentialsPath", "backups/*", "KV path"),
])
def test_a_bad_offsite_field_is_named(key, value, message):
    config = prod_with_backups(lambda b: {**b, "offsite": {**b["offsite"], key: value}})
    with pytest.raises(platform_settings.SettingsError, match=rf"core\.backups\.offsite\.{key}: .*{message}"):
        platform_settings.parse(config, "prod")


def test_prod_postgres_archives_to_the_offsite_bucket_under_its_own_prefix(plans):
    cluster = named(plans["prod"], "Cluster", "app-db")
    store = cluster["inputs"]["spec"]["backup"]["barmanObjectStore"]
    assert store["destinationPath"] == "s3://soma-prod-backups/postgres-backups/"
    assert store["endpointURL"] == "https://backup.soma.example.com"
    assert store["s3Credentials"]["accessKeyId"]["name"] == "offsite-backups-credentials"


def test_dev_postgres_archives_to_the_in_cluster_minio(plans):
    store = named(plans["dev"], "Cluster", "app-db")["inputs"]["spec"]["backup"]["barmanObjectStore"]
    assert store["destinationPath"] == "s3://postgres-backups/"
    assert store["endpointURL"].startswith("http://minio.")


def test_prod_backup_writers_egress_reaches_the_target_range_on_443_only(plans):
    for name in ("postgres-to-backup-target", "clickhouse-to-backup-target", "vault-snapshot-egress-1"):
        egress = named(plans["prod"], "NetworkPolicy", name)["inputs"]["spec"]["egress"]
        assert egress == [{"to": [{"ipBlock": {"cidr": "192.0.2.0/24"}}], "ports": [{"port": 443, "protocol": "TCP"}]}], name


def test_the_offsite_keys_come_from_the_administrators_vault_path_only(plans):
    prod = plans["prod"]
    secrets = [r for r in kinds(prod, "ExternalSecret") if r["inputs"]["metadata"]["name"] == "offsite-backups-credentials"]
    assert sorted(r["inputs"]["metadata"]["namespace"] for r in secrets) == ["soma-data", "soma-secrets"]
    for secret in secrets:
        assert {d["remoteRef"]["key"] for d in secret["inputs"]["spec"]["data"]} == {SHARED_PATH}
    written = [r["inputs"]["name"] for r in prod["resources"] if r["type"] == "vault:kv/secretV2:SecretV2"]
    assert SHARED_PATH not in written, "the program must never write the target's keys"
    policies = [r for r in prod["resources"] if r["type"] == "vault:index/policy:Policy" and "offsite" in r["name"]]
    # one reader per writer namespace: PostgreSQL and ClickHouse (soma-data), the Raft snapshots (soma-secrets)
    assert sorted(r["inputs"]["name"] for r in policies) == ["soma-data-offsite-backups", "soma-secrets-offsite-backups"]
    for policy in policies:
        assert f'path "platform/data/{SHARED_PATH}"' in policy["inputs"]["policy"]
        assert "*" not in policy["inputs"]["policy"].split("# Everything not granted")[1]
