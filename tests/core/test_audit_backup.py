"""ClickHouse backups of the audit database: the shipped BACKUP/RESTORE statements run in chdb, the
backup CronJob's own script and awk fill the S3 arguments from its environment, and the rendered
stack wires user, job, flows and age alert together.

What runs for real: chdb (embedded ClickHouse 26.9; the server image is 26.3) executes the audit DDL,
``BACKUP DATABASE audit TO File(...)`` and ``RESTORE ... AS audit_drill EXCEPT TABLES ...`` with
exactly the statement text of components/core/audit/backup/*.sql, only the destination being a
File instead of S3 (chdb reaches no object store); the drill's fingerprint query compares the two
databases. The CronJob's backup.sh and render.awk run under /bin/sh and the machine's awk (mawk,
as in the Ubuntu-based server image) with a stand-in clickhouse-client that records what it is sent.

Not exercised: S3 itself, ON CLUSTER execution with Keeper (the replicated statements are parsed
only), and the BACKUP privilege check (chdb runs every query as its default user).
"""
from __future__ import annotations

import dataclasses
import json
import re
import stat
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from chdb import session as chdb_session

from components.core.audit import sql_templates as st
from components.core.data import clickhouse
from tests.helpers import objects

DEV = st.AuditSqlSettings(brokers="platform-kafka-bootstrap.soma-data.svc:9093", topic="platform.audit.v1",
                          consumer_group="clickhouse-audit", retention_days=3000)
PROD = dataclasses.replace(DEV, replicated=True, cluster="audit")
KAFKA_FILE = "007_kafka_queue.sql"
NASTY = "k3y'with\\back\\\\slashes\"and$dollars`and`ticks\nand a newline"


def literal_in_chdb(sess, sql_literal: str) -> str:
    return json.loads(str(sess.query(f"SELECT {sql_literal} AS v", "JSONEachRow")).strip())["v"]


def parses(sess, statement: str) -> str:
    """chdb's formatQuery of ``statement`` (raises on a syntax error)."""
    return json.loads(str(sess.query(f"SELECT formatQuery({st.sql_string(statement)}) AS q", "JSONEachRow")).strip())["q"]


def event_rows(ingested: datetime, count: int, start: int) -> str:
    rows = []
    for i in range(start, start + count):
        rows.append(
            f"(toUUID('00000000-0000-4000-8000-{i:012d}'), toDateTime64('{ingested:%Y-%m-%d %H:%M:%S}', 3, 'UTC'), 'acme', 'user', "
            f"'u{i}', 'secret.read', 'secret', 'r{i}', 'allow', '', '{'0' * 32}', 'test', map(), "
            f"toDateTime64('{ingested:%Y-%m-%d %H:%M:%S}', 3, 'UTC'), 0, {i})"
        )
    return "INSERT INTO audit.events VALUES " + ", ".join(rows)


@pytest.fixture(scope="module")
def drill(tmp_path_factory):
    """The audit schema, three events, a backup, two more events, a restore into audit_drill."""
    root = tmp_path_factory.mktemp("chdb-backup")
    backups = root / "backups"
    backups.mkdir()
    config = root / "backups.xml"
    config.write_text(f"<clickhouse><backups><allowed_path>{backups}/</allowed_path></backups></clickhouse>\n")
    sess = chdb_session.Session(f"{root / 'db'}?config-file={config}")
    outcome = {}
    for name, statement in st.render_named_statements(DEV):
        try:
            sess.query(statement)
        except Exception as exc:  # chdb registers the Kafka table but cannot start its consumer
            outcome[name] = str(exc)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    before, cutoff, after = now - timedelta(hours=2), now - timedelta(hours=1), now
    sess.query(event_rows(before, 3, 1))
    destination = f"File('{backups}/audit-1')"
    backup = st.render_backup(DEV, destination=destination)
    created = str(sess.query(backup))
    sess.query(event_rows(after, 2, 100))
    restore = st.render_restore(DEV, "audit_drill", destination=destination)
    restored = str(sess.query(restore))

    def one(sql: str) -> list:
        return [line for line in str(sess.query(sql, "TSV")).splitlines() if line]

    state = {
        "outcome": outcome, "created": created, "restored": restored, "backup": backup, "query": one,
        "cutoff": f"{cutoff:%Y-%m-%d %H:%M:%S}", "future": f"{now + timedelta(hours=1):%Y-%m-%d %H:%M:%S}",
        "destination": destination, "session": sess,
    }
    yield state
    sess.close()


def test_the_shipped_backup_statement_backs_up_the_whole_audit_database(drill):
    assert set(drill["outcome"]) <= {KAFKA_FILE}
    assert "BACKUP_CREATED" in drill["created"]
    assert drill["backup"].splitlines()[-1] == f"BACKUP DATABASE audit  TO {drill['destination']}"


def test_a_drill_restore_leaves_the_kafka_consumer_out_and_holds_every_row_before_the_cutoff(drill):
    assert "RESTORED" in drill["restored"]
    tables = set(drill["query"]("SELECT name FROM system.tables WHERE database = 'audit_drill'"))
    assert tables == {"events", "ingest_errors", "ingest_parsed", "events_mv", "ingest_errors_mv"}, \
        "a restored Kafka table would consume the audit topic as the live consumer group"
    live = drill["query"](st.render_fingerprint("audit", drill["cutoff"]))
    restored = drill["query"](st.render_fingerprint("audit_drill", drill["cutoff"]))
    assert live == restored and live[0].split("\t")[0] == "3"
    # Negative control: rows written after the backup are in the live database only.
    assert drill["query"](st.render_fingerprint("audit", drill["future"])) != drill["query"](st.render_fingerprint("audit_drill", drill["future"]))


def test_after_a_loss_restore_into_audit_then_the_schema_job_recreates_the_consumer_last(drill):
    sess = drill["session"]
    sess.query("DROP DATABASE audit SYNC")
    assert "RESTORED" in str(sess.query(st.render_restore(DEV, "audit", destination=drill["destination"])))
    failed = {}
    for name, statement in st.render_named_statements(DEV):  # the schema Job replays every file, idempotently
        try:
            sess.query(statement)
        except Exception as exc:
            failed[name] = str(exc)
    assert set(failed) <= {KAFKA_FILE}
    assert drill["query"]("SELECT count() FROM audit.events") == ["3"]
    assert "ingest_parse_mv" in drill["query"]("SELECT name FROM system.tables WHERE database = 'audit'")


def test_restore_refuses_a_target_that_is_not_a_plain_database_name():
    with pytest.raises(ValueError, match="plain database name"):
        st.render_restore(DEV, "audit; DROP DATABASE audit")
    with pytest.raises(ValueError, match="cutoff"):
        st.render_fingerprint("audit", "yesterday")


def test_replicated_statements_run_on_the_cluster_and_parse(drill):
    sess = drill["session"]
    job_statement = st.render_backup(PROD, destination="S3('https://s3.example.com/b/p', 'k', 's')")
    assert parses(sess, job_statement) == "BACKUP DATABASE audit ON CLUSTER audit TO S3('https://s3.example.com/b/p', 'k', 's')"
    restore = parses(sess, st.render_restore(PROD, "audit_drill", destination="S3('https://s3.example.com/b/p', 'k', 's')"))
    assert restore.startswith("RESTORE DATABASE audit AS audit_drill EXCEPT TABLES ") and " ON CLUSTER audit FROM S3(" in restore


def test_sql_string_round_trips_through_clickhouse(drill):
    assert literal_in_chdb(drill["session"], st.sql_string(NASTY)) == NASTY


@pytest.fixture
def job_dir(tmp_path):
    """backup.sh, render.awk and backup.sql as the ConfigMap ships them, and a recording clickhouse-client."""
    files = clickhouse.backup_files(DEV)
    folder = tmp_path / "backup"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text.replace("/backup/", f"{folder}/"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    client = bin_dir / "clickhouse-client"
    client.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/args\ncat > {tmp_path}/query\n')
    client.chmod(client.stat().st_mode | stat.S_IEXEC)
    return tmp_path, folder, bin_dir


def run_job(tmp_path: Path, folder: Path, bin_dir: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {"PATH": f"{bin_dir}:/usr/bin:/bin", "CLICKHOUSE_HOST": "clickhouse-audit.soma-data.svc.cluster.local",
                   "CLICKHOUSE_PASSWORD": "pw", "BACKUP_BASE_URL": "https://backup.example.com/soma-prod-backups/clickhouse-backups/audit/",
                   **env}
    return subprocess.run(["/bin/sh", str(folder / "backup.sh")], env=environment, capture_output=True, text=True, timeout=30)


def test_the_job_fills_url_and_keys_from_its_environment_as_sql_strings(job_dir, drill):
    tmp_path, folder, bin_dir = job_dir
    done = run_job(tmp_path, folder, bin_dir, S3_ACCESS_KEY_ID="AKIA'x", S3_SECRET_ACCESS_KEY=NASTY)
    assert done.returncode == 0, done.stderr
    query = (tmp_path / "query").read_text()
    url = re.search(r"backing up the audit database to (\S+)", done.stdout)[1]
    assert re.fullmatch(r"https://backup\.example\.com/soma-prod-backups/clickhouse-backups/audit/[0-9]{8}T[0-9]{6}Z", url)
    expected = f"S3({st.sql_string(url)}, {st.sql_string('AKIA' + chr(39) + 'x')}, {st.sql_string(NASTY)})"
    assert expected in query
    sess = drill["session"]
    assert parses(sess, query) == parses(sess, f"BACKUP DATABASE audit TO {expected}"), "one statement, nothing injected"
    assert literal_in_chdb(sess, st.sql_string(NASTY)) == NASTY
    args = (tmp_path / "args").read_text().splitlines()
    assert args[args.index("--user") + 1] == "audit_backup"
    assert NASTY.splitlines()[0] not in " ".join(args), "keys travel on stdin, not on the command line"
    assert not Path("/tmp/backup.sql").exists(), "the filled statement is removed"


def test_the_job_stops_before_calling_clickhouse_when_a_key_is_missing(job_dir):
    tmp_path, folder, bin_dir = job_dir
    done = run_job(tmp_path, folder, bin_dir, S3_ACCESS_KEY_ID="a")
    assert done.returncode != 0 and "must be set" in done.stderr
    assert not (tmp_path / "query").exists()


def one(plan: dict, kind: str, name: str) -> dict:
    (found,) = [o for o in objects(plan, kind) if o["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_stack_runs_the_backup_on_schedule_with_keys_from_secrets_only(plans, stack):
    from tests.core.test_core_data import loaded
    s = loaded(stack)
    plan = plans[stack]
    cron = one(plan, "CronJob", "clickhouse-audit-backup")
    assert cron["spec"]["schedule"] == s.core.clickhouse.backup_schedule and cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    target = "offsite-backups-credentials" if s.core.backups.offsite else "clickhouse-backups"
    for name in ("S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "CLICKHOUSE_PASSWORD"):
        assert set(env[name]) == {"name", "valueFrom"}, name
    assert env["S3_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == target
    offsite = s.core.backups.offsite
    base = f"{offsite.endpoint}/{offsite.bucket}/clickhouse-backups/audit/" if offsite else \
        "http://minio.soma-data.svc.cluster.local:9000/clickhouse-backups/audit/"
    assert env["BACKUP_BASE_URL"]["value"] == base
    config = one(plan, "ConfigMap", "clickhouse-audit-backup")["data"]
    assert config["backup.sql"] == st.render_backup(st.AuditSqlSettings(
        brokers="x:1", topic="t", consumer_group="g", retention_days=1, replicated=s.core.clickhouse.replicas > 1,
        cluster="audit" if s.core.clickhouse.replicas > 1 else "")) + "\n"
    assert all(marker in config["backup.sql"] for marker in st.S3_MARKERS)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_backup_user_may_only_back_up(plans, stack, drill):
    users = one(plans[stack], "ClickHouseInstallation", "audit")["spec"]["configuration"]["users"]
    grants = users["audit_backup/grants/query"]
    replicated = one(plans[stack], "ClickHouseInstallation", "audit")["spec"]["configuration"]["clusters"][0]["layout"]["replicasCount"] > 1
    assert grants == ["GRANT BACKUP ON audit.*", *(["GRANT CLUSTER ON *.*"] if replicated else [])]
    assert set(users["audit_backup/password"]) == {"valueFrom"}
    for grant in grants:
        parses(drill["session"], f"{grant} TO audit_backup")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_only_the_backup_job_is_let_in_and_its_age_is_watched(plans, stack):
    plan = plans[stack]
    cron = one(plan, "CronJob", "clickhouse-audit-backup")
    pod_labels = cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    ingress = one(plan, "NetworkPolicy", "clickhouse-from-backup-job")["spec"]
    assert ingress["podSelector"]["matchLabels"] == clickhouse.CHI_LABELS
    peer = ingress["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert peer.items() <= pod_labels.items()
    assert ingress["ingress"][0]["ports"] == [{"port": clickhouse.NATIVE_PORT, "protocol": "TCP"}]
    (rule,) = [o for o in objects(plan, "PrometheusRule") if o["metadata"]["name"] == "soma-backup-age"]
    exprs = [r["expr"] for r in rule["spec"]["groups"][0]["rules"] if r["labels"]["stream"] == "clickhouse"]
    assert exprs and all('cronjob="clickhouse-audit-backup"' in e and 'namespace="soma-data"' in e for e in exprs)
