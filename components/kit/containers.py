"""Pieces every kit container shares: its environment and its writable scratch space."""
from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Mapping, Sequence

SCRATCH_SIZE = "256Mi"
MIN_TOKEN_EXPIRATION_SECONDS = 600
"""The shortest lifetime the API server issues for a projected ServiceAccount token (TokenRequest)."""


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


@dataclass(frozen=True)
class SecretFile:
    """Chosen keys of a Secret as read-only files in the folder ``path`` (a CA certificate, say).

    Only the named keys are projected: a Secret that also holds a private key (cert-manager's
    ``tls.key``) does not bring it into the pod.
    """

    secret: str
    keys: tuple[str, ...]
    path: str

    def __post_init__(self) -> None:
        if not self.keys or isinstance(self.keys, str):
            raise ValueError(f"secret file {self.secret}: name the keys to mount as a tuple, never the whole Secret")


@dataclass(frozen=True)
class ServiceAccountToken:
    """A token of the pod's own ServiceAccount for ``audience`` only, at ``<path>/token``.

    Projected and rotated by the kubelet, expiring after ``expiration_seconds``: unlike the
    automounted API-server token (off for every kit pod) it is useless against the API server,
    and a service that binds the audience (Vault's Kubernetes-auth roles bind ``vault``) accepts
    no token minted for anyone else.
    """

    audience: str
    path: str
    expiration_seconds: int = MIN_TOKEN_EXPIRATION_SECONDS

    def __post_init__(self) -> None:
        if not self.audience:
            raise ValueError("a ServiceAccount token needs an audience")
        if not posixpath.isabs(self.path):
            raise ValueError(f"ServiceAccount token path {self.path!r} must be absolute")
        if self.expiration_seconds < MIN_TOKEN_EXPIRATION_SECONDS:
            raise ValueError(f"ServiceAccount token expiration {self.expiration_seconds}s is below the API server's minimum of "
                             f"{MIN_TOKEN_EXPIRATION_SECONDS}s")
