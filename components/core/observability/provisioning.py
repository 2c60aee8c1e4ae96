"""Dashboards and alert rules as code, delivered as Kubernetes objects.

Each phase dashboard (``dashboards/<phase>.json``) becomes a ConfigMap labelled
``grafana_dashboard: "1"``, which Grafana's dashboard sidecar loads; each alert file
(``alerts/<group>.yaml``) becomes one PrometheusRule, which Prometheus picks up because rule
selection spans every namespace. Both are templates whose ``<<name>>`` placeholders (namespaces,
scrape jobs) are filled with ``values`` (placeholders.py, from the stack settings). The files are
validated on load (catalog.py), so a broken dashboard or rule, or an unknown placeholder, stops
the deployment before anything is applied.
"""
from __future__ import annotations

import json
from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s

from components.core.observability.catalog import load_alert_groups, load_dashboards
from components.core.observability.grafana import DASHBOARD_LABEL, DASHBOARD_LABEL_VALUE
from components.kit import custom_resource, recommended


def dashboard_config_maps(namespace: str, values: Mapping[str, str], opts: pulumi.ResourceOptions) -> list[k8s.core.v1.ConfigMap]:
    maps = []
    for phase, dashboard in load_dashboards(values).items():
        name = f"grafana-dashboard-{phase}"
        maps.append(
            k8s.core.v1.ConfigMap(
                f"{namespace}-{name}",
                metadata={
                    "name": name,
                    "namespace": namespace,
                    "labels": {**recommended(name, "dashboard"), DASHBOARD_LABEL: DASHBOARD_LABEL_VALUE},
                },
                data={f"{phase}.json": json.dumps(dashboard, indent=1, sort_keys=True)},
                opts=opts,
            )
        )
    return maps


def alert_rules(namespace: str, values: Mapping[str, str], opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
    return [
        custom_resource(
            "monitoring.coreos.com/v1",
            "PrometheusRule",
            f"soma-{group}",
            namespace,
            spec=spec,
            labels=recommended(f"soma-{group}", "alert-rules"),
            opts=opts,
        )
        for group, spec in load_alert_groups(values).items()
    ]
