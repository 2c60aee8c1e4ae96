"""kube-prometheus-stack, built first: it installs the monitoring.coreos.com CRDs everything else uses.

ServiceMonitors, PodMonitors and PrometheusRules (the kit's, and the ones charts render) cannot
be applied before these CRDs exist, and several charts render their monitors only when the API
server already serves the kind. So Core installs the chart's CRDs first and hands the three that
the platform uses to everything else through ``KitContext.with_metrics_crds``: charts and monitors
wait for those CRDs only, not for the whole release. Observability receives the chart instead of
creating it.

The chart used to be a child of the Observability component. The alias keeps its state (and so
the CRDs it owns) when an existing stack is updated: without it the engine would delete the old
chart, CRDs and every monitoring object with them, and create a new one.
"""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.core.observability import prometheus
from components.kit import KitContext, chart_crds, helm_chart
from components.settings import CoreSettings

NAME = "kube-prometheus-stack"
FORMER_PARENT = ("observability", "somaagenthub:core:Observability")


METRICS_CRDS = ("servicemonitors.monitoring.coreos.com", "podmonitors.monitoring.coreos.com",
                "prometheusrules.monitoring.coreos.com")
"""The kinds the rest of the platform creates (the kit's monitors and rules, the charts' own): what
they wait for, rather than the whole kube-prometheus-stack release."""


@dataclass(frozen=True)
class MonitoringStack:
    chart: k8s.helm.v4.Chart
    metrics_crds: tuple[pulumi.Resource, ...]


def chart(settings: CoreSettings, ctx: KitContext, parent: pulumi.Resource, opts: pulumi.ResourceOptions) -> MonitoringStack:
    """The chart, parented to ``parent`` (Core), aliased to its former place under Observability, and the
    monitoring CRDs it brings, installed before it."""
    former_parent = pulumi.create_urn(FORMER_PARENT[0], FORMER_PARENT[1], parent=parent)
    moved = ctx.keep(pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(parent=parent, aliases=[pulumi.Alias(parent=former_parent)])))
    namespace = settings.namespaces.observability.name
    values = prometheus.values(settings.observability.prometheus, ctx, settings.observability.alertmanager, settings.vault.configure)
    crds = chart_crds(NAME, NAME, values, ctx, moved)
    missing = [name for name in METRICS_CRDS if name not in crds]
    if missing:
        raise ValueError(f"{NAME}: the vendored chart installs no {', '.join(missing)}; the platform's monitors need them")
    release = helm_chart(NAME, NAME, namespace, values, ctx, moved, crds=crds)
    return MonitoringStack(chart=release, metrics_crds=tuple(crds[name] for name in METRICS_CRDS))
