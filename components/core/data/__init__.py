"""Data stores of Core: MinIO, PostgreSQL, Qdrant, Kafka and ClickHouse, in dependency order.

MinIO comes first because the others back up into it; Kafka before ClickHouse, which consumes
the audit topic. Every credential is granted through :class:`components.core.secrets.Secrets`;
clients from other namespaces are admitted only from the namespaces that hold the store's
credentials (:class:`ClientNamespaces` names those of later phases).
"""
from __future__ import annotations

import pulumi

from components.core.data.clickhouse import ClickHouseStore
from components.core.data.common import ClientNamespaces, StoreContext
from components.core.data.kafka import KafkaStore
from components.core.data.kafka_clients import KafkaClients
from components.core.data.minio import MinioStore, backup_buckets
from components.core.data.offsite import OffsiteStorage
from components.core.interfaces import ObjectStorage
from components.core.data.postgres import PostgresStore
from components.core.data.qdrant import QdrantStore
from components.core.secrets import Secrets
from components.kit import KitContext
from components.settings import CoreSettings


def backup_target(stores: StoreContext, minio: MinioStore) -> ObjectStorage:
    """Where the backup streams write: the off-cluster bucket when the stack names one, else MinIO."""
    offsite = stores.settings.backups.offsite
    if offsite is None:
        return minio
    return OffsiteStorage(offsite, stores.secrets, {b.name: b.namespace for b in backup_buckets(stores).values()})


class DataStores(pulumi.ComponentResource):
    """``object_store`` (MinIO: Loki, Tempo, and backups kept in the cluster) and ``backup_target``
    implement :class:`components.core.interfaces.ObjectStorage`."""

    def __init__(
        self, settings: CoreSettings, ctx: KitContext, secrets: Secrets, clients: ClientNamespaces,
        opts: pulumi.ResourceOptions | None = None, cert_manager: pulumi.Resource | None = None,
    ):
        super().__init__("somaagenthub:core:DataStores", "data", None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stores = StoreContext(settings=settings, ctx=ctx, secrets=secrets, clients=clients, cert_manager=cert_manager)
        self.object_store = MinioStore(stores, child)
        self.backup_target = backup_target(stores, self.object_store)
        self.postgres = PostgresStore(stores, self.backup_target, child)
        self.qdrant = QdrantStore(stores, self.backup_target, child)
        self.kafka = KafkaStore(stores, child)
        self.kafka_clients = KafkaClients(stores, self.kafka, child)
        """Producer access for later phases' services, granted only when one asks (CoreOutputs.kafka_producer)."""
        self.clickhouse = ClickHouseStore(stores, self.kafka, self.backup_target, child)
        self.backup_watches = [self.postgres.backup_watch, self.clickhouse.backup_watch, self.qdrant.backup_watch]
        """Each backup stream's newest-backup metric, watched by one age alert (components/core/backup_watch.py)."""
        self.register_outputs({
            "objectStore": self.object_store.endpoint,
            "postgres": self.postgres.address,
            "qdrant": self.qdrant.address,
            "kafka": self.kafka.bootstrap,
        })


__all__ = ["ClientNamespaces", "DataStores"]
