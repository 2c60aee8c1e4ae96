"""The hardening every kit container gets, and the few switches a caller may turn off with a reason."""
from __future__ import annotations

from typing import Mapping

NON_ROOT_UID = 65532
RELAXABLE = {"read-only-root-filesystem"}


def pod_security_context(uid: int = NON_ROOT_UID) -> dict:
    """Pod-level: never root, files owned by the workload's group, the runtime's seccomp profile."""
    if uid == 0:
        raise ValueError("the kit never runs a pod as UID 0")
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context(opt_out: Mapping[str, str], uid: int = NON_ROOT_UID) -> dict:
    """Container-level: no escalation, no capabilities, read-only root unless waived."""
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
