"""Every backup stream pages when its newest backup is older than the stack allows, or when it has
none: one generated rule, threshold from ``core.backups.maxAgeHours``."""
from __future__ import annotations

import pytest

from components.core.backup_watch import BackupWatch, cronjob_watch, rule_spec
from components.core.observability.catalog import _alert_spec_problems, promql_problem
from components import settings
from tests.helpers import objects
from tools.render import stack_config


def test_each_stream_gets_a_too_old_and_a_never_succeeded_alert_with_the_configured_age():
    watches = [BackupWatch("postgres", "PostgreSQL base backup", "max(x_timestamp)"),
               cronjob_watch("qdrant", "Qdrant snapshot", "soma-data", "qdrant-snapshot")]
    spec = rule_spec(watches, 26)
    rules = spec["groups"][0]["rules"]
    assert [(r["alert"], r["labels"]["stream"]) for r in rules] == [
        ("BackupTooOld", "postgres"), ("BackupNeverSucceeded", "postgres"),
        ("BackupTooOld", "qdrant"), ("BackupNeverSucceeded", "qdrant")]
    assert rules[0]["expr"] == "time() - (max(x_timestamp)) > 93600"
    assert 'kube_cronjob_status_last_successful_time{namespace="soma-data", cronjob="qdrant-snapshot"}' in rules[2]["expr"]
    assert rules[3]["for"] == "26h"
    assert _alert_spec_problems(spec) == []
    assert [promql_problem(r["expr"]) for r in rules] == [None] * 4


def test_a_stream_watched_twice_is_refused():
    with pytest.raises(ValueError, match="watched twice: \\['postgres'\\]"):
        rule_spec([BackupWatch("postgres", "a", "x"), BackupWatch("postgres", "b", "y")], 26)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_stack_watches_its_backup_streams_at_its_own_age(plans, stack):
    (rule,) = [o for o in objects(plans[stack], "PrometheusRule") if o["metadata"]["name"] == "soma-backup-age"]
    rules = rule["spec"]["groups"][0]["rules"]
    loaded = settings.parse(stack_config(stack), stack)
    seconds = loaded.core.backups.max_age_hours * 3600
    streams = {r["labels"]["stream"] for r in rules}
    raft = {"vault-raft"} if loaded.core.vault.mode == "raft" else set()
    assert streams == {"postgres", "clickhouse", "qdrant"} | raft, "every backup stream of the stack is watched"
    too_old = [r for r in rules if r["alert"] == "BackupTooOld"]
    assert all(r["expr"].endswith(f"> {seconds}") for r in too_old)
    postgres = next(r for r in too_old if r["labels"]["stream"] == "postgres")
    assert 'namespace="soma-data"' in postgres["expr"]
