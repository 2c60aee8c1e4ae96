"""Argo CD (issue 12 point 2): how the first-party applications reach the clusters, in promotion waves, from
signed commits only (docs/architecture/gitops.md).

Order on a real cluster: the credentials (Redis password generated into Vault; the OIDC client secret and
the other clusters' secrets an administrator keeps there) are delivered by External Secrets first; the chart
(its CRDs are templates, installed with it) waits for them; the AppProjects and the ApplicationSet wait for
the chart, whose controllers and CRDs they need.
"""
from __future__ import annotations

import pulumi

from components.core import CoreOutputs
from components.governance.argocd import chart_values, network, projects, promotion
from components.kit import KitContext, custom_resource, helm_chart, pod_monitor
from components.settings import IN_CLUSTER, ArgoCdSettings

API = "argoproj.io/v1alpha1"
CHART_KEY = "argo-cd"
CLUSTER_SECRET_KEYS = ("config", "name", "namespaces", "server")
"""What an administrator keeps in Vault for each other cluster (Argo CD's cluster secret fields, operator-manual
declarative-setup "Clusters"): ``config`` (JSON: ``bearerToken``, ``tlsClientConfig.caData``), ``name``, ``server``
and ``namespaces`` (comma-separated; cluster-level resources are then ignored)."""
SCRAPE = [{"port": "metrics", "path": "/metrics", "interval": "30s"}]


class ArgoCd(pulumi.ComponentResource):
    """Argo CD in ``namespace``: the chart, its credentials, the AppProjects, the promotion ApplicationSet,
    its flows and its monitors."""

    def __init__(self, settings: ArgoCdSettings, namespace: str, domain: str, core: CoreOutputs, ctx: KitContext,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("somaagenthub:governance:ArgoCd", "argocd", None, opts)
        child = pulumi.ResourceOptions(parent=self)
        secrets = core.secrets
        if secrets is None:
            raise ValueError("governance.argocd needs Vault (core.vault.configure): its Redis password and OIDC client "
                             "secret are delivered from there")
        redis = secrets.grant("argocd", namespace, "argocd-secrets", "redis",
                              {chart_values.REDIS_SECRET_KEY: secrets.password("argocd-redis")}, create_service_account=True)
        if redis.name != chart_values.REDIS_SECRET:
            raise ValueError(f"the chart reads {chart_values.REDIS_SECRET}, but the grant delivers {redis.name}")
        delivered = [ctx.delivered_secrets[(namespace, redis.name)]]
        oidc_secret = None
        if settings.sso is not None:
            oidc = secrets.share("argocd-oidc", namespace, f"{namespace}/{settings.sso.client_secret_path}", (chart_values.OIDC_SECRET_KEY,),
                                 labels=chart_values.PART_OF)
            oidc_secret = oidc.name
            delivered.append(ctx.delivered_secrets[(namespace, oidc.name)])
        for env in settings.environments:
            if env.server != IN_CLUSTER and env.credentials_path:
                # namespaces (the spoke's agents namespace): Argo CD then watches only there, all a spoke's account may
                # read (access.hub_identity); without it the controller would need cluster-wide list and watch
                cluster = secrets.share(f"argocd-cluster-{env.name}", namespace, f"{namespace}/{env.credentials_path}", CLUSTER_SECRET_KEYS,
                                        labels={**chart_values.PART_OF, "argocd.argoproj.io/secret-type": "cluster"})
                delivered.append(ctx.delivered_secrets[(namespace, cluster.name)])
        values = chart_values.chart_values(settings, domain, ctx, oidc_secret)
        self.chart = helm_chart(chart_values.RELEASE, CHART_KEY, namespace, values, ctx,
                                ctx.keep(pulumi.ResourceOptions(parent=self, depends_on=delivered)))
        after_chart = pulumi.ResourceOptions(parent=self, depends_on=[self.chart])
        self.projects = [custom_resource(API, "AppProject", name, namespace, spec, after_chart)
                         for name, spec in projects.projects(settings).items()]
        self.application_set = custom_resource(API, "ApplicationSet", promotion.APPLICATION_SET, namespace,
                                               promotion.application_set_spec(settings),
                                               pulumi.ResourceOptions(parent=self, depends_on=[self.chart, *self.projects]))
        self.network_policies = network.flows(namespace, core.observability_namespace, core.api_server_cidr, ctx, child)
        monitored = ["controller", "repoServer", "server", "applicationSet"]
        self.monitors = [pod_monitor(f"argocd-{c.lower()}", namespace, chart_values.COMPONENT_LABELS[c], SCRAPE, ctx, child)
                         for c in monitored]
        if ctx.high_availability:
            self.monitors.append(pod_monitor("argocd-redis-ha-haproxy", namespace, chart_values.COMPONENT_LABELS["haproxy"],
                                             [{"port": "metrics-port", "path": "/metrics", "interval": "30s"}], ctx, child))
        self.register_outputs({"namespace": namespace, "projects": list(projects.projects(settings)),
                               "applicationSet": promotion.APPLICATION_SET})
