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
    store = named(plans["prod"], "ObjectStore", "app-db-backups")["inputs"]["spec"]
    config = store["configuration"]
    assert config["destinationPath"] == "s3://soma-prod-backups/postgres-backups/"
    assert config["endpointURL"] == "https://backup.soma.example.com"
    assert config["s3Credentials"]["accessKeyId"]["name"] == "offsite-backups-credentials"
    assert "serverName" not in config, "the plugin wants the server name in the Cluster's parameters"
    assert {"name": "AWS_DEFAULT_REGION", "value": "eu-central-1"} in store["instanceSidecarConfiguration"]["env"]


def test_dev_postgres_archives_to_the_in_cluster_minio(plans):
    config = named(plans["dev"], "ObjectStore", "app-db-backups")["inputs"]["spec"]["configuration"]
    assert config["destinationPath"] == "s3://postgres-backups/"
    assert config["endpointURL"].startswith("http://minio.")


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


def _selected(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def _admits(policy: dict, namespace: str, labels: dict, port: int) -> bool:
    """Does this ingress NetworkPolicy admit a pod with ``labels`` in ``namespace`` on ``port``?"""
    for rule in policy["spec"].get("ingress") or []:
        if rule.get("ports") and not any(p.get("port") == port for p in rule["ports"]):
            continue
        for peer in rule.get("from") or []:
            ns_sel = peer.get("namespaceSelector")
            ns_ok = ns_sel is None and policy["metadata"]["namespace"] == namespace or ns_sel is not None and (
                not ns_sel or _selected(ns_sel, {"kubernetes.io/metadata.name": namespace}) and all(
                    namespace in e["values"] for e in ns_sel.get("matchExpressions", [])))
            if ns_ok and _selected(peer.get("podSelector") or {}, labels):
                return True
    return False


def test_in_dev_every_backup_writer_that_reaches_for_minio_is_admitted_by_it(plans):
    """An egress rule alone is half a flow: MinIO admits its clients by namespace and label."""
    dev = plans["dev"]
    minio_ingress = [p for p in kinds(dev, "NetworkPolicy") if "Ingress" in p["inputs"]["spec"].get("policyTypes", [])
                     and (p["inputs"]["spec"]["podSelector"].get("matchLabels") or {}).get("app.kubernetes.io/name") == "minio"]
    assert minio_ingress
    writers = 0
    for job in kinds(dev, "CronJob"):
        spec = job["inputs"]["spec"]
        labels = spec["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
        namespace = job["inputs"]["metadata"]["namespace"]
        egress = [p["inputs"] for p in kinds(dev, "NetworkPolicy") if p["inputs"]["metadata"]["namespace"] == namespace
                  and "Egress" in p["inputs"]["spec"].get("policyTypes", []) and _selected(p["inputs"]["spec"]["podSelector"], labels)]
        to_minio = [rule for p in egress for rule in p["spec"].get("egress") or []
                    if any((peer.get("podSelector") or {}).get("matchLabels", {}).get("app.kubernetes.io/name") == "minio" for peer in rule.get("to") or [])]
        if not to_minio:
            continue
        writers += 1
        assert any(_admits(p["inputs"], namespace, labels, 9000) for p in minio_ingress), job["inputs"]["metadata"]["name"]
    assert writers >= 1, "the dev stack keeps backups in MinIO, so some backup CronJob writes there"
