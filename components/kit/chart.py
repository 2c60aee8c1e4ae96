"""Install an upstream Helm chart from the bytes vendored in ``charts/<key>/``."""
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
    """A ``helm.v4.Chart`` from the vendored chart folder the catalog names.

    A local path, not a repository URL: the provider renders exactly the bytes the offline render
    checked (and an air-gapped cluster needs no chart repository). ``version`` is still passed so the
    plan says which release is deployed; Helm ignores it for a local folder.

    Image values are the caller's job because every chart spells them differently; callers
    build them from ``ctx.catalog.image(key)`` so that the policy pack finds only digests.
    The chart waits for ``ctx.metrics_crds``: many charts ship ServiceMonitors or render them
    only when the monitoring CRDs are already installed.
    """
    chart = ctx.catalog.chart(chart_key)
    return k8s.helm.v4.Chart(
        name,
        chart=f"./{chart.path}",
        namespace=namespace,
        version=chart.version,
        values=dict(values),
        skip_crds=False,
        opts=ctx.after_metrics_crds(opts),
    )
