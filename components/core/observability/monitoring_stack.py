"""kube-prometheus-stack, built first: it installs the monitoring.coreos.com CRDs everything else uses.

ServiceMonitors, PodMonitors and PrometheusRules (the kit's, and the ones charts render) cannot
be applied before these CRDs exist, and several charts render their monitors only when the API
server already serves the kind. So Core builds this chart before its other parts and hands it to
them through ``KitContext.with_metrics_crds``; Observability receives it instead of creating it.

The chart used to be a child of the Observability component. The alias keeps its state (and so
the CRDs it owns) when an existing stack is updated: without it the engine would delete the old
chart, CRDs and every monitoring object with them, and create a new one.
"""
from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.core.observability import prometheus
from components.kit import KitContext, helm_chart
from components.settings import CoreSettings

NAME = "kube-prometheus-stack"
FORMER_PARENT = ("observability", "somaagenthub:core:Observability")


def chart(settings: CoreSettings, ctx: KitContext, parent: pulumi.Resource, opts: pulumi.ResourceOptions) -> k8s.helm.v4.Chart:
    """The chart, parented to ``parent`` (Core), aliased to its former place under Observability."""
    former_parent = pulumi.create_urn(FORMER_PARENT[0], FORMER_PARENT[1], parent=parent)
    moved = pulumi.ResourceOptions(parent=parent, aliases=[pulumi.Alias(parent=former_parent)])
    namespace = settings.namespaces.observability.name
    return helm_chart(NAME, NAME, namespace, prometheus.values(settings.observability.prometheus, ctx, settings.observability.alertmanager,
                                                            settings.vault.configure), ctx,
                      ctx.keep(pulumi.ResourceOptions.merge(opts, moved)))
