"""The cost dashboard and the cost anomaly alert, both reading ClickHouse ``cost.allocations`` through
Grafana's ClickHouse data source (uid ``clickhouse``, provisioned by the compliance part).

The dashboard is a ConfigMap in the observability namespace labelled ``grafana_dashboard``, which
Core's Grafana sidecar loads like Core's own dashboards. The alert is a Grafana-managed alert rule in
Grafana's file-provisioning format (apiVersion 1, groups), as a ConfigMap labelled ``grafana_alert``:
the route docs/architecture/compliance.md fixes (Core's Grafana alerts sidecar loads it; Grafana sends
it to the platform Alertmanager). Prometheus rules cannot query ClickHouse, so this is not a PrometheusRule.
Both are built whenever the phase has its ``cost`` namespace, with or without Kubecost: the table is
Core's, and an empty panel says "no cost data yet" better than a missing one.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.kit.labels import recommended

HERE = Path(__file__).resolve().parent
DASHBOARD = HERE / "dashboards" / "cost.json"
ANOMALY_SQL = HERE / "alerts" / "cost_anomaly.sql"
DATASOURCE_UID = "clickhouse"
DATASOURCE_TYPE = "grafana-clickhouse-datasource"
DASHBOARD_LABEL = "grafana_dashboard"
ALERT_LABEL = "grafana_alert"
RUNBOOK = "docs/runbooks/governance.md#cost-anomaly"
ALERT_UID = "cost-anomaly"


def dashboard() -> dict[str, Any]:
    """The cost dashboard; every panel names the ClickHouse data source by uid."""
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def anomaly_query() -> str:
    return ANOMALY_SQL.read_text(encoding="utf-8").strip()


def alert_rules() -> dict[str, Any]:
    """Grafana's alert provisioning document in the format docs/architecture/compliance.md fixes (A: the SQL,
    B: reduce to the last value per series, C: threshold > 0): the SQL returns a row only for an anomalous
    namespace, its ``spike_ratio`` the verdict; no row, no alert (noDataState OK: the normal hour).
    """
    return {
        "apiVersion": 1,
        "groups": [{
            "orgId": 1,
            "name": "cost",
            "folder": "Governance",
            "interval": "15m",
            "rules": [{
                "uid": ALERT_UID,
                "title": "CostAnomaly",
                "condition": "C",
                "for": "0s",
                "data": [
                    {"refId": "A", "relativeTimeRange": {"from": 8 * 86400, "to": 0}, "datasourceUid": DATASOURCE_UID,
                     "model": {"refId": "A", "editorType": "sql", "format": 1, "queryType": "table", "rawSql": anomaly_query()}},
                    {"refId": "B", "datasourceUid": "__expr__",
                     "model": {"refId": "B", "type": "reduce", "expression": "A", "reducer": "last"}},
                    {"refId": "C", "datasourceUid": "__expr__",
                     "model": {"refId": "C", "type": "threshold", "expression": "B",
                               "conditions": [{"evaluator": {"type": "gt", "params": [0]}}]}},
                ],
                "noDataState": "OK",
                "execErrState": "Error",
                "labels": {"severity": "warning", "phase": "governance", "part": "cost"},
                "annotations": {
                    "summary": "Namespace {{ $labels.namespace }} cost {{ $values.B }}x its hourly average of the last week",
                    "description": "The last ingested hour of cost.allocations for {{ $labels.namespace }} (phase {{ $labels.phase }}, "
                                   "tenant {{ $labels.tenant }}) is more than twice its weekly hourly average and three standard "
                                   "deviations above it.",
                    "runbook_url": RUNBOOK,
                },
            }],
        }],
    }


def reporting_config_maps(namespace: str, opts: pulumi.ResourceOptions) -> list[k8s.core.v1.ConfigMap]:
    """The dashboard and the alert rule as ConfigMaps in Grafana's namespace."""
    return [
        k8s.core.v1.ConfigMap(
            f"{namespace}-grafana-dashboard-cost",
            metadata={"name": "grafana-dashboard-cost", "namespace": namespace,
                      "labels": {**recommended("grafana-dashboard-cost", "dashboard"), DASHBOARD_LABEL: "1"}},
            data={"cost.json": json.dumps(dashboard(), indent=1, sort_keys=True)},
            opts=opts,
        ),
        k8s.core.v1.ConfigMap(
            f"{namespace}-grafana-alerts-cost",
            metadata={"name": "grafana-alerts-cost", "namespace": namespace,
                      "labels": {**recommended("grafana-alerts-cost", "alert-rules"), ALERT_LABEL: "1"}},
            data={"cost.yaml": yaml.safe_dump(alert_rules(), sort_keys=False)},
            opts=opts,
        ),
    ]
