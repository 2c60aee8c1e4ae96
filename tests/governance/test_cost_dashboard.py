"""The cost dashboard's and the cost anomaly alert's ClickHouse queries, run in chdb against sample rows.

Grafana's ClickHouse plugin expands ``$__timeFilter(col)`` and ``$__timeInterval(col)`` before sending the
query; here they are expanded the same way (a BETWEEN over the dashboard range, toStartOfInterval over an
hour), so the text that runs is the panel's text with the macros filled in.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from chdb import session as chdb_session

from components.core.audit.sql_templates import AuditSqlSettings
from components.core.cost import TABLE, schema_statements
from components.governance.kubecost import reporting

SINGLE = AuditSqlSettings(brokers="kafka:9093", topic="platform.audit.v1", consumer_group="clickhouse-audit", retention_days=30)
LATEST = datetime.now(timezone.utc).replace(tzinfo=None, minute=0, second=0, microsecond=0) - timedelta(hours=2)
"""A recent hour: the table's TTL (800 days) drops older hours whenever a background merge runs."""
NAMESPACES = {"soma-agents": ("agents", "acme"), "soma-data": ("core", ""), "soma-edge": ("mesh", "")}
BASELINE = {"soma-agents": 0.20, "soma-data": 0.60, "soma-edge": 0.05}


def grafana_macros(sql: str, start: datetime, end: datetime) -> str:
    sql = re.sub(r"\$__timeFilter\((\w+)\)", lambda m: f"{m[1]} BETWEEN toDateTime('{start:%Y-%m-%d %H:%M:%S}', 'UTC') "
                                                      f"AND toDateTime('{end:%Y-%m-%d %H:%M:%S}', 'UTC')", sql)
    return re.sub(r"\$__timeInterval\((\w+)\)", r"toStartOfInterval(\1, INTERVAL 3600 second)", sql)


def row(hour: datetime, namespace: str, cost: float) -> str:
    phase, tenant = NAMESPACES.get(namespace, ("", ""))
    return (f"('{hour:%Y-%m-%d %H:%M:%S}', '{hour + timedelta(hours=1):%Y-%m-%d %H:%M:%S}', 'one', '{namespace}', '{phase}', "
            f"'{tenant}', {cost}, now64(3))")


def insert_rows(sess, rows: list[str]) -> None:
    sess.query(f"INSERT INTO {TABLE} (window_start, window_end, cluster, namespace, phase, tenant, total_cost, ingested_at) VALUES "
               + ", ".join(rows))


def insert(sess, hour: datetime, namespace: str, cost: float) -> None:
    insert_rows(sess, [row(hour, namespace, cost)])


@pytest.fixture()
def week(tmp_path):
    """Eight days of steady hourly cost per namespace, a little noise, ending at LATEST."""
    sess = chdb_session.Session(str(tmp_path / "chdb"))
    for _, statement in schema_statements(SINGLE):
        sess.query(statement)
    rows = []
    for h in range(8 * 24, -1, -1):
        hour = LATEST - timedelta(hours=h)
        rows += [row(hour, namespace, cost * (1 + 0.05 * ((h % 3) - 1))) for namespace, cost in BASELINE.items()]
        rows.append(row(hour, "__idle__", 0.5))
    insert_rows(sess, rows)
    yield sess
    sess.close()


def result(sess, sql: str) -> list[dict]:
    return [json.loads(line) for line in sess.query(sql, "JSONEachRow").data().splitlines() if line]


def panels() -> dict[str, dict]:
    return {p["title"]: p for p in reporting.dashboard()["panels"]}


def test_every_panel_reads_the_clickhouse_data_source_by_uid():
    for panel in reporting.dashboard()["panels"]:
        assert panel["datasource"]["uid"] == "clickhouse"
        assert all(t["datasource"]["uid"] == "clickhouse" and "cost.allocations" in t["rawSql"] for t in panel["targets"])


@pytest.mark.parametrize("dimension", ["namespace", "phase", "tenant"])
def test_cost_per_dimension_over_the_range_sums_the_hours(week, dimension):
    (target,) = panels()[f"Cost per {dimension} (window)"]["targets"]
    got = {r[dimension]: r["cost"] for r in result(week, grafana_macros(target["rawSql"], LATEST - timedelta(hours=23), LATEST))}
    expected: dict[str, float] = {}
    for h in range(24):
        for namespace, cost in BASELINE.items():
            key = {"namespace": namespace, "phase": NAMESPACES[namespace][0], "tenant": NAMESPACES[namespace][1]}[dimension]
            expected[key] = expected.get(key, 0) + cost * (1 + 0.05 * ((h % 3) - 1))
    expected[{"namespace": "__idle__", "phase": "", "tenant": ""}[dimension]] = expected.get(
        {"namespace": "__idle__", "phase": "", "tenant": ""}[dimension], 0) + 24 * 0.5
    assert got == pytest.approx(expected)


@pytest.mark.parametrize("dimension", ["namespace", "phase", "tenant"])
def test_cost_per_dimension_over_time_has_one_point_per_hour_and_no_idle(week, dimension):
    (target,) = panels()[f"Cost per {dimension}"]["targets"]
    got = result(week, grafana_macros(target["rawSql"], LATEST - timedelta(hours=5), LATEST))
    assert len({r["time"] for r in got}) == 6
    assert "__idle__" not in {r.get("namespace") for r in got}


def test_the_anomaly_query_is_quiet_on_the_baseline(week):
    assert result(week, reporting.anomaly_query()) == []


def test_the_anomaly_query_fires_for_the_namespace_that_spiked(week):
    insert(week, LATEST + timedelta(hours=1), "soma-agents", 1.5)
    for namespace in ("soma-data", "soma-edge"):
        insert(week, LATEST + timedelta(hours=1), namespace, BASELINE[namespace])
    (row,) = result(week, reporting.anomaly_query())
    assert (row["namespace"], row["phase"], row["tenant"]) == ("soma-agents", "agents", "acme")
    assert row["spike_ratio"] == pytest.approx(1.5 / 0.2, rel=0.01)


def test_a_new_namespace_does_not_page_before_a_day_of_history(week):
    for h in range(5, 0, -1):
        insert(week, LATEST - timedelta(hours=h), "soma-new", 0.01)
    insert(week, LATEST + timedelta(hours=1), "soma-new", 5.0)
    assert result(week, reporting.anomaly_query()) == []


def test_the_alert_rule_is_grafana_managed_with_its_runbook():
    doc = yaml.safe_load(yaml.safe_dump(reporting.alert_rules()))
    (group,) = doc["groups"]
    (rule,) = group["rules"]
    query, reduce, threshold = rule["data"]
    assert query["datasourceUid"] == "clickhouse" and query["model"]["rawSql"] == reporting.anomaly_query()
    assert reduce["model"]["expression"] == query["refId"] and threshold["model"]["expression"] == reduce["refId"]
    assert rule["condition"] == threshold["refId"]
    assert threshold["model"]["conditions"] == [{"evaluator": {"type": "gt", "params": [0]}}]
    assert rule["annotations"]["runbook_url"] == "docs/runbooks/governance.md#cost-anomaly"
    assert rule["noDataState"] == "OK"
