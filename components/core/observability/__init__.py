"""Core part 2, observability: collector, Prometheus, Loki, Tempo, Grafana, dashboards and alerts.

``Observability(settings, ctx, secrets, storage, grafana_database, prometheus_chart, workload_namespaces, phase_namespaces)``
is built by Core after its secrets and data parts, from which it takes exactly three things: Vault-backed
grants for Grafana's admin and database credentials, the MinIO buckets of Loki and Tempo, and Grafana's
database on the platform's PostgreSQL; ``workload_namespaces``
(every namespace where workloads run) are the only ones the collector accepts telemetry from;
``phase_namespaces`` (the later phases' namespaces by phase) fill the dashboards and alert rules with Core's. The kube-prometheus-stack chart is
built by Core before everything else (monitoring_stack.py: its monitoring CRDs are installed first) and
handed in; the rest of the stack and the alert rules wait for those CRDs only. Everything runs in the observability
namespace; every chart comes from the catalog, every flow in and out is a named NetworkPolicy
(flows.py), and the kit points every workload at the collector this component deploys.
"""
from __future__ import annotations

from dataclasses import dataclass

from typing import Mapping, Sequence

import pulumi

from components.core.interfaces import DatabaseAccess, ObjectStorage, SecretGrants
from components.core.data.clickhouse import GrafanaReader
from components.core.observability import (
    alerting, collector, flows, grafana, grafana_plugin, loki, node_logs, placeholders, provisioning, scrape_targets, tempo,
)
from components.core.observability.stores import Bucket
from components.core.observability.topology import ALERTMANAGER_WEB, GRAFANA_FULLNAME, Topology
from components.kit import KitContext, Peer, helm_chart
from components.settings import ComplianceSettings, CoreSettings


@dataclass(frozen=True)
class ObservabilityOutputs:
    """Addresses later phases may use: push OTLP, query metrics, logs and traces."""

    namespace: str
    otlp_endpoint: str
    prometheus_url: str
    loki_url: str
    loki_push_url: str
    """Loki's OTLP endpoint, where the collector and the node log agent push logs."""
    tempo_url: str
    grafana_service: str


class Observability(pulumi.ComponentResource):
    def __init__(
        self,
        settings: CoreSettings,
        ctx: KitContext,
        secrets: SecretGrants,
        storage: ObjectStorage,
        grafana_database: DatabaseAccess,
        prometheus_chart: pulumi.Resource,
        workload_namespaces: Sequence[str],
        phase_namespaces: Mapping[str, Sequence[str]],
        opts: pulumi.ResourceOptions | None = None,
        later_targets: Sequence[tuple[str, tuple[tuple[str, str], ...], tuple[int, ...]]] = (),
        clickhouse: GrafanaReader | None = None,
        compliance: ComplianceSettings | None = None,
    ):
        super().__init__("somaagenthub:core:Observability", "observability", None, opts)
        obs = settings.observability
        ns = settings.namespaces.observability.name
        topo = Topology(namespace=ns, loki_scalable=obs.loki.mode == "scalable", prometheus_replicas=obs.prometheus.replicas)
        ordered_after = _as_list(opts.depends_on if opts else None)
        child = pulumi.ResourceOptions(parent=self, depends_on=ordered_after)

        admin = secrets.grant(
            "grafana", ns, grafana.SERVICE_ACCOUNT, "admin",
            {grafana.ADMIN_USER_KEY: "admin", grafana.ADMIN_PASSWORD_KEY: secrets.password("grafana-admin")},
        )
        # the owner role's own generated password, granted to Grafana too: both ends hold the same value
        database = secrets.grant("grafana", ns, grafana.SERVICE_ACCOUNT, "database",
                                 {grafana.DATABASE_PASSWORD_KEY: secrets.password(grafana_database.password)})
        # Alertmanager's receivers' credentials, written to Vault by an administrator (alerting.py)
        receivers = obs.alertmanager.receivers if alerting.delivers(obs.alertmanager, settings.vault.configure) else {}
        self.receiver_credentials = None
        if alerting.credential_keys(obs.alertmanager) and receivers:
            self.receiver_credentials = secrets.share(alerting.CREDENTIALS_SERVICE, ns, obs.alertmanager.credentials_path,
                                                      alerting.credential_keys(obs.alertmanager))
            if self.receiver_credentials.name != alerting.CREDENTIALS_SECRET:
                raise ValueError(f"Alertmanager mounts {alerting.CREDENTIALS_SECRET}, but the credentials arrive as "
                                 f"{self.receiver_credentials.name}")
        loki_bucket = Bucket.of(storage.access("loki"), ns)
        tempo_bucket = Bucket.of(storage.access("tempo"), ns)

        self.prometheus = prometheus_chart
        # charts and rules wait for the monitoring CRDs they use (through ctx), not for the Prometheus release
        after_crds = ctx.after_metrics_crds(child)
        self.collector = helm_chart("opentelemetry-collector", "opentelemetry-collector", ns, collector.values(obs.collector, ctx, topo), ctx, after_crds)
        self.loki = helm_chart("loki", "loki", ns, loki.values(obs.loki, ctx, loki_bucket), ctx, after_crds)
        self.tempo = helm_chart("tempo", "tempo", ns, tempo.values(obs.tempo, ctx, tempo_bucket), ctx, after_crds)
        reader = grafana.dashboard_reader(ns, child)
        grafana_values = grafana.values(obs.grafana, ctx, topo, admin, grafana_database, database)
        # the compliance part's ClickHouse data source (docs/architecture/compliance.md): plugin, password, alerting
        source = self._clickhouse_source(secrets, ns, topo, clickhouse, compliance)
        self.alerting_routes = None
        if source is not None:
            grafana_values = grafana.with_clickhouse(grafana_values, source, ctx)
            self.alerting_routes = provisioning.grafana_alerting_config_map(
                "grafana-alerting-routes", ns, grafana.alerting_routes(source.alertmanager_url), child)
        self.grafana = helm_chart("grafana", "grafana", ns, grafana_values, ctx,
                                  pulumi.ResourceOptions.merge(after_crds, pulumi.ResourceOptions(depends_on=[reader])))
        rule_values = placeholders.values(settings, phase_namespaces)
        self.dashboards = provisioning.dashboard_config_maps(ns, rule_values, child)
        self.alert_rules = provisioning.alert_rules(ns, rule_values, after_crds)
        hosts = flows.HostNetworks(settings.api_server_cidr, settings.node_cidr)
        scraped = (*scrape_targets.core_targets(settings.namespaces),
                   *(scrape_targets.Scraped(namespace, dict(pods), ports) for namespace, pods, ports in later_targets))
        node_logs_ns = settings.namespaces.node_logs
        agent = Peer(namespace=node_logs_ns.name, pods=node_logs.POD_LABELS) if node_logs_ns else None
        self.network_policies = flows.network_policies(
            ns, [*flows.telemetry_flows(loki_bucket.address, tempo_bucket.address, hosts, scraped, workload_namespaces, grafana_database,
                                        receivers, agent),
                 *(flows.clickhouse_flows(clickhouse, compliance.plugin_source) if source is not None else ())],
            child, ctx.flows
        )

        self.outputs = ObservabilityOutputs(
            namespace=ns,
            otlp_endpoint=ctx.telemetry.otlp_endpoint,
            prometheus_url=topo.prometheus_url,
            loki_url=topo.loki_query_url,
            loki_push_url=topo.loki_otlp_url,
            tempo_url=topo.tempo_query_url,
            grafana_service=topo.host(GRAFANA_FULLNAME),
        )
        self.register_outputs({"prometheusUrl": topo.prometheus_url, "lokiUrl": topo.loki_query_url, "tempoUrl": topo.tempo_query_url})


    @staticmethod
    def _clickhouse_source(secrets: SecretGrants, ns: str, topo: Topology, clickhouse: GrafanaReader | None,
                           compliance: ComplianceSettings | None) -> grafana.ClickHouseSource | None:
        if compliance is None or clickhouse is None:
            return None
        password = secrets.grant("grafana", ns, grafana.SERVICE_ACCOUNT, "clickhouse",
                                 {grafana.CLICKHOUSE_PASSWORD_KEY: secrets.password(clickhouse.password_name)})
        return grafana.ClickHouseSource(
            host=clickhouse.host, port=clickhouse.port, user=clickhouse.user, database=clickhouse.database, password=password,
            plugin=grafana_plugin.PinnedPlugin.of(compliance.plugin_source),
            alertmanager_url=f"http://{topo.host(topo.alertmanager_service)}:{ALERTMANAGER_WEB}",
        )


def _as_list(depends_on: object) -> list:
    """Children wait for what the component waits for (its namespace): Pulumi does not pass it down."""
    if depends_on is None:
        return []
    return list(depends_on) if isinstance(depends_on, (list, tuple)) else [depends_on]


__all__ = ["Observability", "ObservabilityOutputs"]
