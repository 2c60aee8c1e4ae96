"""The audit pipeline's ClickHouse DDL, run for real in chdb (embedded ClickHouse).

What is exercised:
* Every statement rendered for the single-node (dev) stack is executed verbatim,
  in order, in one chdb database, including the Kafka engine table and the
  materialized view that reads it. chdb constructs the Kafka table (so table
  settings are checked: an unknown setting or a bad kafka_handle_error_mode is
  rejected) but cannot start its consumer: the CREATE reports "Shutdown was
  called" after the table is registered. That one error is accepted for that
  one file, and system.tables must then show the table with its settings. The
  view on top of it is analysed against the real Kafka columns, including the
  stream-mode virtual columns _error and _raw_message (a negative control shows
  chdb does reject a view naming a column the Kafka table lacks).
* The transformation: the Kafka table is then swapped for a Null table with the
  same columns (taken from DESCRIBE of the real one, virtual columns included)
  and 008_ingest_parse_mv.sql is executed again, verbatim. Inserting into the
  stand-in runs the repository's own SELECTs (008 -> 004 -> 005 / 006), so the
  rows in audit.events and audit.ingest_errors come from the exact SQL that
  ships; nothing is copied into this file.
* Delivery is simulated the way the Kafka engine does it: each raw message is
  read with the real JSONAsString input format; when that format rejects it,
  the row is delivered as stream mode would (message empty, _error and
  _raw_message set), with chdb's own parse error as _error.
* The replicated (prod) rendering is parsed only (formatQuery): there is no
  Keeper and no cluster here.

What is not exercised: a real broker, consumer-group offsets and commits, the
byte-exact _error text a live Kafka engine produces, TLS/SASL, ON CLUSTER
execution and replication, and background TTL merges (TTL is applied with
OPTIMIZE ... FINAL).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.util
import json
import sys
from pathlib import Path

import pytest
from chdb import session as chdb_session

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "audit_events.jsonl"


def _load_sql_templates():
    # Loaded by path so the test does not depend on how components/ is packaged.
    path = REPO / "components" / "core" / "audit" / "sql_templates.py"
    spec = importlib.util.spec_from_file_location("audit_sql_templates", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolves annotations through sys.modules
    spec.loader.exec_module(module)
    return module


st = _load_sql_templates()

RETENTION_DAYS = 3000  # wide enough that the fixtures (autumn 2026) stay inside the window until 2034
DEV = st.AuditSqlSettings(
    brokers="audit-kafka-bootstrap.kafka.svc:9092",
    topic="platform.audit.v1",
    consumer_group="clickhouse-audit",
    retention_days=RETENTION_DAYS,
)
PROD = dataclasses.replace(DEV, replicated=True, cluster="audit")

KAFKA_FILE = "007_kafka_queue.sql"
PARSE_MV_FILE = "008_ingest_parse_mv.sql"
CHDB_KAFKA_STARTUP_ERROR = "Shutdown was called"

# Each test writes to its own Kafka partition number so they share one database.
P_FIXTURES, P_CONTRACT, P_FORMAT, P_TTL = 0, 1, 2, 9


def sql_literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Pipeline:
    def __init__(self, sess):
        self.sess = sess
        self.offsets: dict[int, int] = {}

    def query(self, sql: str, fmt: str = "TSV") -> str:
        return str(self.sess.query(sql, fmt))

    def rows(self, sql: str, settings: str = "output_format_json_quote_64bit_integers = 0") -> list[dict]:
        out = self.query(f"{sql} SETTINGS {settings}", "JSONEachRow")
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def deliver(self, raw: str, partition: int) -> int:
        """Put one Kafka message through the pipeline; returns its offset."""
        offset = self.offsets.get(partition, 0)
        self.offsets[partition] = offset + 1
        common = f"'platform.audit.v1' AS _topic, {partition} AS _partition, {offset} AS _offset"
        try:
            self.query(f"SELECT count() FROM format(JSONAsString, {sql_literal(raw)})")
        except Exception as exc:  # what kafka_handle_error_mode = 'stream' delivers instead of failing
            self.query(
                "INSERT INTO audit.kafka_queue (message, _topic, _partition, _offset, _error, _raw_message) "
                f"SELECT '', {common}, {sql_literal(str(exc))}, {sql_literal(raw)}"
            )
        else:
            self.query(
                "INSERT INTO audit.kafka_queue (message, _topic, _partition, _offset) "
                f"SELECT json AS message, {common} FROM format(JSONAsString, {sql_literal(raw)})"
            )
        return offset


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    sess = chdb_session.Session(str(tmp_path_factory.mktemp("chdb")))
    pipe = Pipeline(sess)
    statements = dict(st.render_named_statements(DEV))
    outcome = {}
    for name, sql in statements.items():
        try:
            pipe.query(sql)
            outcome[name] = "ok"
        except Exception as exc:
            outcome[name] = str(exc)
    # Snapshot of the schema exactly as the shipped DDL left it.
    pipe.outcome = outcome
    pipe.tables = {
        row["name"]: row
        for row in pipe.rows("SELECT name, engine, create_table_query FROM system.tables WHERE database = 'audit'")
    }
    kafka_columns = pipe.rows("DESCRIBE TABLE audit.kafka_queue", settings="describe_include_virtual_columns = 1")
    try:
        pipe.query("CREATE MATERIALIZED VIEW audit.control_mv TO audit.ingest_parsed AS "
                   "SELECT _no_such_column AS error FROM audit.kafka_queue")
        pipe.control_error = ""
    except Exception as exc:
        pipe.control_error = str(exc)
    # Swap the Kafka table for a Null table with the same columns, then re-run 008 verbatim.
    pipe.query("DROP VIEW audit.ingest_parse_mv")
    pipe.query("DROP TABLE audit.kafka_queue")
    columns = ", ".join(f"`{c['name']}` {c['type']}" for c in kafka_columns)
    pipe.query(f"CREATE TABLE audit.kafka_queue ({columns}) ENGINE = Null")
    pipe.query(statements[PARSE_MV_FILE])
    pipe.kafka_columns = {c["name"]: c["type"] for c in kafka_columns}
    yield pipe
    sess.close()


def fixture_lines() -> list[str]:
    return [line for line in FIXTURES.read_text(encoding="utf-8").splitlines() if line.strip()]


# --- DDL executes --------------------------------------------------------------------


def test_every_single_node_statement_executes(pipeline):
    names = [name for name, _ in st.render_named_statements(DEV)]
    assert names == sorted(names) and names[0] == "001_database.sql" and names[-1] == PARSE_MV_FILE
    failed = {n: e for n, e in pipeline.outcome.items() if e != "ok"}
    # chdb builds the Kafka table but has no background pool to start its consumer.
    assert set(failed) <= {KAFKA_FILE}, failed
    if failed:
        assert CHDB_KAFKA_STARTUP_ERROR in failed[KAFKA_FILE]
    engines = {name: row["engine"] for name, row in pipeline.tables.items()}
    assert engines == {
        "events": "MergeTree",
        "ingest_errors": "MergeTree",
        "ingest_parsed": "Null",
        "events_mv": "MaterializedView",
        "ingest_errors_mv": "MaterializedView",
        "kafka_queue": "Kafka",
        "ingest_parse_mv": "MaterializedView",
    }
    kafka_ddl = pipeline.tables["kafka_queue"]["create_table_query"]
    for setting in (
        "kafka_broker_list = 'audit-kafka-bootstrap.kafka.svc:9092'",
        "kafka_topic_list = 'platform.audit.v1'",
        "kafka_group_name = 'clickhouse-audit'",
        "kafka_format = 'JSONAsString'",
        "kafka_handle_error_mode = 'stream'",
    ):
        assert setting in kafka_ddl
    # The stream-mode columns the views rely on are real Kafka columns...
    assert pipeline.kafka_columns["_error"] == "String"
    assert pipeline.kafka_columns["_raw_message"] == "String"
    # ...and chdb does check view columns against the Kafka table (negative control).
    assert "_no_such_column" in pipeline.control_error


def test_no_ingest_before_everything_downstream_exists():
    """Consumption starts with the view on the Kafka table, so that view must run last."""
    statements = st.render_named_statements(DEV)
    assert [n for n, s in statements if "ENGINE = Kafka" in s] == [KAFKA_FILE]
    assert [n for n, s in statements if "FROM audit.kafka_queue" in s] == [PARSE_MV_FILE]
    assert statements[-2][0] == KAFKA_FILE and statements[-1][0] == PARSE_MV_FILE


def test_replicated_variant_parses_and_is_on_cluster(pipeline):
    dev, prod = st.render_statements(DEV), st.render_statements(PROD)
    assert not any("ON CLUSTER" in s or "ENGINE = Replicated" in s for s in dev)
    for sql in prod:
        assert "ON CLUSTER 'audit'" in sql
        formatted = pipeline.query(f"SELECT formatQuery({sql_literal(sql)})")
        assert "ON CLUSTER audit" in formatted.replace("\\n", " ")
    engines = [s for s in prod if "ENGINE = ReplicatedMergeTree" in s]
    assert len(engines) == 2  # audit.events and audit.ingest_errors
    assert all("ReplicatedMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}')" in s for s in engines)


# --- the transformation -------------------------------------------------------------

EXPECTED_EVENTS = [
    {
        "event_id": "0192f0c1-7b3a-7c2e-9f10-3b5e1d2c4a6f",
        "occurred_at": "2026-11-20 10:15:30.123",
        "tenant": "acme",
        "actor_type": "user",
        "actor_id": "user:alice@example.com",
        "action": "agent.run.start",
        "resource_type": "agent",
        "resource_id": "agents/support-bot",
        "decision": "allow",
        "reason": "",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "source": "gateway",
        "attributes": {"http.method": "POST", "http.route": "/v1/agents/{id}/runs", "client.ip": "10.0.3.17"},
        "kafka_partition": P_FIXTURES,
        "kafka_offset": 0,
    },
    {
        "event_id": "0192f0c1-8d11-7a02-8c55-6e0f2b9d1e33",
        "occurred_at": "2026-11-20 10:15:31.456",  # sent as 12:15:31.456+02:00
        "tenant": "acme",
        "actor_type": "agent",
        "actor_id": "agents/support-bot",
        "action": "tool.invoke",
        "resource_type": "tool",
        "resource_id": "shell.exec",
        "decision": "deny",
        "reason": "tool shell.exec is not in the allow-list of agent support-bot",
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "source": "policy",
        "attributes": {"policy.id": "tool-allowlist", "policy.version": "42"},
        "kafka_partition": P_FIXTURES,
        "kafka_offset": 1,
    },
    {
        "event_id": "9b2e4c1a-3f5d-4e8b-a7c6-1d2e3f4a5b6c",
        "occurred_at": "2026-11-21 08:00:00.000",
        "tenant": "globex",
        "actor_type": "service",
        "actor_id": "orchestrator",
        "action": "workflow.step.complete",
        "resource_type": "workflow_run",
        "resource_id": "wr-8f3c",
        "decision": "allow",
        "reason": "",
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "source": "orchestrator",
        "attributes": {},
        "kafka_partition": P_FIXTURES,
        "kafka_offset": 2,
    },
    {
        "event_id": "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b",
        "occurred_at": "2026-10-31 23:59:59.999",
        "tenant": "platform",
        "actor_type": "system",
        "actor_id": "rotation-cron",
        "action": "secret.rotate",
        "resource_type": "secret",
        "resource_id": "vault:kv/tenants/acme/llm-key",
        "decision": "allow",
        "reason": "scheduled rotation \u2013 90 days",
        "trace_id": "f1e2d3c4b5a697887766554433221100",
        "source": "secrets-operator",
        "attributes": {"note": "Z\u00fcrich\nline2"},
        "kafka_partition": P_FIXTURES,
        "kafka_offset": 3,
    },
]

EVENT_COLUMNS = ", ".join(EXPECTED_EVENTS[0])


def test_fixture_events_become_exactly_the_expected_rows(pipeline):
    for line in fixture_lines():
        pipeline.deliver(line, P_FIXTURES)
    rows = pipeline.rows(
        f"SELECT {EVENT_COLUMNS} FROM audit.events WHERE kafka_partition = {P_FIXTURES} ORDER BY kafka_offset"
    )
    assert rows == EXPECTED_EVENTS
    assert pipeline.rows(f"SELECT * FROM audit.ingest_errors WHERE kafka_partition = {P_FIXTURES}") == []
    # Stored types, not just values: the enums and timestamps are real ClickHouse types.
    types = pipeline.rows(
        "SELECT toTypeName(decision) AS d, toTypeName(actor_type) AS a, toTypeName(occurred_at) AS o, "
        "toTypeName(attributes) AS m, toTypeName(trace_id) AS t, "
        "max(ingested_at) > now64(3) - INTERVAL 1 MINUTE AS fresh, "
        "groupArray(DISTINCT _partition_id) AS parts "
        f"FROM audit.events WHERE kafka_partition = {P_FIXTURES} GROUP BY d, a, o, m, t"
    )
    assert len(types) == 1
    assert types[0]["d"] == "Enum8('allow' = 1, 'deny' = 2)"
    assert types[0]["a"] == "Enum8('user' = 1, 'service' = 2, 'agent' = 3, 'system' = 4)"
    assert types[0]["o"] == "DateTime64(3, 'UTC')"
    assert types[0]["m"] == "Map(LowCardinality(String), String)"
    assert types[0]["t"] == "FixedString(32)"
    assert types[0]["fresh"] == 1
    assert sorted(types[0]["parts"]) == ["202610", "202611"]


def _base_event() -> dict:
    return json.loads(fixture_lines()[0])


def _with(**changes) -> str:
    event = _base_event()
    for dotted, value in changes.items():
        target, *path = dotted.split("__")
        holder = event
        for key in [target, *path][:-1]:
            holder = holder[key]
        last = [target, *path][-1]
        if value is _DROP:
            holder.pop(last)
        else:
            holder[last] = value
    return json.dumps(event)


_DROP = object()
_SOON = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")

CONTRACT_VIOLATIONS = {
    "decision-not-enum": (_with(decision="maybe"), "decision:"),
    "deny-without-reason": (_with(decision="deny"), "reason: required when decision is deny"),
    "reason-not-string": (_with(reason=42), "reason:"),
    "trace-id-missing": (_with(trace_id=_DROP), "trace_id:"),
    "trace-id-uppercase": (_with(trace_id="4BF92F3577B34DA6A3CE929D0E0E4736"), "trace_id:"),
    "trace-id-all-zero": (_with(trace_id="0" * 32), "trace_id:"),
    "event-id-not-uuid": (_with(event_id="42"), "event_id:"),
    "event-id-number": (_with(event_id=42), "event_id:"),
    "occurred-at-no-millis": (_with(occurred_at="2026-11-20T10:15:30Z"), "occurred_at: required"),
    "occurred-at-not-a-date": (_with(occurred_at="2026-02-30T10:15:30.123Z"), "occurred_at: required"),
    "occurred-at-too-old": (_with(occurred_at="2001-01-01T00:00:00.000Z"), "occurred_at: outside"),
    "occurred-at-future": (_with(occurred_at=_SOON), "occurred_at: outside"),
    "actor-extra-key": (_with(actor={"type": "user", "id": "u1", "role": "admin"}), "actor:"),
    "actor-type-unknown": (_with(actor__type="root"), "actor.type:"),
    "actor-id-control-char": (_with(actor__id="alice\nbob"), "actor.id:"),
    "tenant-uppercase": (_with(tenant="ACME"), "tenant:"),
    "action-one-segment": (_with(action="login"), "action:"),
    "resource-missing": (_with(resource=_DROP), "resource:"),
    "source-missing": (_with(source=_DROP), "source:"),
    "unknown-field": (_with(severity="high"), "message: unknown field(s): severity"),
    "duplicate-key": (_with()[:-1] + ', "decision": "deny"}', "message: duplicate top-level key"),
    "attribute-number": (_with(attributes={"retries": 3}), "attributes:"),
    "attribute-null": (_with(attributes=None), "attributes:"),
    "attribute-key-uppercase": (_with(attributes={"Client.IP": "1.2.3.4"}), "attributes:"),
    "invalid-json-in-braces": ('{"event_id": tru}', "message: not valid JSON"),
}


@pytest.mark.parametrize("raw, expected", CONTRACT_VIOLATIONS.values(), ids=CONTRACT_VIOLATIONS.keys())
def test_contract_violation_goes_to_ingest_errors(pipeline, raw, expected):
    offset = pipeline.deliver(raw, P_CONTRACT)
    where = f"WHERE kafka_partition = {P_CONTRACT} AND kafka_offset = {offset}"
    assert pipeline.rows(f"SELECT event_id FROM audit.events {where}") == []
    errors = pipeline.rows(f"SELECT toString(stage) AS stage, error, raw_message FROM audit.ingest_errors {where}")
    assert len(errors) == 1, errors
    assert errors[0]["stage"] == "contract"
    assert errors[0]["error"].startswith(expected), errors[0]["error"]
    assert errors[0]["raw_message"] == raw  # kept verbatim for repair and replay


@pytest.mark.parametrize("raw", ["not json at all", '{"event_id": "unterminated', "[1, 2]"])
def test_unreadable_message_goes_to_ingest_errors_with_format_stage(pipeline, raw):
    offset = pipeline.deliver(raw, P_FORMAT)
    where = f"WHERE kafka_partition = {P_FORMAT} AND kafka_offset = {offset}"
    assert pipeline.rows(f"SELECT event_id FROM audit.events {where}") == []
    errors = pipeline.rows(f"SELECT toString(stage) AS stage, error, raw_message FROM audit.ingest_errors {where}")
    assert len(errors) == 1, errors
    assert errors[0]["stage"] == "format"
    assert "INCORRECT_DATA" in errors[0]["error"]  # chdb's JSONAsString parse error, as _error
    assert errors[0]["raw_message"] == raw


def test_a_bad_message_does_not_block_the_good_ones_in_its_block(pipeline):
    """One INSERT carrying good and bad rows (as one Kafka poll would) must not throw."""
    good, bad = fixture_lines()[2], _with(decision="maybe")
    pipeline.query(
        "INSERT INTO audit.kafka_queue (message, _partition, _offset) "
        f"VALUES ({sql_literal(bad)}, 3, 0), ({sql_literal(good)}, 3, 1)"
    )
    assert pipeline.rows("SELECT kafka_offset FROM audit.events WHERE kafka_partition = 3") == [{"kafka_offset": 1}]
    assert pipeline.rows("SELECT kafka_offset FROM audit.ingest_errors WHERE kafka_partition = 3") == [
        {"kafka_offset": 0}
    ]


# --- retention and layout ------------------------------------------------------------


def test_partitioning_ordering_and_ttl_come_from_settings(pipeline):
    meta = pipeline.rows(
        "SELECT name, partition_key, sorting_key, create_table_query FROM system.tables "
        "WHERE database = 'audit' AND name IN ('events', 'ingest_errors', 'ingest_parse_mv') ORDER BY name"
    )
    by_name = {row["name"]: row for row in meta}
    events = by_name["events"]
    assert events["partition_key"] == "toYYYYMM(occurred_at)"
    assert events["sorting_key"] == "tenant, occurred_at, event_id"
    assert f"TTL toDateTime(occurred_at) + toIntervalDay({RETENTION_DAYS})" in events["create_table_query"]
    assert f"TTL toDateTime(received_at) + toIntervalDay({RETENTION_DAYS})" in (
        by_name["ingest_errors"]["create_table_query"]
    )
    # The ingest window uses the same retention, so nothing is stored only to be expired.
    assert f"toIntervalDay({RETENTION_DAYS})" in by_name["ingest_parse_mv"]["create_table_query"]
    # A different setting renders a different TTL.
    other = dict(st.render_named_statements(dataclasses.replace(DEV, retention_days=45)))
    assert "toIntervalDay(45)" in other["002_events_table.sql"]


def test_ttl_deletes_rows_past_retention(pipeline):
    pipeline.query(
        "INSERT INTO audit.events (event_id, occurred_at, tenant, actor_type, actor_id, action, resource_type, "
        "resource_id, decision, trace_id, source, ingested_at, kafka_partition, kafka_offset) VALUES "
        f"(generateUUIDv4(), now64(3) - INTERVAL {RETENTION_DAYS + 1} DAY, 't', 'system', 'x', 'a.b', 'r', 'x', "
        f"'allow', '0af7651916cd43dd8448eb211c80319c', 's', now64(3), {P_TTL}, 0), "
        f"(generateUUIDv4(), now64(3) - INTERVAL {RETENTION_DAYS - 1} DAY, 't', 'system', 'x', 'a.b', 'r', 'x', "
        f"'allow', '0af7651916cd43dd8448eb211c80319c', 's', now64(3), {P_TTL}, 1)"
    )
    pipeline.query("OPTIMIZE TABLE audit.events FINAL")
    assert pipeline.rows(f"SELECT kafka_offset FROM audit.events WHERE kafka_partition = {P_TTL}") == [
        {"kafka_offset": 1}
    ]


# --- settings and templates ----------------------------------------------------------

BAD_SETTINGS = {
    "retention-zero": ({"retention_days": 0}, "retention_days"),
    "retention-too-long": ({"retention_days": 3001}, "retention_days"),
    "retention-bool": ({"retention_days": True}, "retention_days"),
    "retention-string": ({"retention_days": "30"}, "retention_days"),
    "topic-empty": ({"topic": ""}, "topic"),
    "topic-quote": ({"topic": "audit'; DROP TABLE audit.events; --"}, "topic"),
    "group-empty": ({"consumer_group": ""}, "consumer_group"),
    "brokers-empty": ({"brokers": ""}, "brokers"),
    "brokers-no-port": ({"brokers": "kafka-bootstrap"}, "brokers"),
    "brokers-port-zero": ({"brokers": "kafka:0"}, "brokers"),
    "brokers-port-too-big": ({"brokers": "kafka:65536"}, "brokers"),
    "brokers-space": ({"brokers": "kafka-0:9092, kafka-1:9092"}, "brokers"),
    "brokers-scheme": ({"brokers": "PLAINTEXT://kafka:9092"}, "brokers"),
    "brokers-injection": ({"brokers": "kafka:9092'"}, "brokers"),
    "replicated-without-cluster": ({"replicated": True}, "cluster"),
    "cluster-without-replicated": ({"cluster": "audit"}, "cluster"),
    "replicated-not-bool": ({"replicated": "yes", "cluster": "audit"}, "replicated"),
}


@pytest.mark.parametrize("changes, field", BAD_SETTINGS.values(), ids=BAD_SETTINGS.keys())
def test_bad_settings_raise_naming_the_field(changes, field):
    with pytest.raises(ValueError, match=rf"^AuditSqlSettings\.{field}:"):
        dataclasses.replace(DEV, **changes)


def test_good_settings_are_accepted():
    st.AuditSqlSettings("10.0.0.1:9092,kafka-1.kafka.svc.cluster.local:9093", "a.b-c_d", "g", 1)
    assert PROD.placeholder_values()["on_cluster"] == "ON CLUSTER 'audit'"


def test_rendered_statements_have_no_placeholders_left():
    for sql in st.render_statements(DEV) + st.render_statements(PROD):
        assert "{{" not in sql and "}}" not in sql


def test_unknown_placeholder_raises(tmp_path):
    (tmp_path / "001_ok.sql").write_text("CREATE DATABASE IF NOT EXISTS audit {{on_cluster}}")
    (tmp_path / "002_bad.sql").write_text("SELECT {{retention_dayz}}")
    with pytest.raises(st.TemplateError, match=r"002_bad\.sql: unknown placeholder\(s\) retention_dayz"):
        st.render_statements(DEV, tmp_path)


def test_malformed_placeholder_raises():
    with pytest.raises(st.TemplateError, match="unreplaced or malformed placeholder at line 2"):
        st.render_template("SELECT 1\n-- {{ retention-days }}", DEV.placeholder_values())


def test_ambiguous_template_order_raises(tmp_path):
    (tmp_path / "001_a.sql").write_text("SELECT 1")
    (tmp_path / "001_b.sql").write_text("SELECT 2")
    with pytest.raises(st.TemplateError, match="more than one template numbered 001"):
        st.render_statements(DEV, tmp_path)
