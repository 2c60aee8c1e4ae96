"""Install an upstream Helm chart from the bytes vendored in ``charts/<key>/``."""
from __future__ import annotations

from typing import Any, Mapping

import pulumi
import pulumi_kubernetes as k8s

from components.kit.chart_files import ROOT, chart_defaults, coalesce, crd_documents
from components.kit.context import KitContext

CHART_TYPE = "kubernetes:helm.sh/v4:Chart"


def helm_chart(
    name: str,
    chart_key: str,
    namespace: str,
    values: Mapping[str, Any],
    ctx: KitContext,
    opts: pulumi.ResourceOptions,
    crds: Mapping[str, pulumi.Resource] | None = None,
) -> k8s.helm.v4.Chart:
    """A ``helm.v4.Chart`` from the vendored chart folder the catalog names.

    A local path, not a repository URL: the provider renders exactly the bytes the offline render
    checked (and an air-gapped cluster needs no chart repository). ``version`` is still passed so the
    plan says which release is deployed; Helm ignores it for a local folder.

    Image values are the caller's job because every chart spells them differently; callers
    build them from ``ctx.catalog.image(key)`` so that the policy pack finds only digests.
    The chart waits for ``ctx.metrics_crds``: many charts ship ServiceMonitors or render them
    only when the monitoring CRDs are already installed. CRDs of ``crds/`` folders (the chart's and
    its enabled subcharts') are installed by :func:`chart_crds` instead of by Helm; a caller that
    needs them by name installs them first and passes them as ``crds``.
    """
    opts = opts or pulumi.ResourceOptions()
    chart = ctx.catalog.chart(chart_key)
    installed = list((crds if crds is not None else chart_crds(name, chart_key, values, ctx, opts)).values())
    return k8s.helm.v4.Chart(
        name,
        chart=f"./{chart.path}",
        namespace=namespace,
        version=chart.version,
        values=dict(values),
        # The crds/ folders' CRDs are installed first, by the program, so that they can outlive the chart.
        skip_crds=bool(installed),
        # and for the delivered Secrets its values name (existingSecret, extraEnv...): its pods read them
        opts=ctx.after_secrets(namespace, values, pulumi.ResourceOptions.merge(
            ctx.after_metrics_crds(opts), pulumi.ResourceOptions(depends_on=installed)), by_name=True),
    )


def chart_crds(name: str, chart_key: str, values: Mapping[str, Any], ctx: KitContext,
               opts: pulumi.ResourceOptions) -> dict[str, pulumi.Resource]:
    """The CRDs of the ``crds/`` folders of chart ``name`` (its own and its enabled subcharts'), by CRD
    name (``servicemonitors.monitoring.coreos.com``), each installed by :func:`install_crd`."""
    folder = ROOT / ctx.catalog.chart(chart_key).path
    return {crd["metadata"]["name"]: install_crd(name, crd, ctx, opts)
            for crd in crd_documents(folder, coalesce(chart_defaults(folder), values))}


def install_crd(chart_name: str, crd: Mapping[str, Any], ctx: KitContext, opts: pulumi.ResourceOptions) -> pulumi.Resource:
    """One CRD of a chart's ``crds/`` folder, installed before the chart and kept on delete when the
    stack protects its data.

    Deleting a CRD deletes every custom resource of its kind (every PostgreSQL cluster, Kafka cluster,
    Prometheus), and pulumi-kubernetes does not pass a chart's ``retainOnDelete`` to its children
    (pulumi/pulumi-kubernetes#3065), so these CRDs are the program's own resources. The chart waits
    for them, as Helm applies ``crds/`` first. Their alias is the URN the provider gave them as the
    chart's children (``<chart>:<crd>`` under the chart), so a stack deployed that way keeps them.
    """
    meta = crd["metadata"]
    name = f"{chart_name}:{meta['name']}"
    as_chart_child = pulumi.Alias(name=name, parent=pulumi.create_urn(chart_name, CHART_TYPE, parent=opts.parent))
    return k8s.apiextensions.v1.CustomResourceDefinition(
        name,
        metadata=dict(meta),
        spec=crd["spec"],
        # cluster-scoped and self-contained: it waits for nothing the chart waits for (its namespace)
        opts=pulumi.ResourceOptions(parent=opts.parent, protect=opts.protect, retain_on_delete=ctx.deletion_protection or None,
                                    aliases=[as_chart_child]),
    )
