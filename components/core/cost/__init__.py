"""The ClickHouse schema of cost data (``cost.allocations``) and the SQL that maps Kubecost's allocation
API onto it.

The DDL lives in ``sql/NNN_*.sql`` and is applied by Core's ClickHouse schema Job after the audit DDL,
rendered with the same templates (components/core/audit/sql_templates.py), so one Job owns the
analytics store's schema whatever phase reads it. ``allocations_to_rows.sql`` is the mapping the
ingest CronJob runs in clickhouse-local (components/governance/kubecost/ingest.py); the tests run the
same text in chdb against upstream-shaped responses.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

from components.core.audit.sql_templates import (MAX_RETENTION_DAYS, AuditSqlSettings, render_named_statements, render_template,
                                                 sql_string)

SQL_DIR = Path(__file__).resolve().with_name("sql")
MAPPING = Path(__file__).resolve().with_name("allocations_to_rows.sql")
DATABASE = "cost"
TABLE = "cost.allocations"
SCHEMA_PREFIX = "cost_"
"""ConfigMap keys of these statements: after the audit files (001_ ... 008_) in the Job's glob order."""
RETENTION_DAYS = 800
"""Two years and a bit: year-on-year comparisons need last year's month; monthly partitions stay under 100 per insert."""


class _CostSqlSettings(AuditSqlSettings):
    """The audit settings' placeholders plus the cost table's engine; ``retention_days`` is the cost table's own."""

    def placeholder_values(self) -> dict[str, str]:
        values = super().placeholder_values()
        values["replacing_engine"] = ("ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', ingested_at)"
                                      if self.replicated else "ReplacingMergeTree(ingested_at)")
        return values


def schema_statements(audit: AuditSqlSettings, retention_days: int = RETENTION_DAYS) -> list[tuple[str, str]]:
    """``(ConfigMap key, statement)`` of the cost DDL, for the same cluster layout as the audit DDL.

    ``retention_days`` is how long an hour of cost is kept after its window starts (1..3000). It is the
    cost table's own, not the audit events' retention: the two answer different questions (how far back
    a compliance review reaches, how far back a budget comparison reaches).
    """
    if isinstance(retention_days, bool) or not isinstance(retention_days, int) or not 1 <= retention_days <= MAX_RETENTION_DAYS:
        raise ValueError(f"cost retention_days: must be an integer from 1 to {MAX_RETENTION_DAYS} (got {retention_days!r})")
    settings = _CostSqlSettings(brokers=audit.brokers, topic=audit.topic, consumer_group=audit.consumer_group,
                                retention_days=retention_days, replicated=audit.replicated, cluster=audit.cluster)
    return [(SCHEMA_PREFIX + name, statement) for name, statement in render_named_statements(settings, SQL_DIR)]


SOURCE_MARKER = "__allocation_source__"


def _array(values: list[str]) -> str:
    return "[" + ", ".join(sql_string(v) for v in values) + "]"


def mapping_query(source: str, phases: Mapping[str, str]) -> str:
    """The SELECT that turns the API response in table ``source`` into ``cost.allocations`` rows (column order).

    ``phases`` maps each platform namespace to its phase (``soma-data`` -> ``core``): the phase of a
    workload without a phase label is its namespace's.
    """
    names = sorted(phases)
    values = {"source": SOURCE_MARKER, "phase_namespaces": _array(names), "phase_names": _array([phases[n] for n in names])}
    query = render_template(MAPPING.read_text(encoding="utf-8"), values, source=MAPPING.name).strip().removesuffix(";")
    # the source last: an inline response (tests) holds "}}" that the placeholder check would take for a hole
    return query.replace(SOURCE_MARKER, source)
