"""Pieces every kit container shares: its environment and its writable scratch space."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

SCRATCH_SIZE = "256Mi"


@dataclass(frozen=True)
class SecretEnv:
    """An environment variable filled from a key of an ESO-managed Secret."""

    env: str
    secret: str
    key: str


def environment(literal: Mapping[str, str], from_secrets: Sequence[SecretEnv]) -> list[dict]:
    """Literal settings first (sorted, so the pod template is stable), then Secret references.

    Credentials only ever arrive as ``secretKeyRef``: the kit has no way to put a credential
    value into a pod spec.
    """
    env = [{"name": k, "value": v} for k, v in sorted(literal.items())]
    env.extend({"name": s.env, "valueFrom": {"secretKeyRef": {"name": s.secret, "key": s.key}}} for s in from_secrets)
    return env


def writable_scratch(paths: Sequence[str]) -> tuple[list[dict], list[dict]]:
    """(volumeMounts, volumes): a size-capped emptyDir per path, since the root filesystem is read-only."""
    mounts = [{"name": f"writable-{i}", "mountPath": p} for i, p in enumerate(paths)]
    volumes = [{"name": f"writable-{i}", "emptyDir": {"sizeLimit": SCRATCH_SIZE}} for i, _ in enumerate(paths)]
    return mounts, volumes
