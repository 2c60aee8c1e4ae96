"""Install an upstream Helm chart exactly as the catalog pins it."""
from __future__ import annotations

from typing import Any, Mapping

import pulumi
import pulumi_kubernetes as k8s

from components.kit.context import KitContext


def helm_chart(
    name: str,
    chart_key: str,
    namespace: str,
    values: Mapping[str, Any],
    ctx: KitContext,
    opts: pulumi.ResourceOptions,
) -> k8s.helm.v4.Chart:
    """A ``helm.v4.Chart`` with the catalog's repository and exact version.

    Image values are the caller's job because every chart spells them differently; callers
    build them from ``ctx.catalog.image(key)`` so that the policy pack finds only digests.
    The chart waits for ``ctx.metrics_crds``: many charts ship ServiceMonitors or render them
    only when the monitoring CRDs are already installed.
    """
    chart = ctx.catalog.chart(chart_key)
    repository = chart.repository
    if repository.startswith("oci://"):
        source = {"chart": f"{repository.rstrip('/')}/{chart.chart}"}
    else:
        source = {"chart": chart.chart, "repository_opts": k8s.helm.v4.RepositoryOptsArgs(repo=repository)}
    return k8s.helm.v4.Chart(
        name,
        namespace=namespace,
        version=chart.version,
        values=dict(values),
        skip_crds=False,
        opts=ctx.after_metrics_crds(opts),
        **source,
    )
