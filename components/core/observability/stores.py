"""What Loki and Tempo share: an S3 bucket from Core, read with credentials from an ESO Secret.

The bucket, its endpoint and the Secret holding the access keys come from
``storage.access(<bucket>)`` (Core part 1 creates the buckets and the one MinIO user allowed into
each). The keys reach the pods as ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` environment
variables filled by ``secretKeyRef``; they never appear in chart values, the plan or state.
"""
from __future__ import annotations

from dataclasses import dataclass

from components.core.interfaces import BucketAccess
from components.core.observability.topology import ObjectStoreAddress

ACCESS_KEY_ENV = "AWS_ACCESS_KEY_ID"
SECRET_KEY_ENV = "AWS_SECRET_ACCESS_KEY"


@dataclass(frozen=True)
class Bucket:
    """One bucket as a chart needs it: address, name, and the env entries carrying its keys."""

    access: BucketAccess
    address: ObjectStoreAddress

    @classmethod
    def of(cls, access: BucketAccess, namespace: str) -> "Bucket":
        if access.credentials.namespace != namespace:
            raise ValueError(
                f"bucket {access.bucket}: its credentials Secret lives in {access.credentials.namespace!r}, "
                f"but the pods that read it run in {namespace!r}; a pod can only mount Secrets of its own namespace"
            )
        return cls(access=access, address=ObjectStoreAddress.parse(access.endpoint))

    @property
    def env(self) -> list[dict]:
        secret = self.access.credentials.name
        return [
            {"name": ACCESS_KEY_ENV, "valueFrom": {"secretKeyRef": {"name": secret, "key": self.access.access_key_field}}},
            {"name": SECRET_KEY_ENV, "valueFrom": {"secretKeyRef": {"name": secret, "key": self.access.secret_key_field}}},
        ]
