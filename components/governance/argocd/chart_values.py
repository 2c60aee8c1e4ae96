"""Values for Argo CD's official chart (``charts/argo-cd``, argo-cd 10.1.1 = Argo CD v3.4.4, vendored from
argoproj/argo-helm, its redis-ha 4.38.0 subchart from DandyDeveloper/charts).

Every key below is read from charts/argo-cd/values.yaml (and charts/argo-cd/charts/redis-ha/values.yaml) at
the vendored version. What the chart does in Helm hooks, which the provider never runs, and how nothing is
lost: ``redisSecretInit`` (a pre-install Job that writes a random Redis password into the Secret
``argocd-redis``) is off; the program generates that password, keeps it in Vault and External Secrets
delivers ``argocd-redis`` (key ``auth``), which the Redis pods and every Argo CD component read by that name
(templates/redis/deployment.yaml, redis-ha ``existingSecret``). redis-ha's test hooks are not deployed.

Off, and why: Dex (``dex.enabled``: Argo CD's own OIDC client logs people in, one image fewer), the
notifications controller (no notification is configured; the compliance part reads sync events from the
audit pipeline), the chart's NetworkPolicies (``global.networkPolicy.create``: every flow is declared with
the kit, which also writes the mesh's AuthorizationPolicies), the chart's ServiceMonitors (the kit's monitors
scrape the pods, labelled like every platform monitor).
"""
from __future__ import annotations

from components.kit import KitContext
from components.kit.security import anti_affinity, container_security_context, pod_security_context, resource_requirements
from components.settings import IN_CLUSTER, ArgoCdSettings, ArgoCdSso, Resources

RELEASE = "argocd"
"""Release name; with the chart's ``nameOverride: argocd`` every object is ``argocd-<component>``."""
ARGOCD_UID = 999
"""The argocd image's user (USER 999 in argo-cd's Dockerfile; the chart's commented global.securityContext)."""
REDIS_UID = 999
"""The official redis image's redis user (the chart's redis.securityContext runAsUser 999)."""
REDIS_HA_UID = 1000
"""redis-ha's own default (values.yaml securityContext runAsUser 1000, fsGroup 1000)."""
HAPROXY_UID = 99
"""redis-ha's HAProxy default (haproxy.securityContext runAsUser 99, fsGroup 99: the haproxy user)."""
PART_OF = {"app.kubernetes.io/part-of": "argocd"}
"""Argo CD reads a Secret it is told about by name (``$<secret>:<key>`` in argocd-cm) or by kind (cluster
secrets) only when it carries this label."""
OIDC_SECRET_KEY = "client-secret"
REDIS_SECRET = "argocd-redis"
REDIS_SECRET_KEY = "auth"
PROGRESSIVE_SYNCS = "applicationsetcontroller.enable.progressive.syncs"
"""argocd-cmd-params-cm key the ApplicationSet controller reads as ARGOCD_APPLICATIONSET_CONTROLLER_ENABLE_PROGRESSIVE_SYNCS
(templates/argocd-applicationset/deployment.yaml)."""

COMPONENT_LABELS = {
    "controller": {"app.kubernetes.io/name": "argocd-application-controller"},
    "repoServer": {"app.kubernetes.io/name": "argocd-repo-server"},
    "server": {"app.kubernetes.io/name": "argocd-server"},
    "applicationSet": {"app.kubernetes.io/name": "argocd-applicationset-controller"},
    "redis": {"app.kubernetes.io/name": "argocd-redis"},
    "haproxy": {"app.kubernetes.io/name": "argocd-redis-ha-haproxy"},
    "redisHa": {"app": "redis-ha", "release": RELEASE},
}
"""Pod labels per component (argo-cd.selectorLabels: ``<fullname>-<component name>``; redis-ha's StatefulSet
``app: redis-ha, release: <release>``; the argo chart's ``redis-ha.haproxy.labels``)."""
METRICS_PORTS = {"controller": 8082, "repoServer": 8084, "server": 8083, "applicationSet": 8080}
"""``<component>.containerPorts.metrics`` defaults, each container port named ``metrics``."""
HAPROXY_METRICS_PORT = 9101
"""redis-ha ``haproxy.metrics.port``: HAProxy's Prometheus endpoint (port name ``http-exporter-port``)."""


def oidc_config(sso: ArgoCdSso, secret: str) -> str:
    """argocd-cm ``oidc.config`` (Argo CD's built-in OIDC client); the secret is a reference, never a value."""
    scopes = "".join(f"\n  - {s}" for s in sso.requested_scopes)
    return (f"name: SSO\nissuer: {sso.issuer}\nclientID: {sso.client_id}\n"
            f"clientSecret: ${secret}:{OIDC_SECRET_KEY}\nrequestedScopes:{scopes}\n")


def rbac_policy(sso: ArgoCdSso | None) -> dict:
    """argocd-rbac-cm: each identity-provider group bound to a built-in role; nobody else sees anything."""
    if sso is None:
        return {"policy.default": "", "policy.csv": "", "scopes": "[groups]"}
    lines = [f"g, {group}, role:{role}" for group, role in sorted(sso.groups.items())]
    return {"policy.default": f"role:{sso.default_role}" if sso.default_role else "", "policy.csv": "\n".join(lines) + "\n",
            "scopes": "[groups]"}


def _component(settings_part, labels: dict, ctx: KitContext, *, uid: int = ARGOCD_UID) -> dict:
    replicas = settings_part.replicas
    values = {
        "replicas": replicas,
        "resources": resource_requirements(settings_part.resources),
        "containerSecurityContext": container_security_context(uid=uid),
        "affinity": anti_affinity(labels, required=ctx.high_availability and replicas > 1),
        "metrics": {"enabled": False},
        "pdb": {"enabled": replicas > 1, "minAvailable": 1} if replicas > 1 else {"enabled": False},
    }
    return values


def _redis_ha(redis: Resources, ctx: KitContext) -> dict:
    redis_image, haproxy_image = ctx.catalog.image("argocd-redis"), ctx.catalog.image("argocd-haproxy")
    size = resource_requirements(redis)
    return {
        "enabled": True,
        "image": {"repository": redis_image.name, "tag": redis_image.tag_at_digest},
        "exporter": {"enabled": False},
        "persistentVolume": {"enabled": False},
        "redis": {"resources": size},
        "sentinel": {"resources": size},
        "splitBrainDetection": {"resources": size},
        "init": {"resources": size},
        "securityContext": pod_security_context(REDIS_HA_UID),
        "containerSecurityContext": container_security_context(uid=REDIS_HA_UID),
        "haproxy": {
            "enabled": True,
            "image": {"repository": haproxy_image.name, "tag": haproxy_image.tag_at_digest},
            "resources": size,
            "init": {"resources": size},
            "securityContext": pod_security_context(HAPROXY_UID),
            "containerSecurityContext": container_security_context(uid=HAPROXY_UID),
            "metrics": {"enabled": True},
        },
    }


def chart_values(settings: ArgoCdSettings, domain: str, ctx: KitContext, oidc_secret: str | None) -> dict:
    argocd = ctx.catalog.image("argocd")
    redis = ctx.catalog.image("argocd-redis")
    cm: dict = {
        "admin.enabled": settings.admin_enabled,
        # watch only what the Role in the agents namespaces allows (components/governance/argocd/access.py)
        "resource.respectRBAC": "normal",
        "exec.enabled": False,
        "users.anonymous.enabled": False,
        "statusbadge.enabled": False,
    }
    if settings.sso is not None and oidc_secret is not None:
        cm["oidc.config"] = oidc_config(settings.sso, oidc_secret)
    ha = ctx.high_availability
    values: dict = {
        # namespaced: no ClusterRole; the agents namespaces grant a Role (access.py)
        "createClusterRoles": False,
        "global": {
            "domain": f"{settings.host}.{domain}",
            "image": {"repository": argocd.name, "tag": argocd.tag_at_digest, "imagePullPolicy": "IfNotPresent"},
            "securityContext": pod_security_context(ARGOCD_UID),
            "networkPolicy": {"create": False},
            "logging": {"format": "json"},
        },
        "configs": {
            "cm": cm,
            "params": {PROGRESSIVE_SYNCS: True},
            "rbac": rbac_policy(settings.sso),
            "gpg": {"keys": {key.key_id: key.public_key for key in settings.signing_keys}},
            "clusterCredentials": in_cluster_destination(settings),
        },
        "controller": _component(settings.controller, COMPONENT_LABELS["controller"], ctx),
        "repoServer": _component(settings.repo_server, COMPONENT_LABELS["repoServer"], ctx),
        "server": _component(settings.server, COMPONENT_LABELS["server"], ctx),
        "applicationSet": _component(settings.application_set, COMPONENT_LABELS["applicationSet"], ctx),
        "dex": {"enabled": False},
        "notifications": {"enabled": False},
        "redisSecretInit": {"enabled": False},
        "redis": {
            "enabled": not ha,
            "image": {"repository": redis.name, "tag": redis.tag_at_digest},
            "resources": resource_requirements(settings.redis),
            "securityContext": pod_security_context(REDIS_UID),
            "containerSecurityContext": container_security_context(uid=REDIS_UID),
            "exporter": {"enabled": False},
            "metrics": {"enabled": False},
        },
        "redis-ha": _redis_ha(settings.redis, ctx) if ha else {"enabled": False},
    }
    return values


def in_cluster_destination(settings: ArgoCdSettings) -> dict:
    """The cluster secret of this cluster, limited to the in-cluster waves' namespaces (no cluster-scoped kind).

    Without it Argo CD would treat its own cluster as cluster-wide and fail on the ClusterRoles it does not have.
    It holds no credential: ``config`` is empty TLS settings, so Argo CD uses each pod's own service account."""
    namespaces = sorted({e.namespace for e in settings.environments if e.server == IN_CLUSTER})
    if not namespaces:
        return {}
    return {"in-cluster": {"server": IN_CLUSTER, "namespaces": ",".join(namespaces), "clusterResources": False,
                           "config": {"tlsClientConfig": {"insecure": False}}}}
