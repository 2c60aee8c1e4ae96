"""non-root: every container runs as a non-root user with no privilege and no capabilities."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..hardening import SECCOMP_TYPES, drops_all_capabilities
from ..model import Finding, ResourceView, check_value
from ..podspec import ContainerRef, PodTemplate, pod_templates
from ..rule import Rule, RuleConfig, Severity


def _effective(pod: PodTemplate, container: ContainerRef, *path: str) -> Any:
    """The container's securityContext value, falling back to the pod's (as the kubelet does)."""
    own = container.get("securityContext", *path)
    if own is not None:
        return own
    return pod.get("securityContext", *path)


def _either(pod: PodTemplate, c: ContainerRef) -> str:
    """Where to set a value the pod may also set: named for operator-managed containers."""
    if not c.places:
        return " (container or pod securityContext)"
    return f" (set {c.where('securityContext')} or {pod.where('securityContext')})"


def check(resource: ResourceView, _config: RuleConfig) -> Iterator[Finding]:
    for pod in pod_templates(resource):
        yield from pod.unresolved
        for c in pod.containers:
            yield from _check_container(pod, c)


def _check_container(pod: PodTemplate, c: ContainerRef) -> Iterator[Finding]:
    sc = c.where("securityContext")
    own = c.hint("securityContext")
    either = _either(pod, c)
    non_root = _effective(pod, c, "runAsNonRoot")
    yield from check_value(
        non_root, f"{sc}.runAsNonRoot", non_root is True, f"{c.label}: runAsNonRoot must be true{either}"
    )
    uid = _effective(pod, c, "runAsUser")
    yield from check_value(
        uid, f"{sc}.runAsUser", uid is None or uid != 0, f"{c.label}: runAsUser must not be 0 (root){either}"
    )
    privileged = c.get("securityContext", "privileged")
    yield from check_value(
        privileged, f"{sc}.privileged", privileged is not True, f"{c.label}: privileged must not be true{own}"
    )
    escalation = c.get("securityContext", "allowPrivilegeEscalation")
    yield from check_value(
        escalation,
        f"{sc}.allowPrivilegeEscalation",
        escalation is False,
        f"{c.label}: allowPrivilegeEscalation must be false{own}",
    )
    drop = c.get("securityContext", "capabilities", "drop")
    yield from check_value(
        drop, f"{sc}.capabilities.drop", drops_all_capabilities(drop), f"{c.label}: capabilities.drop must contain ALL{own}"
    )
    seccomp = _effective(pod, c, "seccompProfile", "type")
    yield from check_value(
        seccomp,
        f"{sc}.seccompProfile.type",
        seccomp in SECCOMP_TYPES,
        f"{c.label}: seccompProfile.type must be RuntimeDefault or Localhost{either}",
    )



RULE = Rule(
    name="non-root",
    description=(
        "Containers (init and ephemeral included, and those of custom resources that run pods) "
        "run as non-root (runAsNonRoot, no UID 0), are not privileged, cannot escalate privileges, "
        "drop all capabilities and use the RuntimeDefault or Localhost seccomp profile."
    ),
    severity=Severity.HIGH,
    remediation=(
        "Build the workload with kit.workload(...), which sets runAsNonRoot, a high runAsUser, "
        "allowPrivilegeEscalation: false, capabilities.drop: [ALL] and seccompProfile "
        "RuntimeDefault on every container. For an upstream chart, set the same fields through "
        "its podSecurityContext/securityContext values; for an operator's custom resource, in the "
        "places the message names (pod templates, Strimzi template.*Container.securityContext, "
        "CloudNativePG spec.securityContext/podSecurityContext). A component that truly needs root or a "
        "capability (a CNI agent) comes from its upstream chart and carries a reviewed waiver "
        "annotation waivers.somaagenthub.io/non-root: '<reason>' (prod: also listed in allowedWaivers)."
    ),
    check_resource=check,
)
