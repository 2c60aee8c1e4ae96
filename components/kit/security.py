"""The hardening every kit container gets, and the few switches a caller may turn off with a reason."""
from __future__ import annotations

from typing import Mapping

from components.settings import Resources

NON_ROOT_UID = 65532
RELAXABLE = {"read-only-root-filesystem"}


def pod_security_context(uid: int = NON_ROOT_UID, gid: int | None = None) -> dict:
    """Pod-level: never root, files owned by the workload's group, the runtime's seccomp profile.

    Charts and operator pod templates take the same dictionaries through their own values, with
    the UID each image was built for, so file ownership inside the image still matches.
    """
    if uid == 0:
        raise ValueError("the kit never runs a pod as UID 0")
    group = uid if gid is None else gid
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": group,
        "fsGroup": group,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context(opt_out: Mapping[str, str] | None = None, uid: int = NON_ROOT_UID) -> dict:
    """Container-level: no escalation, no capabilities, read-only root unless waived."""
    opt_out = opt_out or {}
    unknown = set(opt_out) - RELAXABLE
    if unknown:
        raise ValueError(
            f"the kit cannot relax {sorted(unknown)}; only {sorted(RELAXABLE)} may be opted out of, "
            "anything else belongs in an upstream chart with a reviewed waiver"
        )
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": "read-only-root-filesystem" not in opt_out,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def resource_requirements(r: Resources) -> dict:
    """Requests and limits for CPU and memory, as containers and chart values spell them."""
    return {
        "requests": {"cpu": r.cpu_request, "memory": r.memory_request},
        "limits": {"cpu": r.cpu_limit, "memory": r.memory_limit},
    }


def anti_affinity(labels: Mapping[str, str], required: bool) -> dict:
    """One replica per node: required in HA stacks, preferred elsewhere (a laptop has one node)."""
    term = {"labelSelector": {"matchLabels": dict(labels)}, "topologyKey": "kubernetes.io/hostname"}
    if required:
        return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    return {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": term}]}}


RETAIN_CLAIMS = {"whenDeleted": "Retain", "whenScaled": "Retain"}
"""A StatefulSet's ``persistentVolumeClaimRetentionPolicy``: its volume claims survive the
StatefulSet's deletion and a scale-down, so deleting or re-creating it never deletes data."""
