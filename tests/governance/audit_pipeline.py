"""The audit pipeline's shipped ClickHouse DDL in chdb, for the compliance tests.

Every statement of components/core/audit/sql (single-node rendering) runs verbatim; the Kafka table, which
chdb registers but cannot start, is then swapped for a Null table with the same columns (virtual ones
included, from DESCRIBE), and 008_ingest_parse_mv.sql runs again verbatim on top of it: inserting a message
into the stand-in runs the contract's own validation (008 -> 004 -> 005/006), as tests/core/test_audit_sql.py
does. So an event counts as accepted only if the shipped SQL accepts it.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Mapping

from chdb import session as chdb_session

from components.core.audit.sql_templates import AuditSqlSettings, render_named_statements, sql_string

SETTINGS = AuditSqlSettings(brokers="audit-kafka-bootstrap.kafka.svc:9092", topic="platform.audit.v1",
                            consumer_group="clickhouse-audit", retention_days=3000)
PARSE_MV = "008_ingest_parse_mv.sql"


class Pipeline:
    def __init__(self, path: str):
        self.sess = chdb_session.Session(path)
        self.offset = 0
        statements = dict(render_named_statements(SETTINGS))
        for name, sql in statements.items():
            try:
                self.query(sql)
            except Exception as exc:  # chdb registers the Kafka table, then cannot start its consumer
                if "Shutdown was called" not in str(exc):
                    raise
        columns = self.rows("DESCRIBE TABLE audit.kafka_queue", settings="describe_include_virtual_columns = 1")
        self.query("DROP VIEW audit.ingest_parse_mv")
        self.query("DROP TABLE audit.kafka_queue")
        self.query("CREATE TABLE audit.kafka_queue ({}) ENGINE = Null".format(
            ", ".join(f"`{c['name']}` {c['type']}" for c in columns)))
        self.query(statements[PARSE_MV])

    def close(self) -> None:
        self.sess.close()

    def query(self, sql: str, fmt: str = "TSV") -> str:
        return str(self.sess.query(sql, fmt))

    def rows(self, sql: str, settings: str = "output_format_json_quote_64bit_integers = 0") -> list[dict]:
        out = self.query(f"{sql} SETTINGS {settings}", "JSONEachRow")
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def deliver(self, message: str) -> None:
        """One Kafka message (partition 0, next offset) through the contract's SQL."""
        self.query("INSERT INTO audit.kafka_queue (message, _topic, _partition, _offset) "
                   f"SELECT {sql_string(message)}, 'platform.audit.v1', 0, {self.offset}")
        self.offset += 1

    def accepted(self, event_id: str) -> int:
        return int(self.query(f"SELECT count() FROM audit.events WHERE event_id = toUUID('{event_id}')").strip())

    def errors_for(self, message: str) -> list[str]:
        return [r["error"] for r in self.rows(f"SELECT error FROM audit.ingest_errors WHERE raw_message = {sql_string(message)}")]

    def reset(self) -> None:
        self.query("TRUNCATE TABLE audit.events")
        self.query("TRUNCATE TABLE audit.ingest_errors")


def expand_macros(sql: str, start: datetime, end: datetime, interval_seconds: int = 3600) -> str:
    """The ClickHouse plugin's macros as it expands them (its documented expansions, e.g.
    ``$__timeFilter(t)`` -> ``t >= toDateTime(1415792726) AND t <= toDateTime(1447328726)``,
    ``$__timeInterval(t)`` -> ``toStartOfInterval(toDateTime(t), INTERVAL 20 second)``)."""
    lo, hi = int(start.timestamp()), int(end.timestamp())
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", lambda m: f"{m[1]} >= toDateTime({lo}) AND {m[1]} <= toDateTime({hi})", sql)
    sql = re.sub(r"\$__timeInterval\(([^)]+)\)", lambda m: f"toStartOfInterval(toDateTime({m[1]}), INTERVAL {interval_seconds} second)", sql)
    sql = sql.replace("$__fromTime", f"toDateTime({lo})").replace("$__toTime", f"toDateTime({hi})")
    assert "$__" not in sql, f"a macro the tests do not expand: {sql}"
    return sql


def rfc3339(moment: datetime) -> str:
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def ago(**delta: float) -> datetime:
    return now() - timedelta(**delta)


def as_message(event: Mapping) -> str:
    return json.dumps(event, separators=(",", ":"))


def deliver_many(pipe: Pipeline, messages: list[str]) -> None:
    """Many Kafka messages in few inserts (consecutive offsets), through the same SQL as ``deliver``."""
    for start in range(0, len(messages), 200):  # the parser's max_query_size bounds one statement
        chunk = messages[start:start + 200]
        literal = ", ".join(sql_string(m) for m in chunk)
        pipe.query("INSERT INTO audit.kafka_queue (message, _topic, _partition, _offset) "
                   f"SELECT m, 'platform.audit.v1', 1, {pipe.offset} + rowNumberInAllBlocks() FROM (SELECT arrayJoin([{literal}]) AS m)")
        pipe.offset += len(chunk)
