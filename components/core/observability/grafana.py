"""Grafana: the three data sources provisioned with fixed uids, dashboards from ConfigMaps.

The dashboards under ``dashboards/`` name their data sources by uid (``prometheus``, ``loki``,
``tempo``), so the uids are fixed here and checked by the dashboards' own tests. Links between
the signals are provisioned too: a Tempo span opens its logs in Loki (tracesToLogsV2), a Loki
line's ``trace_id`` opens the trace in Tempo (derived field), and a Prometheus exemplar opens
its trace.

Admin credentials: a generated password stored in Vault, synced into this namespace by ESO as
``grafana-admin`` and read through ``admin.existingSecret``; the chart never generates one.

Database: every replica uses the ``grafana`` database on the platform's PostgreSQL (CloudNativePG),
so users, login sessions, preferences and anything saved in the UI are shared and survive a pod; the
owner's password is the role's own generated credential, granted to Grafana through Vault as
``grafana-database`` and read from ``GF_DATABASE_PASSWORD`` (Grafana's ``GF_<SECTION>_<KEY>``
override), never from grafana.ini. The connection is TLS (``ssl_mode: require``): CloudNativePG serves
TLS with its own CA, which lives in the data namespace, so the server's name is not verified; the
NetworkPolicies let Grafana reach the instances of that Cluster only.

Off, with reasons: init-chown (runs as root, busybox not in the catalog), the test framework pod
(image not in the catalog), persistence (dashboards and data sources are code, the rest is in
PostgreSQL, so a pod is disposable).

Keys read from grafana-community/helm-charts charts/grafana/values.yaml at 309f281c (lock file
comment): image.*, sidecar.image.*, sidecar.dashboards.*, admin.*, datasources, grafana.ini,
testFramework, initChownData, rbac, serviceMonitor, extraEmptyDirMounts, containerSecurityContext,
podLabels, envValueFrom (templates/_pod.tpl renders each as ``valueFrom``); ``grafana.assertNoLeakedSecrets``
(templates/_helpers.tpl) refuses a literal ``database.password`` in grafana.ini.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.core.interfaces import DatabaseAccess, SecretRef
from components.core.observability import grafana_plugin, topology as t
from components.kit.security import container_security_context, pod_security_context, resource_requirements
from components.core.observability.images import registry_repository_tag_sha
from components.kit import KitContext, recommended
from components.kit.labels import client_label
from components.settings import Resources, Stateless

GRAFANA_UID = 472
SERVICE_ACCOUNT = t.GRAFANA_FULLNAME
SIDECAR_UID = 65534
DASHBOARD_LABEL = "grafana_dashboard"
DASHBOARD_LABEL_VALUE = "1"
ADMIN_USER_KEY = "admin-user"
ADMIN_PASSWORD_KEY = "admin-password"
DATABASE_PASSWORD_KEY = "password"
DATABASE_PASSWORD_ENV = "GF_DATABASE_PASSWORD"
SIDECAR_RESOURCES = Resources(cpu_request="10m", memory_request="64Mi", cpu_limit="200m", memory_limit="128Mi")
CLICKHOUSE_UID = "clickhouse"
"""The ClickHouse data source's uid: dashboards and alert rules on ClickHouse name it (docs/architecture/compliance.md)."""
CLICKHOUSE_PASSWORD_ENV = "CLICKHOUSE_GRAFANA_PASSWORD"
CLICKHOUSE_PASSWORD_KEY = "password"
ALERT_LABEL = "grafana_alert"
ALERT_LABEL_VALUE = "1"
ALERTMANAGER_CONTACT_POINT = "platform-alertmanager"


@dataclass(frozen=True)
class ClickHouseSource:
    """Grafana's ClickHouse data source: where ClickHouse answers (HTTP), as which user, with which password
    (an ESO Secret), the pinned plugin that reads it, and the platform Alertmanager its alerts go to."""

    host: str
    port: int
    user: str
    database: str
    password: SecretRef
    plugin: grafana_plugin.PinnedPlugin
    alertmanager_url: str


def clickhouse_datasource(source: ClickHouseSource) -> dict[str, Any]:
    """Keys from the plugin's provisioning reference (clickhouse.com/docs/integrations/grafana/config: jsonData
    host, port, protocol, secure, username, defaultDatabase; secureJsonData password). The password is the
    environment variable Grafana expands in provisioning files, filled from the ESO Secret."""
    return {
        "name": "ClickHouse",
        "type": grafana_plugin.PLUGIN_ID,
        "uid": CLICKHOUSE_UID,
        "access": "proxy",
        "editable": False,
        "jsonData": {
            "host": source.host,
            "port": source.port,
            "protocol": "http",
            "secure": False,
            "username": source.user,
            "defaultDatabase": source.database,
        },
        # Grafana expands ${VAR} in provisioning files from its environment (filled by secretKeyRef below)
        "secureJsonData": {"password": f"${{{CLICKHOUSE_PASSWORD_ENV}}}"},
    }


def alerting_routes(alertmanager_url: str) -> dict[str, Any]:
    """Grafana's alerting provisioning file that sends every Grafana-managed alert to the platform Alertmanager.

    Format: Grafana's file provisioning for alerting (``contactPoints`` with a ``prometheus-alertmanager``
    receiver, ``policies`` replacing org 1's notification policy tree). Alertmanager then routes, groups,
    silences and delivers them with the same receivers as Prometheus' alerts; Grafana only evaluates."""
    return {
        "apiVersion": 1,
        "contactPoints": [{
            "orgId": 1,
            "name": ALERTMANAGER_CONTACT_POINT,
            "receivers": [{"uid": ALERTMANAGER_CONTACT_POINT, "type": "prometheus-alertmanager",
                           "settings": {"url": alertmanager_url}, "disableResolveMessage": False}],
        }],
        "policies": [{
            "orgId": 1,
            "receiver": ALERTMANAGER_CONTACT_POINT,
            "group_by": ["grafana_folder", "alertname"],
        }],
    }


def datasources(topo: t.Topology) -> list[dict[str, Any]]:
    """Prometheus, Loki and Tempo with the uids the dashboards use and links between them.

    ``$$`` is how a provisioning file writes a literal ``$`` (Grafana expands environment
    variables in these files).
    """
    return [
        {
            "name": "Prometheus",
            "type": "prometheus",
            "uid": "prometheus",
            "access": "proxy",
            "url": topo.prometheus_url,
            "isDefault": True,
            "jsonData": {"exemplarTraceIdDestinations": [{"name": "trace_id", "datasourceUid": "tempo"}]},
        },
        {
            "name": "Loki",
            "type": "loki",
            "uid": "loki",
            "access": "proxy",
            "url": topo.loki_query_url,
            "jsonData": {
                "derivedFields": [
                    {
                        "name": "TraceID",
                        "matcherType": "label",
                        "matcherRegex": "trace_id",
                        "datasourceUid": "tempo",
                        "url": "$${__value.raw}",
                    }
                ]
            },
        },
        {
            "name": "Tempo",
            "type": "tempo",
            "uid": "tempo",
            "access": "proxy",
            "url": topo.tempo_query_url,
            "jsonData": {
                "tracesToLogsV2": {
                    "datasourceUid": "loki",
                    "filterByTraceID": True,
                    "spanStartTimeShift": "-5m",
                    "spanEndTimeShift": "5m",
                },
                "serviceMap": {"datasourceUid": "prometheus"},
                "lokiSearch": {"datasourceUid": "loki"},
            },
        },
    ]


DASHBOARD_READER = "grafana-dashboard-reader"


def dashboard_reader(namespace: str, opts: pulumi.ResourceOptions) -> pulumi.Resource:
    """The Role Grafana's dashboard sidecar needs: read ConfigMaps of its namespace, and nothing else."""
    return k8s.rbac.v1.Role(
        f"{namespace}-{DASHBOARD_READER}",
        metadata={"name": DASHBOARD_READER, "namespace": namespace, "labels": recommended(DASHBOARD_READER, "rbac")},
        rules=[{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "watch", "list"]}],
        opts=opts,
    )


def database_ini(database: DatabaseAccess) -> dict[str, Any]:
    """grafana.ini ``[database]``: PostgreSQL, without the password (that comes from the environment)."""
    return {"type": "postgres", "host": database.address, "name": database.name, "user": database.user, "ssl_mode": "require"}


def with_clickhouse(chart_values: dict[str, Any], source: ClickHouseSource, ctx: KitContext) -> dict[str, Any]:
    """The chart values with the ClickHouse data source, its pinned plugin and Grafana-managed alerting added.

    * The plugin: an init container (grafana_plugin.py) unpacks the checked zip into an emptyDir mounted at
      Grafana's plugins path (``extraEmptyDirMounts`` mounts it in Grafana; the init container mounts the same
      volume by name; ``extraInitContainers``, templates/_pod.tpl).
    * The data source (uid ``clickhouse``) beside the other three; its password from the environment.
    * The alerts sidecar (``sidecar.alerts``, the chart's): Grafana-managed alert rule files arrive as ConfigMaps
      labelled ``grafana_alert: "1"`` in this namespace (the Governance phase's compliance and cost rules), are
      written to /etc/grafana/provisioning/alerting and reloaded through Grafana's admin API with the admin
      credentials the chart hands the sidecar (REQ_USERNAME/REQ_PASSWORD from ``admin.existingSecret``).
    * The client label ClickHouse admits (``clickhouse-from-clients``).
    """
    if CLICKHOUSE_PASSWORD_KEY not in source.password.keys:
        raise ValueError(f"grafana: the Secret {source.password.name} has no key {CLICKHOUSE_PASSWORD_KEY!r}")
    out = dict(chart_values)
    out["extraEmptyDirMounts"] = [*out["extraEmptyDirMounts"], {"name": grafana_plugin.VOLUME, "mountPath": grafana_plugin.PLUGINS_DIR}]
    out["extraInitContainers"] = [grafana_plugin.init_container(source.plugin, ctx.catalog.image("k8s-sidecar"), GRAFANA_UID)]
    out["podLabels"] = {**out["podLabels"], **client_label("clickhouse")}
    out["envValueFrom"] = {**out["envValueFrom"],
                           CLICKHOUSE_PASSWORD_ENV: {"secretKeyRef": {"name": source.password.name, "key": CLICKHOUSE_PASSWORD_KEY}}}
    provisioned = out["datasources"]["datasources.yaml"]
    out["datasources"] = {"datasources.yaml": {**provisioned, "datasources": [*provisioned["datasources"], clickhouse_datasource(source)]}}
    out["sidecar"] = {**out["sidecar"], "alerts": {"enabled": True, "label": ALERT_LABEL, "labelValue": ALERT_LABEL_VALUE, "resource": "configmap"}}
    return out


def values(settings: Stateless, ctx: KitContext, topo: t.Topology, admin: SecretRef, database: DatabaseAccess,
           database_secret: SecretRef) -> dict[str, Any]:
    if DATABASE_PASSWORD_KEY not in database_secret.keys:
        raise ValueError(f"grafana: the Secret {database_secret.name} has no key {DATABASE_PASSWORD_KEY!r}")
    image = ctx.catalog.image
    return {
        "fullnameOverride": t.GRAFANA_FULLNAME,
        "replicas": settings.replicas,
        "image": registry_repository_tag_sha(image("grafana")),
        "resources": resource_requirements(settings.resources),
        "securityContext": pod_security_context(GRAFANA_UID),
        "containerSecurityContext": container_security_context(uid=GRAFANA_UID),
        "extraEmptyDirMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "admin": {"existingSecret": admin.name, "userKey": ADMIN_USER_KEY, "passwordKey": ADMIN_PASSWORD_KEY},
        "podLabels": dict(database.client_labels),
        "envValueFrom": {DATABASE_PASSWORD_ENV: {"secretKeyRef": {"name": database_secret.name, "key": DATABASE_PASSWORD_KEY}}},
        "datasources": {"datasources.yaml": {"apiVersion": 1, "datasources": datasources(topo)}},
        "sidecar": {
            "image": registry_repository_tag_sha(image("k8s-sidecar")),
            "resources": resource_requirements(SIDECAR_RESOURCES),
            "securityContext": container_security_context(uid=SIDECAR_UID),
            # ConfigMaps only: the dashboards are ConfigMaps, and the sidecar may read no Secret
            "dashboards": {"enabled": True, "label": DASHBOARD_LABEL, "labelValue": DASHBOARD_LABEL_VALUE, "resource": "configmap"},
        },
        "grafana.ini": {
            "analytics": {"reporting_enabled": False, "check_for_updates": False, "check_for_plugin_updates": False},
            # Grafana 12+ installs a list of plugins from grafana.com at start unless told not to; plugins come
            # only from the checked init container (grafana_plugin.py), never from Grafana itself
            "plugins": {"preinstall_disabled": True},
            "users": {"allow_sign_up": False},
            "auth.anonymous": {"enabled": False},
            "log.console": {"format": "json"},
            "database": database_ini(database),
        },
        # The chart's own Role lets the sidecar read every Secret of the namespace (Loki's and Tempo's
        # bucket keys among them) whenever a sidecar is on; Grafana is bound to ours instead.
        "rbac": {"create": True, "namespaced": True, "useExistingRole": DASHBOARD_READER},
        "persistence": {"enabled": False},
        "initChownData": {"enabled": False},
        "testFramework": {"enabled": False},
        "serviceMonitor": {"enabled": True},
        "podDisruptionBudget": {"maxUnavailable": 1} if settings.replicas > 1 else {},
    }
