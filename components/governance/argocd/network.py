"""Argo CD's flows inside the cluster, each declared once with the kit (its NetworkPolicy now, the mesh's
AuthorizationPolicy from the same ledger entry): between its own parts, to the Kubernetes API, and Prometheus'
scrapes.

Its ways out of the cluster (the applications repository, the OIDC issuer, the other clusters of the
promotion waves) are not opened here: they are destinations declared once in ``mesh.istio.egress`` for
``governance.gitops``, whose ServiceEntries and NetworkPolicies the mesh makes (components/mesh/istio/egress.py,
each NetworkPolicy once soma-gitops exists); settings refuse an Argo CD host none of them covers.

Nothing reaches the API server (argocd-server) from outside the namespace yet: no edge route serves it
(docs/architecture/gitops.md, "Reaching the UI").
"""
from __future__ import annotations

import pulumi

from components.governance.argocd.chart_values import COMPONENT_LABELS, HAPROXY_METRICS_PORT, METRICS_PORTS
from components.kit import KitContext, Peer, allow_egress, allow_ingress
from components.kit.network import PROMETHEUS_PODS

API_SERVER_PORTS = (443, 6443)
REPO_SERVER_PORT = 8081
REDIS_PORT = 6379
SENTINEL_PORT = 26379


def _pods(component: str) -> dict[str, str]:
    return dict(COMPONENT_LABELS[component])


def _both_ways(name: str, namespace: str, clients: list[str], server: str, ports: list[int], ctx: KitContext,
               opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
    """Inside the namespace both ends are closed: the server's ingress and each client's egress."""
    made = [allow_ingress(f"{name}-from-{c}", namespace, _pods(server), [Peer(namespace=namespace, pods=_pods(c))], ports,
                          opts, ledger=ctx.flows) for c in clients]
    made += [allow_egress(f"{c}-to-{name}", namespace, _pods(c), [Peer(namespace=namespace, pods=_pods(server))], ports,
                          opts, ledger=ctx.flows) for c in clients]
    return made


def flows(namespace: str, observability_namespace: str, api_server_cidr: str, ctx: KitContext,
          opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
    made: list[pulumi.Resource] = []
    made += _both_ways("argocd-repo-server", namespace, ["controller", "server", "applicationSet"], "repoServer",
                       [REPO_SERVER_PORT], ctx, opts)
    redis = "haproxy" if ctx.high_availability else "redis"
    made += _both_ways("argocd-redis", namespace, ["controller", "server", "repoServer"], redis, [REDIS_PORT], ctx, opts)
    if ctx.high_availability:
        # HAProxy finds the master through the sentinels; the replicas and sentinels talk among themselves
        made += _both_ways("argocd-redis-ha", namespace, ["haproxy", "redisHa"], "redisHa", [REDIS_PORT, SENTINEL_PORT], ctx, opts)
    api = Peer(cidr=api_server_cidr)
    for component in ("controller", "server", "applicationSet"):
        made.append(allow_egress(f"argocd-{component.lower()}-to-api-server", namespace, _pods(component), [api],
                                 API_SERVER_PORTS, opts, ledger=ctx.flows))
    prometheus = Peer(namespace=observability_namespace, pods=dict(PROMETHEUS_PODS))
    for component, port in METRICS_PORTS.items():
        made.append(allow_ingress(f"argocd-{component.lower()}-metrics-scrape", namespace, _pods(component), [prometheus],
                                  [port], opts, ledger=ctx.flows))
    if ctx.high_availability:
        made.append(allow_ingress("argocd-haproxy-metrics-scrape", namespace, _pods("haproxy"), [prometheus],
                                  [HAPROXY_METRICS_PORT], opts, ledger=ctx.flows))
    return made
