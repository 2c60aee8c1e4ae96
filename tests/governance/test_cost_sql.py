"""cost.allocations and the mapping from Kubecost's allocation API, run for real in chdb.

Samples: ``kubecost_allocation_upstream.json`` is the 200 response of Kubecost's Allocation API
documentation (kubecost/docs apis/monitoring-apis/api-allocation.md, commit 1e02e894, the one
allocation it shows, "...etc" entries left out); ``kubecost_allocation_platform.json`` has the same
shape as the platform's query returns it (aggregate=namespace,label:somaagenthub_io_tenant: keys
``<namespace>/<tenant>``, ``__unallocated__`` for workloads without the label, ``__idle__``), with
namespaceLabels as Kubecost 2.x reports them.
"""
from __future__ import annotations

import http.server
import json
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from chdb import session as chdb_session

from components.core.audit.sql_templates import MAX_RETENTION_DAYS, AuditSqlSettings, sql_string
from components.core.cost import RETENTION_DAYS, TABLE, mapping_query, schema_statements
from components.governance.kubecost import ingest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PHASES = {"soma-agents": "agents", "soma-data": "core", "soma-cost": "governance"}
SINGLE = AuditSqlSettings(brokers="kafka:9093", topic="platform.audit.v1", consumer_group="clickhouse-audit", retention_days=30)
REPLICATED = AuditSqlSettings(brokers="kafka:9093", topic="platform.audit.v1", consumer_group="clickhouse-audit", retention_days=30,
                              replicated=True, cluster="audit")


def response(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def inline(json_text: str) -> str:
    return f"format(JSONAsString, 'json String', {sql_string(json_text)})"


def session_with_schema(path: Path, retention_days: int = RETENTION_DAYS):
    sess = chdb_session.Session(str(path))
    for _, statement in schema_statements(SINGLE, retention_days):
        sess.query(statement)
    return sess


@pytest.fixture()
def db(tmp_path):
    """The longest retention allowed (to 2031 for the documented sample, an hour of January 2023): with the
    default 800 days a background TTL merge would drop that hour at any moment after its insert."""
    sess = session_with_schema(tmp_path / "chdb", MAX_RETENTION_DAYS)
    yield sess
    sess.close()


@pytest.fixture()
def db_default_retention(tmp_path):
    sess = session_with_schema(tmp_path / "chdb")
    yield sess
    sess.close()


def rows(sess, sql: str) -> list[dict]:
    return [json.loads(line) for line in sess.query(sql, "JSONEachRow").data().splitlines() if line]


def ingest_json(sess, json_text: str) -> None:
    sess.query(f"INSERT INTO {TABLE} {mapping_query(inline(json_text), PHASES)}")


def test_the_schema_statements_follow_the_audit_files_and_replicate_on_cluster():
    names = [name for name, _ in schema_statements(SINGLE)]
    assert names == ["cost_001_database.sql", "cost_002_allocations_table.sql"]
    assert sorted(["008_ingest_parse_mv.sql", *names])[0] == "008_ingest_parse_mv.sql"  # the Job's glob order
    replicated = dict(schema_statements(REPLICATED))
    assert "ON CLUSTER 'audit'" in replicated["cost_002_allocations_table.sql"]
    assert "ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', ingested_at)" in replicated["cost_002_allocations_table.sql"]


def test_the_documented_upstream_response_becomes_one_row(db):
    ingest_json(db, response("kubecost_allocation_upstream.json"))
    (row,) = rows(db, f"SELECT * EXCEPT ingested_at FROM {TABLE} FINAL")
    assert row == {
        "window_start": "2023-01-27 23:00:00", "window_end": "2023-01-28 00:00:00", "cluster": "aws-dev-1-niko",
        "namespace": "kubecost", "phase": "", "tenant": "",
        "cpu_cost": 0.000426, "gpu_cost": 0, "ram_cost": 0.000351, "pv_cost": 0.00055, "network_cost": 0,
        "load_balancer_cost": 0.003333, "shared_cost": 0, "external_cost": 0, "total_cost": 0.004661, "total_efficiency": 0.288087,
    }


def test_platform_rows_carry_namespace_phase_and_tenant(db):
    ingest_json(db, response("kubecost_allocation_platform.json"))
    got = {(r["namespace"], r["tenant"]): r for r in rows(db, f"SELECT * FROM {TABLE} FINAL")}
    assert set(got) == {("soma-agents", "acme"), ("soma-agents", ""), ("soma-data", ""), ("__idle__", "")}
    assert got[("soma-agents", "acme")]["phase"] == "agents"       # from the namespace, no phase label
    assert got[("soma-data", "")]["phase"] == "core"               # from the namespace's phase label
    assert got[("__idle__", "")]["phase"] == ""
    assert got[("soma-agents", "acme")]["cpu_cost"] == pytest.approx(0.13)  # adjustments reconcile the price
    assert got[("soma-agents", "acme")]["ram_cost"] == pytest.approx(0.045)
    assert sum(r["total_cost"] for r in got.values()) == pytest.approx(1.321)


def test_a_reingested_hour_replaces_the_first_copy(db):
    ingest_json(db, response("kubecost_allocation_platform.json"))
    later = json.loads(response("kubecost_allocation_platform.json"))
    later["data"][0]["soma-agents/acme"]["totalCost"] = 0.25
    db.query("SELECT sleep(0.01)")
    ingest_json(db, json.dumps(later))
    (acme,) = rows(db, f"SELECT total_cost FROM {TABLE} FINAL WHERE tenant = 'acme'")
    assert acme["total_cost"] == 0.25
    assert rows(db, f"SELECT count() AS n FROM {TABLE} FINAL")[0]["n"] == 4


def test_hours_older_than_the_retention_expire_and_recent_hours_stay(db_default_retention):
    db = db_default_retention
    recent = json.loads(response("kubecost_allocation_platform.json"))
    hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    for allocation in recent["data"][0].values():
        allocation["window"] = {"start": f"{hour:%Y-%m-%dT%H:%M:%SZ}", "end": f"{hour + timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ}"}
    ingest_json(db, json.dumps(recent))
    ingest_json(db, response("kubecost_allocation_upstream.json"))  # January 2023: more than 800 days ago
    db.query(f"OPTIMIZE TABLE {TABLE} FINAL")  # what a background TTL merge does, now rather than eventually
    kept = rows(db, f"SELECT DISTINCT window_start FROM {TABLE}")
    assert kept == [{"window_start": f"{hour:%Y-%m-%d %H:%M:%S}"}]


@pytest.mark.parametrize("days", [0, MAX_RETENTION_DAYS + 1, True, "800"])
def test_a_retention_outside_1_to_3000_days_is_refused_with_its_value(days):
    with pytest.raises(ValueError, match=rf"cost retention_days: must be an integer from 1 to 3000 \(got {days!r}\)"):
        schema_statements(SINGLE, days)


def test_the_table_keeps_its_own_retention_whatever_the_audit_retention():
    (_, table), = [(n, s) for n, s in schema_statements(SINGLE) if n == "cost_002_allocations_table.sql"]
    assert table.rstrip().endswith(f"TTL window_start + toIntervalDay({RETENTION_DAYS})")
    assert SINGLE.retention_days != RETENTION_DAYS


def test_an_error_response_writes_nothing(db):
    ingest_json(db, json.dumps({"code": 500, "message": "Prometheus unreachable", "data": []}))
    assert rows(db, f"SELECT count() AS n FROM {TABLE}")[0]["n"] == 0


class _Kubecost(http.server.BaseHTTPRequestHandler):
    body = b""
    seen: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        type(self).seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def test_the_cronjob_query_reads_the_allocation_api_over_http(db):
    """The exact map.sql the CronJob ships, with the parameters ingest.sh passes, against a loopback server."""
    _Kubecost.body = response("kubecost_allocation_platform.json").encode()
    _Kubecost.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Kubecost)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        query = ingest.script(PHASES)["map.sql"].strip().removesuffix(";")
        window = "2026-11-29T10:00:00Z,2026-11-29T11:00:00Z"
        db.query(f"INSERT INTO {TABLE} {query}", params={"api": f"http://127.0.0.1:{server.server_port}", "window": window})
    finally:
        server.shutdown()
    (path,) = _Kubecost.seen
    asked = urlsplit(path)
    assert asked.path == "/allocation"
    assert parse_qs(asked.query) == {"window": [window], "aggregate": ["namespace,label:somaagenthub_io_tenant"],
                                     "accumulate": ["true"], "idle": ["true"]}
    assert rows(db, f"SELECT count() AS n FROM {TABLE} FINAL")[0]["n"] == 4
