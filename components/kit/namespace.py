"""A platform namespace: Pod Security Admission, closed network, and a resource ceiling."""
from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.kit import network
from components.kit.labels import recommended, waiver_annotations
from components.kit.context import KitContext
from components.settings import NamespaceSettings

PSA_LEVELS = ("privileged", "baseline", "restricted")
QUOTA_NAME = "platform-quota"
"""The platform's ResourceQuota in every namespace (a chart may add a scoped one of its own beside it)."""
SIGNATURE_VERIFICATION_LABEL = "policy.sigstore.dev/include"
AMBIENT_LABEL = {"istio.io/dataplane-mode": "ambient"}
"""Puts a namespace's pods in the ambient mesh (istio-cni redirects their traffic to ztunnel)."""


def mesh_labels(name: str, ctx: KitContext) -> dict[str, str]:
    """The ambient label for a mesh member, plus ``istio.io/use-waypoint`` when its Services go through its waypoint."""
    labels = dict(AMBIENT_LABEL) if name in ctx.mesh.members else {}
    if name in ctx.mesh.waypoints:
        labels["istio.io/use-waypoint"] = "waypoint"
    return labels


class PlatformNamespace(pulumi.ComponentResource):
    """Namespace + default-deny + DNS egress + ResourceQuota + LimitRange.

    Pod Security Admission enforces ``restricted`` unless the caller passes a weaker level
    *and* a reason; the reason is written on the namespace so the exception is visible where
    it applies, and the policy pack lists it as a waiver.
    """

    def __init__(
        self,
        settings: NamespaceSettings,
        ctx: KitContext,
        pod_security: str = "restricted",
        pod_security_reason: str = "",
        extra_labels: dict[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("somaagenthub:kit:Namespace", settings.name, None, opts)
        if pod_security not in PSA_LEVELS:
            raise ValueError(f"namespace {settings.name}: pod security level must be one of {PSA_LEVELS}")
        annotations = {}
        if pod_security != "restricted":
            annotations = waiver_annotations({"namespace-pod-security": pod_security_reason})
        self.name = settings.name
        child = pulumi.ResourceOptions(parent=self)
        version = f"v{ctx.kubernetes_version}"
        labels = {
            **recommended(settings.name, "namespace"),
            "pod-security.kubernetes.io/enforce": pod_security,
            "pod-security.kubernetes.io/enforce-version": version,
            "pod-security.kubernetes.io/audit": "restricted",
            "pod-security.kubernetes.io/audit-version": version,
            "pod-security.kubernetes.io/warn": "restricted",
            "pod-security.kubernetes.io/warn-version": version,
            **mesh_labels(settings.name, ctx),
            **(extra_labels or {}),
        }
        if settings.name in ctx.verified_namespaces:
            # sigstore policy-controller's webhooks select namespaces by this label (chart values.yaml
            # webhook.namespaceSelector): every image of every pod here must verify (Mesh, signatures).
            labels[SIGNATURE_VERIFICATION_LABEL] = "true"
        self.namespace = k8s.core.v1.Namespace(
            settings.name,
            metadata={"name": settings.name, "labels": labels, "annotations": annotations},
            opts=child,
        )
        inside = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace])
        self.default_deny = network.default_deny(settings.name, inside)
        self.allow_dns = network.allow_dns(settings.name, inside)
        self.mesh_transport = network.mesh_transport(settings.name, ctx.mesh, inside) if settings.name in ctx.mesh.members else []
        q = settings.quota
        defaults = ctx.container_defaults
        self.quota = k8s.core.v1.ResourceQuota(
            f"{settings.name}-quota",
            metadata={"name": QUOTA_NAME, "namespace": settings.name, "labels": recommended(QUOTA_NAME, "quota")},
            spec={
                "hard": {
                    "requests.cpu": q.requests_cpu,
                    "requests.memory": q.requests_memory,
                    "limits.cpu": q.limits_cpu,
                    "limits.memory": q.limits_memory,
                    "pods": str(q.pods),
                    "requests.storage": q.storage,
                    "persistentvolumeclaims": str(q.persistent_volume_claims),
                }
            },
            opts=inside,
        )
        self.limits = k8s.core.v1.LimitRange(
            f"{settings.name}-limits",
            metadata={"name": "container-defaults", "namespace": settings.name, "labels": recommended("container-defaults", "limit-range")},
            spec={
                "limits": [
                    {
                        "type": "Container",
                        "defaultRequest": {"cpu": defaults.cpu_request, "memory": defaults.memory_request},
                        "default": {"cpu": defaults.cpu_limit, "memory": defaults.memory_limit},
                        "max": {"cpu": defaults.max_cpu, "memory": defaults.max_memory},
                    }
                ]
            },
            opts=inside,
        )
        self.register_outputs({"name": self.name})
