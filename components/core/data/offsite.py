"""The off-cluster backup target: one S3-compatible bucket outside the cluster, a prefix per stream.

A backup kept only in the cluster it protects is lost with that cluster, so a prod stack names a
bucket elsewhere (``core.backups.offsite``) and every backup stream writes there directly: no
in-cluster copy to replicate, no second schedule to watch. The keys are written to Vault by an
administrator (the program cannot generate a foreign provider's keys and never reads them);
each writer's namespace receives them through a consumer of its own
(:meth:`components.core.secrets.Secrets.share`).
"""
from __future__ import annotations

import pulumi

from components.core.interfaces import BucketAccess
from components.core.secrets import Secrets
from components.kit import Peer
from components.settings import OffsiteTarget

HTTPS = 443
CONSUMER = "offsite-backups"
"""The service account (and Vault role) that reads the target's keys, one per writer namespace."""
KEYS = ("access-key-id", "secret-access-key")


class OffsiteStorage:
    """Implements :class:`components.core.interfaces.ObjectStorage` for the backup streams.

    ``streams`` maps each backup stream (the in-cluster bucket name it would otherwise use) to the
    namespace of its writer; asking for any other bucket is a programming error, named as such.
    """

    def __init__(self, target: OffsiteTarget, secrets: Secrets, streams: dict[str, str], after: list[pulumi.Resource] | None = None):
        self.target = target
        self.endpoint = target.endpoint.rstrip("/")
        self._secrets = secrets
        self._streams = dict(streams)
        self._after = list(after or [])
        self._delivered: dict[str, object] = {}

    def access(self, bucket: str) -> BucketAccess:
        if bucket not in self._streams:
            raise KeyError(f"'{bucket}' is not a backup stream; the off-cluster target holds {', '.join(sorted(self._streams))}")
        namespace = self._streams[bucket]
        if namespace not in self._delivered:
            self._delivered[namespace] = self._secrets.share(CONSUMER, namespace, self.target.credentials_path, KEYS, after=self._after)
        return BucketAccess(
            bucket=self.target.bucket,
            prefix=f"{bucket}/",
            endpoint=self.endpoint,
            region=self.target.region,
            credentials=self._delivered[namespace],  # type: ignore[arg-type]
            peer=Peer(cidr=self.target.egress_cidr),
            port=HTTPS,
        )


__all__ = ["OffsiteStorage"]
