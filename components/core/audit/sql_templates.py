"""ClickHouse DDL of the audit pipeline, rendered from stack settings.

The SQL lives in ``sql/NNN_*.sql`` (one idempotent statement per file, run in
name order) so that it can be read, reviewed and diffed as SQL, and so that the
tests run the very text that ships. Values that differ between stacks are
written as ``{{name}}`` placeholders and filled in here from
:class:`AuditSqlSettings`. The lead's Pulumi code puts the rendered statements
into the ConfigMap that the ClickHouse init replays.

Substitution is plain text, not SQL quoting. That is safe only because every
value is validated first to a character set that cannot leave a quoted SQL
literal or start a new clause, which is why validation is strict and happens
in the settings object itself: an invalid object cannot exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "AuditSqlSettings",
    "BACKUP_DIR",
    "S3_DESTINATION",
    "S3_MARKERS",
    "render_backup",
    "render_fingerprint",
    "render_restore",
    "sql_string",
    "SQL_DIR",
    "TemplateError",
    "render_named_statements",
    "render_statements",
    "render_template",
    "template_files",
]

SQL_DIR = Path(__file__).resolve().with_name("sql")
BACKUP_DIR = Path(__file__).resolve().with_name("backup")
"""BACKUP, RESTORE and the drill's fingerprint: not part of the schema, so not in ``sql/``."""
S3_MARKERS = ("@DESTINATION@", "@ACCESS_KEY_ID@", "@SECRET_ACCESS_KEY@")
"""Filled by the backup CronJob at run time, each with an SQL string literal of an environment
value (URL with the run's timestamp, and the target's keys): no credential is ever rendered here."""
S3_DESTINATION = "S3({}, {}, {})".format(*S3_MARKERS)
_DATABASE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

# Upper bound on retention. The ingest view accepts occurred_at only inside the
# retention window and audit.events is partitioned by month; ClickHouse throws
# when one insert block touches more than 100 partitions
# (max_partitions_per_insert_block), and a throwing block stalls the Kafka
# consumer. 3000 days (~99 months) keeps any block under that limit while
# still covering 7-year retention regimes.
MAX_RETENTION_DAYS = 3000

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_TEMPLATE_NAME = re.compile(r"^[0-9]{3}_[a-z0-9_]+\.sql$")
_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_BROKER = re.compile(rf"^(?P<host>{_HOST_LABEL}(?:\.{_HOST_LABEL})*):(?P<port>[0-9]{{1,5}})$")
_KAFKA_NAME = re.compile(r"^[A-Za-z0-9._-]+$")  # Kafka's own legal topic characters
_CLUSTER = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# The ZooKeeper/Keeper path uses the table's {uuid} (unique per table, shared by
# its replicas when created ON CLUSTER), so one engine clause serves every
# table and a dropped table can never collide with its re-created successor.
_REPLICATED_ENGINE = "ReplicatedMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}')"


class TemplateError(ValueError):
    """A SQL template is malformed, or uses a placeholder nobody fills."""


def _fail(field: str, problem: str, value: object) -> ValueError:
    return ValueError(f"AuditSqlSettings.{field}: {problem} (got {value!r})")


@dataclass(frozen=True)
class AuditSqlSettings:
    """Stack-dependent values of the audit DDL, validated on construction.

    brokers        -- Kafka bootstrap list, ``host:port[,host:port...]`` (no spaces),
                      e.g. the Strimzi ``<cluster>-kafka-bootstrap.<ns>.svc:9093``.
    topic          -- the audit topic, ``platform.audit.v1``.
    consumer_group -- Kafka consumer group of ClickHouse; its committed offsets
                      are the pipeline's position, so it must stay stable.
    retention_days -- days an event is kept after occurred_at (1..3000).
    replicated     -- False (dev): MergeTree on one node, no ON CLUSTER.
                      True (prod): ReplicatedMergeTree, every statement ON CLUSTER.
    cluster        -- ClickHouse cluster name for ON CLUSTER; required when
                      replicated, and must be empty otherwise (ON CLUSTER with
                      plain MergeTree would create unreplicated, diverging copies).
    """

    brokers: str
    topic: str
    consumer_group: str
    retention_days: int
    replicated: bool = False
    cluster: str = ""

    def __post_init__(self) -> None:
        self._check_brokers()
        for field, max_len in (("topic", 249), ("consumer_group", 255)):
            value = getattr(self, field)
            if not isinstance(value, str) or not value:
                raise _fail(field, "must be a non-empty string", value)
            if len(value) > max_len or not _KAFKA_NAME.match(value) or value in (".", ".."):
                raise _fail(field, f"must be 1-{max_len} characters of [A-Za-z0-9._-]", value)
        days = self.retention_days
        # bool is an int subclass; True days is a bug, not a retention.
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_RETENTION_DAYS:
            raise _fail("retention_days", f"must be an integer from 1 to {MAX_RETENTION_DAYS}", days)
        if not isinstance(self.replicated, bool):
            raise _fail("replicated", "must be a bool", self.replicated)
        if not isinstance(self.cluster, str):
            raise _fail("cluster", "must be a string", self.cluster)
        if self.replicated and not _CLUSTER.match(self.cluster):
            raise _fail("cluster", "required when replicated: 1-64 characters of [A-Za-z0-9_-]", self.cluster)
        if not self.replicated and self.cluster:
            raise _fail("cluster", "must be empty when replicated is False", self.cluster)

    def _check_brokers(self) -> None:
        value = self.brokers
        if not isinstance(value, str) or not value:
            raise _fail("brokers", "must be a non-empty 'host:port[,host:port...]' string", value)
        for entry in value.split(","):
            match = _BROKER.match(entry)
            if not match or len(match["host"]) > 253 or not 1 <= int(match["port"]) <= 65535:
                raise _fail("brokers", f"entry {entry!r} is not host:port (port 1-65535, no spaces)", value)

    def placeholder_values(self) -> dict[str, str]:
        """Every placeholder the templates may use, mapped to its SQL text."""
        return {
            "brokers": self.brokers,
            "topic": self.topic,
            "consumer_group": self.consumer_group,
            "retention_days": str(self.retention_days),
            "on_cluster": f"ON CLUSTER '{self.cluster}'" if self.replicated else "",
            "mergetree_engine": _REPLICATED_ENGINE if self.replicated else "MergeTree",
        }


def render_template(text: str, values: dict[str, str], *, source: str = "<template>") -> str:
    """Fill ``{{name}}`` placeholders in ``text``.

    Raises TemplateError when the template names a placeholder that ``values``
    does not define, or still contains ``{{``/``}}`` afterwards (a misspelt
    placeholder such as ``{{ retention-days }}``): shipping DDL with a hole in
    it would fail later, on the server, far from the cause.
    """
    unknown = sorted({name for name in _PLACEHOLDER.findall(text) if name not in values})
    if unknown:
        raise TemplateError(f"{source}: unknown placeholder(s) {', '.join(unknown)}; known: {', '.join(sorted(values))}")
    rendered = _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)
    leftover = re.search(r"\{\{|\}\}", rendered)
    if leftover:
        line = rendered.count("\n", 0, leftover.start()) + 1
        raise TemplateError(f"{source}: unreplaced or malformed placeholder at line {line}")
    return rendered


def template_files(sql_dir: Path = SQL_DIR) -> list[Path]:
    """The ``NNN_name.sql`` files of ``sql_dir`` in execution order.

    Refuses a directory whose order would be ambiguous (a stray name, or two
    files with the same number) rather than guess.
    """
    files = sorted(Path(sql_dir).glob("*.sql"))
    if not files:
        raise TemplateError(f"{sql_dir}: no .sql templates")
    bad = [f.name for f in files if not _TEMPLATE_NAME.match(f.name)]
    if bad:
        raise TemplateError(f"{sql_dir}: template names must look like 001_name.sql: {', '.join(bad)}")
    numbers = [f.name[:3] for f in files]
    duplicated = sorted({n for n in numbers if numbers.count(n) > 1})
    if duplicated:
        raise TemplateError(f"{sql_dir}: more than one template numbered {', '.join(duplicated)}")
    return files


def render_named_statements(settings: AuditSqlSettings, sql_dir: Path = SQL_DIR) -> list[tuple[str, str]]:
    """``(file name, statement)`` pairs in execution order.

    Names let a ConfigMap keep one key per file and let tests pick a statement
    out by its file. Statements keep their comments and lose a trailing ``;``.
    """
    values = settings.placeholder_values()
    statements = []
    for path in template_files(sql_dir):
        statement = render_template(path.read_text(encoding="utf-8"), values, source=path.name).strip()
        statement = statement.removesuffix(";").rstrip()
        if not statement:
            raise TemplateError(f"{path.name}: empty template")
        statements.append((path.name, statement))
    return statements


def render_statements(settings: AuditSqlSettings, sql_dir: Path = SQL_DIR) -> list[str]:
    """The audit DDL for ``settings``: one statement per template, in order."""
    return [statement for _, statement in render_named_statements(settings, sql_dir)]


def sql_string(value: str) -> str:
    """``value`` as a ClickHouse string literal: backslash and single quote escaped with a backslash.

    The backup CronJob's awk renderer does the same at run time (components/core/data/clickhouse.py);
    tests run both against chdb.
    """
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _backup_statement(name: str, values: dict[str, str]) -> str:
    path = BACKUP_DIR / name
    statement = render_template(path.read_text(encoding="utf-8"), values, source=name).strip()
    return statement.removesuffix(";").rstrip()


def _on_cluster(settings: AuditSqlSettings) -> str:
    return settings.placeholder_values()["on_cluster"]


def render_backup(settings: AuditSqlSettings, destination: str = S3_DESTINATION) -> str:
    """``BACKUP DATABASE audit [ON CLUSTER] TO <destination>``; the CronJob's is S3 with run-time markers."""
    return _backup_statement("backup.sql", {"on_cluster": _on_cluster(settings), "destination": destination})


def render_restore(settings: AuditSqlSettings, target: str = "audit", destination: str = S3_DESTINATION) -> str:
    """``RESTORE DATABASE audit AS <target>`` without the Kafka table and its view (see restore.sql)."""
    if not _DATABASE_NAME.match(target):
        raise ValueError(f"restore target {target!r} must be a plain database name such as audit or audit_drill")
    return _backup_statement("restore.sql", {"on_cluster": _on_cluster(settings), "target": target, "destination": destination})


def render_fingerprint(database: str, cutoff: str) -> str:
    """The drill's comparison query for ``database``; ``cutoff`` is ``YYYY-MM-DD hh:mm:ss`` (UTC)."""
    if not _DATABASE_NAME.match(database):
        raise ValueError(f"database {database!r} must be a plain database name")
    if not re.match(r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$", cutoff):
        raise ValueError(f"cutoff {cutoff!r} must read YYYY-MM-DD hh:mm:ss (UTC)")
    return _backup_statement("fingerprint.sql", {"database": database, "cutoff": f"toDateTime64('{cutoff}', 3, 'UTC')"})
