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

import yaml
from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s

from components.core.observability.catalog import load_alert_groups, load_dashboards
from components.core.observability.grafana import ALERT_LABEL, ALERT_LABEL_VALUE, DASHBOARD_LABEL, DASHBOARD_LABEL_VALUE
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


def grafana_alerting_config_map(name: str, namespace: str, document: dict, opts: pulumi.ResourceOptions) -> k8s.core.v1.ConfigMap:
    """One Grafana alerting provisioning file (rules, contact points, policies) as a ConfigMap Grafana's alerts
    sidecar loads: labelled ``grafana_alert: "1"``, in Grafana's namespace, one key ``<name>.yaml``.

    Later phases deliver their Grafana-managed alert rules through this (docs/architecture/compliance.md)."""
    return k8s.core.v1.ConfigMap(
        f"{namespace}-{name}",
        metadata={"name": name, "namespace": namespace, "labels": {**recommended(name, "alert-rules"), ALERT_LABEL: ALERT_LABEL_VALUE}},
        data={f"{name}.yaml": yaml.safe_dump(document, sort_keys=False)},
        opts=opts,
    )


def grafana_dashboard_config_map(name: str, namespace: str, dashboard: dict, opts: pulumi.ResourceOptions) -> k8s.core.v1.ConfigMap:
    """One dashboard as the ConfigMap Grafana's dashboard sidecar loads (``grafana_dashboard: "1"``, Grafana's namespace)."""
    return k8s.core.v1.ConfigMap(
        f"{namespace}-{name}",
        metadata={"name": name, "namespace": namespace, "labels": {**recommended(name, "dashboard"), DASHBOARD_LABEL: DASHBOARD_LABEL_VALUE}},
        data={f"{name}.json": json.dumps(dashboard, indent=1, sort_keys=True)},
        opts=opts,
    )
