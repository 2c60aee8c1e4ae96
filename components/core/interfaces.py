"""What the parts of Core hand each other: certificates by issuer, secrets by grant, object storage by bucket.

The certificates part (cert-manager and the platform CA) is built before the secrets part, whose
Vault serves a certificate from it. The secrets part (Vault + External Secrets) and the data part
(MinIO among the stores) are built before observability; observability asks them for credentials
and buckets through these small interfaces only, never by reaching into their children.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Protocol, Sequence

import pulumi

from components.kit.containers import SecretEnv
from components.kit.network import Peer


@dataclass(frozen=True)
class VaultAdmin:
    """What a later phase needs to configure a Vault engine of its own (the mesh CA): Core's pulumi-vault
    provider, its Kubernetes-auth mount, and how pods reach Vault (URL, and in raft mode the platform
    CA that signs Vault's serving certificate, ``ca_issuer`` being the ClusterIssuer of that CA)."""

    provider: pulumi.ProviderResource
    kubernetes_auth_path: pulumi.Input[str]
    url: str
    tls: bool
    ca_issuer: str


@dataclass(frozen=True)
class SecretRef:
    """A Kubernetes Secret that External Secrets keeps in sync with Vault, in the consumer's namespace."""

    name: str
    namespace: str
    keys: tuple[str, ...]


class SecretGrants(Protocol):
    def password(self, name: str, length: int = 32) -> pulumi.Output[str]:
        """A generated credential (pulumi-random), registered once per name, never in a stack file."""

    def grant(
        self,
        service: str,
        namespace: str,
        service_account: str,
        secret: str,
        values: Mapping[str, pulumi.Input[str]],
        *,
        create_service_account: bool = False,
        after: Sequence[pulumi.Resource] = (),
    ) -> SecretRef:
        """Store ``values`` in Vault at ``<namespace>/<service>/<secret>`` and make them readable
        only by ``service_account`` in ``namespace``, as an ESO-managed Secret named
        ``<service>-<secret>`` with the same keys; the consumer's objects wait for ``after``."""

    def share(self, service: str, namespace: str, path: str, keys: tuple[str, ...], *,
              after: Sequence[pulumi.Resource] = (), labels: Mapping[str, str] | None = None) -> SecretRef:
        """Deliver what an administrator keeps in Vault at ``path`` (keys ``keys``) as the ESO-managed
        Secret ``<service>-credentials`` in ``namespace`` (labelled ``labels``); the program never writes or reads it."""


@dataclass(frozen=True)
class BucketAccess:
    """An S3 bucket (and the key prefix inside it) and the ESO-managed Secret holding the keys of
    the user allowed into it; ``peer`` and ``port`` are where the writer's egress must be opened
    (the in-cluster MinIO pods, or the off-cluster target's address range)."""

    bucket: str
    endpoint: str
    region: str
    credentials: SecretRef
    peer: Peer
    port: int
    prefix: str = ""
    """Where inside the bucket this stream writes: empty for a bucket of its own, ``<stream>/``
    in the shared off-cluster bucket."""
    access_key_field: str = "access-key-id"
    secret_key_field: str = "secret-access-key"
    client_labels: Mapping[str, str] = field(default_factory=dict)
    """Pod labels the target admits its clients by, besides their namespace (MinIO's
    ``somaagenthub.io/minio-client``); none for a target outside the cluster."""

    def key_env(self) -> tuple[SecretEnv, SecretEnv]:
        """The bucket's keys as ``S3_ACCESS_KEY_ID`` / ``S3_SECRET_ACCESS_KEY``, the names every backup
        job's script reads (ClickHouse, Qdrant, Vault Raft)."""
        return (SecretEnv("S3_ACCESS_KEY_ID", self.credentials.name, self.access_key_field),
                SecretEnv("S3_SECRET_ACCESS_KEY", self.credentials.name, self.secret_key_field))

    @property
    def url(self) -> str:
        """``s3://<bucket>/<prefix>``: where the stream's objects live."""
        return f"s3://{self.bucket}/{self.prefix}"


class ObjectStorage(Protocol):
    endpoint: str

    def access(self, bucket: str) -> BucketAccess:
        """Access to one of the platform buckets (backups, loki, tempo), declared by Core.

        A backup target (:class:`components.core.data.offsite.OffsiteStorage`, or MinIO when a
        stack keeps backups in the cluster) answers for the backup streams only."""


@dataclass(frozen=True)
class DatabaseAccess:
    """One database on the platform's PostgreSQL and how its owner reaches it.

    ``password`` is the name of the owner's generated credential (``SecretGrants.password``): a
    consumer grants itself a copy of that same value, so its login and the role agree. ``namespace``,
    ``pods`` and ``port`` are where the consumer's egress must be opened; ``client_labels`` what its
    pods wear to be admitted, from a namespace the database's ingress names.
    """

    host: str
    port: int
    name: str
    user: str
    password: str
    namespace: str
    pods: Mapping[str, str]
    client_labels: Mapping[str, str]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class KafkaClientAccess:
    """How one service of a later phase produces to Core's Kafka (components/core/data/kafka_clients.py).

    Core's listener is TLS on ``port`` with SCRAM-SHA-512 users: ``bootstrap`` (``host:port``, the bootstrap
    Service's name, which Strimzi's broker certificates carry), the ``username`` of the KafkaUser, its password in
    ``password`` (key ``password``, a copy of the same generated value the KafkaUser is given) and the cluster CA
    certificate in ``ca`` (key ``ca.crt``, copied from Strimzi's Secret), both delivered into the consumer's
    namespace. ``peer`` and ``port`` are where its egress must be opened; ``client_labels`` what its pods wear to
    be admitted by the listener's own NetworkPolicy (Strimzi's ``networkPolicyPeers``).
    """

    bootstrap: str
    topic: str
    username: str
    password: SecretRef
    ca: SecretRef
    peer: Peer
    port: int
    client_labels: Mapping[str, str]
    password_key: str = "password"
    ca_key: str = "ca.crt"


@dataclass(frozen=True)
class IssuerRef:
    """A cert-manager issuer that parts of Core (and later phases) request certificates from.

    ``resource`` is the issuer object itself: a Certificate that names the issuer waits for it, and
    through it for cert-manager, whose CRDs and admission webhook must exist before any Certificate
    can be applied.
    """

    name: str
    kind: str
    resource: pulumi.Resource
    group: str = "cert-manager.io"

    def spec(self) -> dict[str, str]:
        """The ``issuerRef`` of a Certificate."""
        return {"name": self.name, "kind": self.kind, "group": self.group}
