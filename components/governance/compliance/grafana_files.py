"""The compliance dashboards and Grafana-managed alert rules, read from the files beside this module.

``dashboards/*.json`` are Grafana dashboards whose ClickHouse panels name the data source uid ``clickhouse``;
``alerts/*.yaml`` are Grafana alerting provisioning files (docs/architecture/compliance.md gives the format).
Two things are filled in per stack, never hand-written:

* ``<<waivers>>``, a panel's whole query: the waivers the stack's gate configuration accepts
  (``policies/config/<stack>.json``, every rule's ``allowedWaivers``), as a ClickHouse query over a literal
  array. The dashboard then shows what was deployed, and needs no table nor a job to keep one current; the
  query reads no table, so the read-only ``grafana`` user can run it.
* ``<<name>>`` thresholds in alert files, from ``governance.compliance`` settings (integers only).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from components.core.audit.sql_templates import sql_string

HERE = Path(__file__).resolve().parent
DASHBOARDS = HERE / "dashboards"
ALERTS = HERE / "alerts"
DATASOURCE = {"type": "grafana-clickhouse-datasource", "uid": "clickhouse"}
WAIVERS = "<<waivers>>"
PLACEHOLDER = re.compile(r"<<([a-z][a-zA-Z]*)>>")
DEDUPLICATED = "LIMIT 1 BY event_id"


def waivers(policy_config: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """``(rule, resource, finding or image, reason)`` for every allowedWaivers entry of every rule."""
    found = []
    for rule, config in sorted(policy_config.items()):
        if not isinstance(config, Mapping):
            continue
        for entry in config.get("allowedWaivers", []) or []:
            finding = entry.get("finding") or (f"image {entry['image']}" if entry.get("image") else "the whole rule")
            found.append((rule, entry.get("resource", ""), finding, entry.get("reason", "")))
    return found


def waivers_query(policy_config: Mapping[str, Any]) -> str:
    """A ClickHouse query returning the stack's waivers as rows (rule, resource, finding, reason)."""
    rows = ", ".join("(" + ", ".join(sql_string(value) for value in row) + ")" for row in waivers(policy_config))
    return ("SELECT w.1 AS rule, w.2 AS resource, w.3 AS finding, w.4 AS reason\n"
            f"FROM (SELECT arrayJoin(CAST([{rows}], 'Array(Tuple(String, String, String, String))')) AS w)\n"
            "ORDER BY rule, resource, finding")


def targets(dashboard: Mapping[str, Any]):
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield panel, target


def load_dashboards(policy_config: Mapping[str, Any], directory: Path = DASHBOARDS) -> dict[str, dict]:
    """Every dashboard by file stem, the waivers query filled in; refuses a panel on another data source, a
    query on audit.events without the contract's deduplication, or a placeholder left over."""
    dashboards = {}
    for path in sorted(directory.glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        for panel, target in targets(dashboard):
            where = f"{path.name}: panel {panel['title']!r}"
            if panel.get("datasource") != DATASOURCE or target.get("datasource") != DATASOURCE:
                raise ValueError(f"{where}: must query the ClickHouse data source {DATASOURCE}")
            sql = target["rawSql"]
            if sql == WAIVERS:
                target["rawSql"] = sql = waivers_query(policy_config)
            if "<<" in sql or ">>" in sql:
                raise ValueError(f"{where}: unknown placeholder in its query")
            if "audit.events" in sql and DEDUPLICATED not in sql:
                raise ValueError(f"{where}: reads audit.events without '{DEDUPLICATED}' (delivery is at least once)")
        dashboards[path.stem] = dashboard
    if not dashboards:
        raise ValueError(f"{directory}: no dashboards")
    return dashboards


def load_alert_files(values: Mapping[str, int], directory: Path = ALERTS) -> dict[str, dict]:
    """Every alert rule file by stem, its ``<<name>>`` thresholds filled from ``values`` (integers only)."""
    files = {}
    for path in sorted(directory.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        unknown = sorted({m for m in PLACEHOLDER.findall(text) if m not in values})
        if unknown:
            raise ValueError(f"{path.name}: unknown placeholder(s) {', '.join(unknown)}")
        text = PLACEHOLDER.sub(lambda m: str(int(values[m.group(1)])), text)
        document = yaml.safe_load(text)
        for group in document.get("groups", []):
            for rule in group.get("rules", []):
                for query in rule.get("data", []):
                    sql = query.get("model", {}).get("rawSql", "")
                    if query.get("datasourceUid") not in ("clickhouse", "__expr__"):
                        raise ValueError(f"{path.name}: rule {rule.get('uid')}: queries {query.get('datasourceUid')!r}")
                    if "audit.events" in sql and DEDUPLICATED not in sql:
                        raise ValueError(f"{path.name}: rule {rule.get('uid')}: reads audit.events without '{DEDUPLICATED}'")
        files[path.stem] = document
    return files
